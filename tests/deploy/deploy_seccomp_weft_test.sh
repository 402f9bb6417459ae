#!/usr/bin/env bash
# Weft in a container, both ways: under a profile that refuses io_uring (block-io-uring.json,
# EPERM as Docker's default does) it logs that it fell back to epoll and still serves /; under the
# shipped weft-io-uring.json it runs io_uring. Also podman's own default profile (which answers
# ENOSYS): epoll, and serving.
source "$(dirname "$0")/lib.sh"
need_image
need_tools podman curl

# run_weft LABEL [podman options...]: starts the image, waits for /readyz, checks GET /, and leaves
# the log in $LOG.
run_weft() {
    local label=$1 name http admin body
    shift
    name=$(unique_name "seccomp-$label")
    http=$(free_port)
    admin=$(free_port)
    CONTAINERS+=("$name")
    podman run -d --pull=never --name "$name" --health-interval=disable \
        -p "127.0.0.1:$http:8080" -p "127.0.0.1:$admin:9090" "$@" "$WEFT_IMAGE" >/dev/null
    wait_status "http://127.0.0.1:$admin/readyz" 200 20 || {
        podman logs "$name" >&2
        fail "$label: /readyz did not answer 200 within 20 s"
    }
    body=$(http_get "http://127.0.0.1:$http/")
    [ "$HTTP_STATUS" = 200 ] && [ "$body" = "Hello, World!" ] ||
        fail "$label: GET / answered $HTTP_STATUS '$body'"
    LOG=$(podman logs "$name" 2>&1)
    podman rm -f -t 0 "$name" >/dev/null
}

run_weft blocked --security-opt "seccomp=$WEFT_SECCOMP_BLOCK_IO_URING"
grep -q 'backend epoll (fell back' <<<"$LOG" || fail "blocked: no 'backend epoll (fell back' in the log:
$LOG"
grep -q 'io_uring_setup failed: Operation not permitted' <<<"$LOG" ||
    fail "blocked: the log does not say io_uring_setup was not permitted: $(grep backend <<<"$LOG")"
ok "io_uring blocked (EPERM): fell back to epoll and serves /: $(grep -o 'backend epoll[^"]*' <<<"$LOG" | head -1)"

run_weft shipped --security-opt "seccomp=$WEFT_SECCOMP_IO_URING"
grep -q 'backend io_uring' <<<"$LOG" || fail "shipped profile: no 'backend io_uring' in the log:
$LOG"
ok "weft-io-uring.json: $(grep -o 'backend io_uring[^"]*' <<<"$LOG" | head -1)"

run_weft podman-default
grep -q 'backend epoll (fell back' <<<"$LOG" || fail "podman's default profile: no 'backend epoll (fell back' in the log:
$LOG"
ok "podman's default profile: $(grep -o 'backend epoll[^"]*' <<<"$LOG" | head -1)"

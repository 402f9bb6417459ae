# Shared by the deploy tests (sourced): podman settings, skipping, free ports, HTTP polling, and
# cleanup of the containers a test starts. CTest passes:
#   WEFT_DEPLOY_SERVER  path of the built `weft` binary, empty while server/ has no weft target;
#   WEFT_DEPLOY_WORK    a scratch folder in the build tree.
# shellcheck shell=bash
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/scripts/env.sh"

WEFT_DEPLOY_WORK=${WEFT_DEPLOY_WORK:-$(mktemp -d)}
mkdir -p "$WEFT_DEPLOY_WORK"
readonly SKIP=77   # the tests' SKIP_RETURN_CODE

skip() { echo "SKIPPED: $*"; exit $SKIP; }
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# Skips the test while there is no `weft` target; once there is one, the test runs for real and
# everything it needs (the image, podman) must be there.
need_server() {
    [ -n "${WEFT_DEPLOY_SERVER:-}" ] ||
        skip "server/ has no 'weft' target yet; this test runs once it has (it needs $*)"
}

need_image() {
    need_server "the image"
    podman image exists "$WEFT_IMAGE" ||
        fail "no $WEFT_IMAGE image: the deploy_image_build test builds it (deploy/scripts/build-image.sh)"
}

need_tools() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || fail "$t is missing: run deploy/scripts/host-deps.sh"
    done
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# http_get URL [TIMEOUT]: the body on stdout; the status in $HTTP_STATUS.
http_get() {
    local out
    out=$(curl -sS --max-time "${2:-5}" -w '\n%{http_code}' "$1") || { HTTP_STATUS=000; return 1; }
    HTTP_STATUS=${out##*$'\n'}
    printf '%s' "${out%$'\n'*}"
}

# wait_status URL STATUS SECONDS: polls until URL answers STATUS.
wait_status() {
    local url=$1 want=$2 deadline=$((SECONDS + $3))
    while [ $SECONDS -lt $deadline ]; do
        http_get "$url" 2 >/dev/null 2>&1 || true
        [ "$HTTP_STATUS" = "$want" ] && return 0
        sleep 0.2
    done
    return 1
}

# Containers this test started, removed on exit whatever happens.
CONTAINERS=()
cleanup_containers() {
    local c
    for c in "${CONTAINERS[@]}"; do
        podman rm -f -t 0 "$c" >/dev/null 2>&1 || true
    done
}
trap cleanup_containers EXIT

# A name unique to this run, so parallel runs in other checkouts do not collide.
unique_name() { echo "weft-test-$1-$$"; }

#!/usr/bin/env bash
# The seccomp profiles in deploy/seccomp/: the committed JSON is what make-profiles.py derives
# from the installed default profile, and inside a container (podman, runc) io_uring_setup is
# refused by the default profile and by block-io-uring.json (EPERM), and allowed by
# weft-io-uring.json. Needs no Weft: a small probe program makes the call.
source "$(dirname "$0")/lib.sh"
need_tools podman python3 cc

python3 "$WEFT_ROOT/deploy/seccomp/make-profiles.py" --check ||
    fail "deploy/seccomp/*.json are stale: run deploy/seccomp/make-profiles.py and commit the result"
ok "the committed profiles are what make-profiles.py derives from the default"

probe=$WEFT_DEPLOY_WORK/io_uring_probe
cc -O2 -Wall -static -o "$probe" "$WEFT_ROOT/deploy/container/io_uring_probe.c"
"$probe" >/dev/null || skip "io_uring is not available on this host at all: $("$probe")"

run_probe() {  # run_probe [podman options...]: the probe's output inside the slim base image
    podman run --rm --pull=never --network=none -v "$probe:/probe:ro" "$@" \
        "$WEFT_BASE_RUNTIME" /probe || true
}
expect() {  # expect WHAT PATTERN OUTPUT
    grep -q -- "$2" <<<"$3" || fail "$1: expected '$2', got '$3'"
    ok "$1: $3"
}
expect "podman's default profile" "io_uring refused" "$(run_probe)"
expect "weft-io-uring.json" "io_uring available" \
    "$(run_probe --security-opt "seccomp=$WEFT_SECCOMP_IO_URING")"
expect "block-io-uring.json" "Operation not permitted (errno 1)" \
    "$(run_probe --security-opt "seccomp=$WEFT_SECCOMP_BLOCK_IO_URING")"

# Each profile is the default with one rule for the three io_uring calls, nothing else changed.
python3 - "$WEFT_SECCOMP_IO_URING" "$WEFT_SECCOMP_BLOCK_IO_URING" <<'PY' || fail "a profile differs from the default beyond io_uring"
import json, sys
calls = {"io_uring_setup", "io_uring_enter", "io_uring_register"}
default = json.load(open("/usr/share/containers/seccomp.json"))
for path in sys.argv[1:]:
    p = json.load(open(path))
    added = [r for r in p["syscalls"] if calls & set(r["names"])]
    assert len(added) == 1 and set(added[0]["names"]) == calls, (path, added)
    rest = [r for r in p["syscalls"] if r is not added[0]]
    base = [dict(r, names=[n for n in r["names"] if n not in calls]) for r in default["syscalls"]]
    base = [r for r in base if r["names"]]
    assert rest == base, path
    assert {k: v for k, v in p.items() if k != "syscalls"} == {k: v for k, v in default.items() if k != "syscalls"}, path
    print(f"ok: {path.rsplit('/', 1)[-1]}: the default plus {added[0]['action']} for io_uring")
PY

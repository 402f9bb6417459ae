#!/usr/bin/env bash
# Builds the image the plain way, as `podman build -t weft .` does: the Dockerfile's defaults, so
# the build stage builds what the image ships (the suite runs the unit tests on the host). Then
# checks what the runtime stage promises: non-root user, ports, stop signal, health check, entry
# point, and no build tools or headers. WEFT_DEPLOY_UNIT_TESTS=ON builds and runs the unit tests
# in the build stage too, under podman's default seccomp profile (which hides io_uring: the
# io_uring variants skip and say so).
source "$(dirname "$0")/lib.sh"
need_server "a weft binary to put in the image"
need_tools podman

start=$SECONDS
log=$WEFT_DEPLOY_WORK/image-build.log
"$WEFT_ROOT/deploy/scripts/build-image.sh" \
    --build-arg "WEFT_UNIT_TESTS=${WEFT_DEPLOY_UNIT_TESTS:-OFF}" >"$log" 2>&1 || {
    tail -n 60 "$log" >&2
    fail "the image build failed (last lines above; all of it in $log)"
}
grep -E 'tests passed|Total Test time|Hits|Misses|unit tests not built' "$log" || true
# podman reuses the build step's layer when the sources and arguments are the same as in an earlier
# build (a second run of this test, or a CI run of a commit already built on this machine). Its
# output is not shown again then; the layer exists only because that step, the unit tests
# included, succeeded (ctest's failure fails the step), so a cached step counts as passed.
build_step_cached() {
    awk '/STEP [0-9]+\/[0-9]+: RUN .*build-in-image\.sh/ { step = 1; next }
         step && /^--> Using cache/ { found = 1 }
         step && /STEP [0-9]+\/[0-9]+:/ { step = 0 }
         END { exit !found }' "$log"
}
if [ "${WEFT_DEPLOY_UNIT_TESTS:-OFF}" = ON ]; then
    if grep -q '100% tests passed' "$log"; then
        skipped=$(grep -c '[*]*Skipped' "$log" || true)
        ok "the unit tests passed in the image ($skipped skipped where io_uring is hidden)"
    elif build_step_cached; then
        ok "the build step (and its unit tests) came from podman's layer cache: the same sources passed them when that layer was built"
    else
        fail "the unit tests in the image did not all pass: $log"
    fi
fi
ok "built $WEFT_IMAGE in $((SECONDS - start)) s"

inspect() { podman image inspect --format "$1" "$WEFT_IMAGE"; }
[ "$(inspect '{{.Config.User}}')" = "10001:10001" ] || fail "the image's user is '$(inspect '{{.Config.User}}')', not 10001:10001"
ports=$(inspect '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}')
[[ "$ports" == *"8080/tcp"* && "$ports" == *"9090/tcp"* ]] || fail "exposed ports are '$ports'"
[ "$(inspect '{{.Config.StopSignal}}')" = "SIGTERM" ] || fail "stop signal is '$(inspect '{{.Config.StopSignal}}')'"
hc=$(inspect '{{.Config.Healthcheck.Test}}')
[[ "$hc" == *weft-healthcheck* ]] || fail "no HEALTHCHECK in the image (built without --format docker?): '$hc'"
ok "user 10001, ports $ports, SIGTERM, health check $hc"

# Only the runtime: weft, its libraries and plugins; no compiler, no headers.
listing=$(podman run --rm --pull=never --network=none --health-interval=disable --entrypoint bash "$WEFT_IMAGE" -c \
    'ls /opt/weft/bin /opt/weft/lib /opt/weft/lib/weft/plugins; command -v cc c++ cmake || true; ls /opt/weft/include 2>&1 || true')
grep -qx weft <<<"$listing" || fail "no /opt/weft/bin/weft in the image: $listing"
grep -q '^libweft_core.so' <<<"$listing" || fail "no libweft_core in /opt/weft/lib: $listing"
grep -q '^libweft_demo.so' <<<"$listing" || fail "no bundled demo plugin in lib/weft/plugins: $listing"
grep -q 'bin/cc\|bin/c++\|bin/cmake' <<<"$listing" && fail "build tools in the runtime image: $listing"
grep -q 'No such file' <<<"$listing" || fail "headers in the runtime image: $listing"
ok "runtime content: weft, libweft_*, plugins; no build tools or headers"
podman run --rm --pull=never --network=none --health-interval=disable "$WEFT_IMAGE" --version || fail "weft --version failed in the image"

#!/usr/bin/env bash
# Runs the image as users will: ports published on 127.0.0.1 only, the io_uring seccomp profile.
# Gets "Hello, World!" from /, checks the admin endpoints and /metrics (promtool), the health
# check, then SIGTERM with a request in flight: /readyz turns 503, the request gets its whole
# answer, and weft exits 0 within the drain timeout.
source "$(dirname "$0")/lib.sh"
need_image
need_tools podman curl promtool

name=$(unique_name run)
http=$(free_port)
admin=$(free_port)
drain=$(sed -n 's/^drain_timeout *= *\([0-9]*\).*/\1/p' "$WEFT_ROOT/deploy/container/weft.toml")
[ -n "$drain" ] || fail "no drain_timeout in deploy/container/weft.toml"

CONTAINERS+=("$name")
podman run -d --pull=never --name "$name" \
    -p "127.0.0.1:$http:8080" -p "127.0.0.1:$admin:9090" \
    --security-opt "seccomp=$WEFT_SECCOMP_IO_URING" \
    --stop-timeout $((drain + 10)) --health-interval=disable \
    "$WEFT_IMAGE" >/dev/null
wait_status "http://127.0.0.1:$admin/readyz" 200 20 || {
    podman logs "$name" >&2
    fail "/readyz did not answer 200 within 20 s"
}
ok "ready"

body=$(http_get "http://127.0.0.1:$http/")
[ "$HTTP_STATUS" = 200 ] && [ "$body" = "Hello, World!" ] ||
    fail "GET / answered $HTTP_STATUS '$body', expected 200 'Hello, World!'"
ok "GET / -> Hello, World!"

health=$(http_get "http://127.0.0.1:$admin/healthz")
[ "$HTTP_STATUS" = 200 ] || fail "/healthz answered $HTTP_STATUS"
python3 -c 'import json, sys; json.loads(sys.argv[1])' "$health" || fail "/healthz is not JSON: $health"
podman healthcheck run "$name" >/dev/null || fail "the image's HEALTHCHECK reports unhealthy"
ok "/healthz is JSON; the HEALTHCHECK passes"

http_get "http://127.0.0.1:$admin/metrics" >"$WEFT_DEPLOY_WORK/metrics.txt"
[ "$HTTP_STATUS" = 200 ] || fail "/metrics answered $HTTP_STATUS"
promtool check metrics <"$WEFT_DEPLOY_WORK/metrics.txt" || fail "promtool check metrics found problems"
grep -q '^weft_hub_schedule_delay_seconds_bucket' "$WEFT_DEPLOY_WORK/metrics.txt" ||
    fail "/metrics has no weft_hub_schedule_delay_seconds histogram"
ok "/metrics passes promtool check metrics"

logs=$(podman logs "$name" 2>&1)
grep -q 'backend io_uring' <<<"$logs" ||
    fail "with the io_uring profile weft did not run io_uring: $(grep backend <<<"$logs")"
ok "io_uring backend"

[ "$(podman exec "$name" id -u)" = 10001 ] || fail "weft does not run as uid 10001"

# A request in flight when SIGTERM arrives (the demo plugin's /sleep parks its fiber).
inflight=$WEFT_DEPLOY_WORK/inflight.txt
curl -sS --max-time $((drain + 5)) -o "$inflight" -w '%{http_code}' \
    "http://127.0.0.1:$http/sleep?ms=2000" >"$inflight.status" 2>&1 &
client=$!
sleep 0.5
start=$(date +%s.%N)
podman kill --signal TERM "$name" >/dev/null
wait_status "http://127.0.0.1:$admin/readyz" 503 2 || fail "/readyz did not turn 503 while draining"
ok "draining: /readyz answers 503"
status=$(timeout $((drain + 5)) podman wait "$name") || fail "weft did not exit within $((drain + 5)) s of SIGTERM"
took=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$start" "$(date +%s.%N)")
wait $client || true
[ "$(cat "$inflight.status")" = 200 ] && grep -q '^slept 2000 ms' "$inflight" ||
    fail "the request in flight at SIGTERM got '$(cat "$inflight.status")' '$(cat "$inflight" 2>/dev/null)'"
ok "the request in flight finished: $(cat "$inflight")"
[ "$status" = 0 ] || { podman logs --tail 20 "$name" >&2; fail "weft exited with status $status after SIGTERM"; }
python3 -c "import sys; sys.exit(float(sys.argv[1]) >= float(sys.argv[2]))" "$took" "$drain" ||
    fail "the drain took $took s, not within drain_timeout $drain s"
ok "SIGTERM: exit 0 after $took s (drain_timeout $drain s)"

#!/usr/bin/env bash
# Brings up deploy/compose/compose.yaml for real (Weft and Prometheus, ports on 127.0.0.1), waits
# until Prometheus has scraped Weft (up == 1, a hub histogram readable through its query API) and
# has loaded the alert rules, then takes it down.
source "$(dirname "$0")/lib.sh"
need_image
need_tools podman podman-compose curl python3

compose=$WEFT_ROOT/deploy/compose/compose.yaml
project=$(unique_name compose)
prom_image=localhost/weft-prometheus:latest
podman build --pull=never -q -t "$prom_image" "$WEFT_ROOT/deploy/prometheus" >/dev/null ||
    fail "could not build the Prometheus image from deploy/prometheus/Containerfile"

export WEFT_IMAGE PROMETHEUS_IMAGE=$prom_image
WEFT_HTTP_PORT=$(free_port)
WEFT_ADMIN_PORT=$(free_port)
PROMETHEUS_PORT=$(free_port)
export WEFT_HTTP_PORT WEFT_ADMIN_PORT PROMETHEUS_PORT
down() {
    (cd "$WEFT_DEPLOY_WORK" && timeout 60 podman-compose -p "$project" -f "$compose" down -t 20 \
        >/dev/null 2>&1) || true
    local c
    for c in $(podman ps -a -q --filter "label=io.podman.compose.project=$project"); do
        podman rm -f -t 0 "$c" >/dev/null 2>&1 || true
    done
    podman network rm -f "${project}_default" >/dev/null 2>&1 || true
}
trap down EXIT

(cd "$WEFT_DEPLOY_WORK" && timeout 120 podman-compose -p "$project" -f "$compose" up -d) \
    >"$WEFT_DEPLOY_WORK/compose-up.log" 2>&1 || {
    cat "$WEFT_DEPLOY_WORK/compose-up.log" >&2
    fail "podman-compose up failed"
}
wait_status "http://127.0.0.1:$WEFT_ADMIN_PORT/readyz" 200 30 || fail "weft did not become ready"
body=$(http_get "http://127.0.0.1:$WEFT_HTTP_PORT/")
[ "$body" = "Hello, World!" ] || fail "GET / through compose answered $HTTP_STATUS '$body'"
wait_status "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" 200 30 || fail "Prometheus did not become ready"
ok "weft and Prometheus are up"

query() {  # query PROMQL: the first sample's value, or nothing
    curl -sS --max-time 5 --get "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/query" \
        --data-urlencode "query=$1" |
        python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")'
}
deadline=$((SECONDS + 60))
until [ "$(query 'up{job="weft"}')" = 1 ]; do
    [ $SECONDS -lt $deadline ] || {
        curl -sS "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/targets" >&2
        fail "Prometheus did not scrape weft successfully within 60 s"
    }
    sleep 2
done
count=$(query 'sum(weft_hub_schedule_delay_seconds_count{job="weft"})')
[ -n "$count" ] || fail "Prometheus has no weft_hub_schedule_delay_seconds_count"
ok "Prometheus scrapes weft: up 1, schedule-delay observations $count"

rules=$(curl -sS --max-time 5 "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/rules" |
    python3 -c 'import json, sys; print(" ".join(sorted(r["name"] for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"])))')
for a in WeftHubBlockingRepeatedly WeftHubStuck WeftHubScheduleDelayHigh WeftInstanceDown; do
    [[ " $rules " == *" $a "* ]] || fail "Prometheus did not load the alert $a (loaded: $rules)"
done
ok "alert rules loaded: $rules"

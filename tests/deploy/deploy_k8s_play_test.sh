#!/usr/bin/env bash
# Runs deploy/k8s/deployment.yaml for real with `podman play kube` against the local image, with
# the ConfigMap and the seccomp profile, then checks what the probes check (the manifest's own
# paths, on the admin port), GET /, the io_uring backend and the security context; torn down after.
# The test's copy of the manifest differs in what podman needs: one replica (podman makes one pod
# per replica), the container ports published on 127.0.0.1 (podman would publish them on every
# interface), a unique name, and the locally built image.
source "$(dirname "$0")/lib.sh"
need_image
need_tools podman python3 curl

work=$WEFT_DEPLOY_WORK/play-kube
rm -rf "$work"
mkdir -p "$work/seccomp"
cp "$WEFT_SECCOMP_IO_URING" "$work/seccomp/"
name=$(unique_name kube)
http=$(free_port)
admin=$(free_port)
python3 - "$WEFT_ROOT/deploy/k8s/deployment.yaml" "$work/deployment.yaml" "$name" "$WEFT_IMAGE" \
    "$http" "$admin" >"$work/probes" <<'PY'
import sys, yaml
src, dst, name, image, http, admin = sys.argv[1:]
d = yaml.safe_load(open(src))
d["metadata"]["name"] = name
d["spec"]["replicas"] = 1
c = d["spec"]["template"]["spec"]["containers"][0]
c["image"] = image
host = {8080: int(http), 9090: int(admin)}
for p in c["ports"]:
    p["hostIP"] = "127.0.0.1"
    p["hostPort"] = host[p["containerPort"]]
yaml.safe_dump(d, open(dst, "w"))
for probe in ("readinessProbe", "livenessProbe"):
    print(c[probe]["httpGet"]["path"])
PY
mapfile -t probes <"$work/probes"
# podman leaves the ConfigMap's volume and its kube network behind: remove what this test made.
volumes_before=$(podman volume ls -q)
networks_before=$(podman network ls -q --format '{{.Name}}')

teardown() {
    timeout 60 podman play kube --down "$work/deployment.yaml" >/dev/null 2>&1 || true
    local v n
    for v in $(podman volume ls -q); do
        grep -qx "$v" <<<"$volumes_before" || podman volume rm -f "$v" >/dev/null 2>&1 || true
    done
    for n in $(podman network ls -q --format '{{.Name}}'); do
        grep -qx "$n" <<<"$networks_before" || podman network rm -f "$n" >/dev/null 2>&1 || true
    done
}
trap 'teardown; cleanup_containers' EXIT

timeout 120 podman play kube --seccomp-profile-root "$work/seccomp" \
    --configmap "$WEFT_ROOT/deploy/k8s/configmap.yaml" "$work/deployment.yaml" >"$work/play.log" 2>&1 || {
    grep -v 'systemd' "$work/play.log" >&2
    fail "podman play kube failed"
}
ctr="$name-pod-0-weft"
wait_status "http://127.0.0.1:$admin${probes[0]}" 200 30 || {
    podman logs "$ctr" >&2 || true
    fail "the readiness probe's ${probes[0]} did not answer 200 within 30 s"
}
http_get "http://127.0.0.1:$admin${probes[1]}" >/dev/null
[ "$HTTP_STATUS" = 200 ] || fail "the liveness probe's ${probes[1]} answered $HTTP_STATUS"
ok "probes: ${probes[0]} and ${probes[1]} answer 200 on the admin port"

body=$(http_get "http://127.0.0.1:$http/")
[ "$HTTP_STATUS" = 200 ] && [ "$body" = "Hello, World!" ] || fail "GET / answered $HTTP_STATUS '$body'"
ok "GET / -> Hello, World!"

logs=$(podman logs "$ctr" 2>&1)
grep -q 'backend io_uring' <<<"$logs" ||
    fail "the Localhost seccomp profile did not let weft run io_uring: $(grep backend <<<"$logs")"
[ "$(podman exec "$ctr" id -u)" = 10001 ] || fail "the pod does not run as uid 10001"
podman exec "$ctr" touch /probe-ro 2>/dev/null && fail "the root filesystem is writable"
ok "io_uring under the Localhost profile; uid 10001; read-only root filesystem"

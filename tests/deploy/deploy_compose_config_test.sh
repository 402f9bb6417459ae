#!/usr/bin/env bash
# deploy/compose/compose.yaml as podman-compose reads it (its dry run prints the podman commands it
# would run): Weft and Prometheus, every port on 127.0.0.1, Weft under the io_uring profile with
# SIGTERM, Prometheus with the scrape config and rules mounted; and a stop grace period longer
# than the drain timeout.
source "$(dirname "$0")/lib.sh"
need_tools podman podman-compose python3

compose=$WEFT_ROOT/deploy/compose/compose.yaml
project=$(unique_name compose-dry)
# The dry run still creates the project's network: remove it whatever happens.
trap 'podman network rm -f "${project}_default" >/dev/null 2>&1 || true' EXIT
out=$(cd "$WEFT_DEPLOY_WORK" && timeout 60 podman-compose --dry-run -p "$project" -f "$compose" up -d 2>&1) ||
    fail "podman-compose could not read the compose file: $out"
printf '%s\n' "$out" >"$WEFT_DEPLOY_WORK/compose-dry-run.txt"
python3 - "$compose" "$WEFT_ROOT/deploy/container/weft.toml" "$WEFT_DEPLOY_WORK/compose-dry-run.txt" <<'PY' || fail "the compose file is not as expected"
import re, shlex, sys, yaml
out = open(sys.argv[3]).read()
runs = {}
for line in out.splitlines():
    if line.startswith("podman run "):
        args = shlex.split(line)
        name = next(a.split("=", 1)[1] for a in args if a.startswith("--name="))
        runs[name.rsplit("_", 2)[-2]] = args
assert set(runs) == {"weft", "prometheus"}, f"services: {sorted(runs)}"
for svc, args in runs.items():
    ports = [args[i + 1] for i, a in enumerate(args) if a == "-p"]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports), f"{svc} publishes {ports}"
w = runs["weft"]
assert "seccomp=../seccomp/weft-io-uring.json" in w, "weft runs without the io_uring profile"
assert w[w.index("--stop-signal") + 1] == "SIGTERM"
p = " ".join(runs["prometheus"])
for mount in ("prometheus.yml:/etc/prometheus/prometheus.yml", "rules:/etc/prometheus/rules"):
    assert mount in p, f"prometheus lacks the mount {mount}"
grace = yaml.safe_load(open(sys.argv[1]))["services"]["weft"]["stop_grace_period"]
drain = int(re.search(r"^drain_timeout\s*=\s*(\d+)", open(sys.argv[2]).read(), re.M).group(1))
assert int(grace.rstrip("s")) > drain, f"stop_grace_period {grace} <= drain_timeout {drain}"
print(f"ok: weft and prometheus on 127.0.0.1 ({', '.join(a for s in runs.values() for i, a in enumerate(s) if i and s[i-1] == '-p')}); grace {grace} > drain {drain}s")
PY
# The Prometheus configuration it mounts must load.
promtool check config "$WEFT_ROOT/deploy/prometheus/prometheus.yml" >/dev/null ||
    fail "promtool check config deploy/prometheus/prometheus.yml failed"
ok "the mounted prometheus.yml passes promtool check config"

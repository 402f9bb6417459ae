#!/usr/bin/env bash
# deploy/prometheus/: both scrape configurations load (promtool check config), the alert rules
# are valid and pass their unit tests (promtool test rules).
source "$(dirname "$0")/lib.sh"
need_tools promtool python3

dir=$WEFT_ROOT/deploy/prometheus
promtool check rules "$dir"/rules/*.yml || fail "promtool check rules"
promtool check config "$dir/prometheus.yml" || fail "promtool check config prometheus.yml"

# Debian's Prometheus is built without Kubernetes service discovery, so its promtool rejects
# kubernetes_sd_configs. Check the rest of that file (the relabelling) with the discovery swapped
# for an empty static list, and the discovery block's shape by hand.
k8s=$WEFT_DEPLOY_WORK/prometheus-kubernetes.yml
python3 - "$dir/prometheus-kubernetes.yml" "$k8s" <<'PY' || fail "prometheus-kubernetes.yml"
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "kubernetes-pods")
assert job["kubernetes_sd_configs"] == [{"role": "pod"}], job["kubernetes_sd_configs"]
keep = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
assert keep and keep[0]["source_labels"] == ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
for j in cfg["scrape_configs"]:
    if "kubernetes_sd_configs" in j:
        del j["kubernetes_sd_configs"]
        j["static_configs"] = [{"targets": []}]
yaml.safe_dump(cfg, open(sys.argv[2], "w"))
PY
cp -r "$dir/rules" "$WEFT_DEPLOY_WORK/"
promtool check config "$k8s" || fail "promtool check config prometheus-kubernetes.yml (discovery aside)"

promtool test rules "$dir"/tests/*.test.yml || fail "promtool test rules"

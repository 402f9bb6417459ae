#!/usr/bin/env python3
"""Checks deploy/grafana/weft-dashboard.json without Grafana: valid JSON that Grafana can import
(unique panel ids, grid positions, a Prometheus datasource variable), heatmaps of the three hub
histograms, panels for blocking, request rate and latency; and every metric the dashboard and the
alert rules query is one that Weft promises (a typo here would show an empty panel forever)."""

import json
import sys

import metric_names as mn


def main():
    problems = []
    dash = json.loads(mn.DASHBOARD.read_text())
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        problems.append(f"panel ids repeat: {ids}")
    for p in panels:
        gp = p.get("gridPos", {})
        if not all(k in gp for k in ("x", "y", "w", "h")) or gp["x"] + gp["w"] > 24:
            problems.append(f"panel '{p['title']}' has a bad gridPos {gp}")
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"panel '{p['title']}' does not use the $datasource variable")
        if not p.get("targets"):
            problems.append(f"panel '{p['title']}' has no query")
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    if variables.get("datasource", {}).get("query") != "prometheus":
        problems.append("no Prometheus datasource variable")
    for name in ("instance", "hub"):
        if name not in variables:
            problems.append(f"no ${name} variable")

    heatmaps = {m for p in panels if p["type"] == "heatmap" for t in p["targets"]
                for m in mn.promql_metric_names(t["expr"]) if t.get("format") == "heatmap"}
    for h in ("weft_hub_run_duration_seconds", "weft_hub_schedule_delay_seconds", "weft_hub_lag_seconds"):
        if h + "_bucket" not in heatmaps:
            problems.append(f"no heatmap of {h}")
    queried = {n for _, e in mn.dashboard_queries() for n in mn.promql_metric_names(e)}
    for needed in ("weft_hub_blocking_events_total", "http_server_request_duration_seconds_count",
                   "http_server_request_duration_seconds_bucket"):
        if needed not in queried:
            problems.append(f"the dashboard does not show {needed}")

    used = mn.used_names()
    for name, where in sorted(used.items()):
        if name not in mn.PROMISED | mn.HTTPS_ONLY and name not in mn.FROM_PROMETHEUS:
            problems.append(f"{name} (queried by {', '.join(where)}) is not a metric Weft exports")

    for p in problems:
        print("FAIL", p, file=sys.stderr)
    if problems:
        return 1
    print(f"ok: {len(panels)} panels, {len(used)} metric names, all among Weft's metrics")
    return 0


if __name__ == "__main__":
    sys.exit(main())

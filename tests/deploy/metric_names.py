"""The metric names that Weft's dashboard and alert rules query, and the names Weft promises.

Shared by deploy_dashboard_test.py (names against the promised list) and
deploy_scrape_test.py (names against a real scrape of weft's /metrics).
"""

import json
import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/grafana/weft-dashboard.json"
RULES = sorted((ROOT / "deploy/prometheus/rules").glob("*.yml"))

# Series that Prometheus itself makes for each target, not Weft.
FROM_PROMETHEUS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

# The names of the monitor issue (histograms, counters, gauges) and the standard process_* ones.
HISTOGRAMS = {
    "weft_hub_run_duration_seconds",
    "weft_hub_schedule_delay_seconds",
    "weft_hub_lag_seconds",
    "http_server_request_duration_seconds",
}
SCALARS = {
    "weft_hub_busy_seconds_total",
    "weft_hub_idle_seconds_total",
    "weft_hub_blocking_events_total",
    "weft_hub_blocking_seconds_total",
    "weft_hub_blocking_allowed_events_total",
    "weft_hub_blocking_allowed_seconds_total",
    "weft_hub_blocking_reports_dropped_total",
    "weft_hub_fibers",
    "weft_hub_blocking_threshold_seconds",
    "weft_hub_blocked_seconds",
    "weft_build_info",
    "http_server_active_requests",
    "weft_http_connections",
    "weft_http_connections_limit",
    "weft_http_connections_reclaimed_total",
    "weft_http_connections_accepted_total",
    "weft_http_accept_errors_total",
    "weft_http_request_body_bytes",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
}
PROMISED = SCALARS | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}
# Promised too, but only by a server that speaks HTTPS (the deploy scrape's does not).
HTTPS_ONLY = {"weft_tls_certificate_expiration_timestamp_seconds"}

# Words of PromQL that look like metric names but are not (aggregations may be followed by
# `by (...)` rather than by their parenthesis).
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
    "unless", "inf", "nan", "atan2", "sum", "min", "max", "avg", "group", "stddev", "stdvar",
    "count", "count_values", "bottomk", "topk", "quantile",
}
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_TOKEN = re.compile(
    r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`'   # strings
    r"|\{[^}]*\}|\[[^\]]*\]"                           # label matchers, ranges
    r"|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?"                 # Grafana variables
    r"|[A-Za-z_:][A-Za-z0-9_:]*|\d[\d.eE+-]*[a-z]*|\S")


def promql_metric_names(expr):
    """Metric names in a PromQL expression (or a Grafana label_values(...) query)."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*", expr, re.S)
    if m:
        expr = m.group(1)
    tokens = _TOKEN.findall(expr)
    names = set()
    i = 0
    while i < len(tokens):
        t = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if t.lower() in _GROUPING and nxt == "(":
            # Skip the label list: by (instance, hub)
            depth = 0
            while i < len(tokens):
                depth += tokens[i] == "("
                depth -= tokens[i] == ")"
                i += 1
                if tokens[i - 1] == ")" and depth == 0:
                    break
            continue
        if re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", t) and nxt != "(" and t.lower() not in _KEYWORDS:
            names.add(t)
        i += 1
    return names


def dashboard_queries(path=DASHBOARD):
    """(where, expression) for every query of the dashboard: panel targets and variables."""
    dash = json.loads(path.read_text())
    out = []

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dash.get("panels", [])):
        for t in p.get("targets", []):
            if t.get("expr"):
                out.append((f"panel '{p.get('title')}' {t.get('refId')}", t["expr"]))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if v.get("type") == "query":
            q = q.get("query") if isinstance(q, dict) else q
            out.append((f"variable '{v.get('name')}'", q))
    return out


def rule_queries(paths=RULES):
    out = []
    for path in paths:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for r in group["rules"]:
                name = r.get("alert") or r.get("record")
                out.append((f"{path.name} {name}", r["expr"]))
    return out


def used_names():
    """{metric name: [where it is queried]} over the dashboard and the rules."""
    used = {}
    for where, expr in dashboard_queries() + rule_queries():
        for n in promql_metric_names(expr):
            used.setdefault(n, []).append(where)
    return used

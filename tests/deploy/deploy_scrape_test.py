#!/usr/bin/env python3
"""Every metric that the Grafana dashboard and the Prometheus rules query must exist in a real
scrape. First `weft --check-config` on the image's deploy/container/weft.toml; then starts the
built `weft` on free loopback ports, sends a few requests to `/` (so the
request histogram has series), scrapes the admin /metrics, checks it with `promtool check
metrics`, and looks up each name. Skips (77) while server/ has no `weft` target."""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import metric_names as mn

SKIP = 77


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def main():
    weft = os.environ.get("WEFT_DEPLOY_SERVER", "")
    if not weft:
        print("SKIPPED: server/ has no 'weft' target yet; this test scrapes the real binary once it has")
        return SKIP
    if not os.access(weft, os.X_OK):
        print(f"FAIL: {weft} is not built (run the build before ctest)", file=sys.stderr)
        return 1

    config = mn.ROOT / "deploy/container/weft.toml"
    check = subprocess.run([weft, "--check-config", "--config", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        print(f"FAIL: weft --check-config rejects {config.name}:\n{check.stdout}{check.stderr}", file=sys.stderr)
        return 1
    print(f"ok: {check.stdout.strip()}")

    http, admin = free_port(), free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([weft, "--listen", f"127.0.0.1:{http}", "--admin", f"127.0.0.1:{admin}"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if get(f"http://127.0.0.1:{admin}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                print("FAIL: weft did not become ready:\n" + log.read().decode(errors="replace"), file=sys.stderr)
                return 1
            time.sleep(0.1)
        for _ in range(5):
            status, body = get(f"http://127.0.0.1:{http}/")
            if status != 200:
                print(f"FAIL: GET / answered {status}", file=sys.stderr)
                return 1
        status, scrape = get(f"http://127.0.0.1:{admin}/metrics", timeout=5)
        if status != 200:
            print(f"FAIL: GET /metrics answered {status}", file=sys.stderr)
            return 1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    problems = []
    lint = subprocess.run(["promtool", "check", "metrics"], input=scrape, text=True, capture_output=True)
    if lint.returncode != 0:
        problems.append("promtool check metrics: " + (lint.stdout + lint.stderr).strip())
    series = set(re.findall(r"^([A-Za-z_:][A-Za-z0-9_:]*)", scrape, re.M))
    for name, where in sorted(mn.used_names().items()):
        # Names only a server speaking HTTPS has (this one does not; server_tls_test checks
        # them on one that does).
        if name in mn.FROM_PROMETHEUS or name in mn.HTTPS_ONLY:
            continue
        if name not in series:
            problems.append(f"{name} (queried by {', '.join(where)}) is not in weft's /metrics")
    for name in sorted(mn.PROMISED - series):
        problems.append(f"{name}, one of the metric names Weft promises, is not in weft's /metrics")
    for p in problems:
        print("FAIL", p, file=sys.stderr)
    if problems:
        return 1
    print(f"ok: {len(series)} series names scraped; every queried and promised name is there")
    return 0


if __name__ == "__main__":
    sys.exit(main())

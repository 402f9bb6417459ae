#!/usr/bin/env python3
"""The database-bound HTTP workload, Weft vs gevent, side by side (run on purpose, never in CI).

Each request runs SELECT pg_sleep(0.01) on a pooled connection (20 connections) of a real
PostgreSQL; wrk keeps 200 connections busy. Weft serves it with examples/cooperative-plugin's
/pg_pool route (libpq's ordinary blocking API, cooperative through syscall patching); gevent
with its WSGI server, psycopg2 and psycogreen (bench/cooperative/gevent_db_server.py). The runs
interleave (weft, gevent, weft, gevent, ...) and the table gives medians: requests/s, p99, the
server's CPU per request and PostgreSQL's (postmaster and backends) apart.

    scripts/install-deps.sh build test bench
    cmake --build build && python3 bench/cooperative/db_bench.py [--reps 3] [--seconds 10]
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "server"))
import real_servers  # noqa: E402


def sh(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit("%s failed:\n%s%s" % (" ".join(cmd), r.stdout[-3000:], r.stderr[-3000:]))
    return r


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_http(url, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("the server exited (%s) before answering %s" % (proc.returncode, url))
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    sys.exit("no answer from " + url)


def wrk(url, seconds, connections):
    r = sh(["wrk", "-t2", "-c%d" % connections, "-d%ds" % seconds, "--latency",
            "--timeout", "5s", url])
    out = r.stdout
    reqs = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        sys.exit("wrk saw errors:\n" + out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    return reqs, total, float(p99.group(1)) * scale


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--pool", type=int, default=20)
    ap.add_argument("--ms", type=int, default=10)
    ap.add_argument("--hubs", type=int, default=1)
    a = ap.parse_args()
    for tool in ("wrk", "cmake"):
        if shutil.which(tool) is None:
            sys.exit(tool + " is missing: scripts/install-deps.sh build test bench")

    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    if subprocess.run([python, "-c", "import gevent, psycopg2, psycogreen"]).returncode != 0:
        sys.exit("gevent, psycopg2 or psycogreen is missing: scripts/install-deps.sh bench")
    tmp = tempfile.mkdtemp(prefix="weft-db-bench-")
    try:
        stage = os.path.join(tmp, "stage")
        sh(["cmake", "--install", a.build, "--prefix", stage])
        build = os.path.join(tmp, "plugin")
        sh(["cmake", "-S", os.path.join(ROOT, "examples", "cooperative-plugin"), "-B", build,
            "-DCMAKE_PREFIX_PATH=" + stage, "-DCMAKE_BUILD_TYPE=Release"])
        sh(["cmake", "--build", build, "--parallel", "2"])
        plugin = os.path.join(build, "libcooperative.so")
        weft = os.path.join(stage, "bin", "weft")

        rows = {"weft": [], "gevent": []}
        with real_servers.Postgres(max_connections=100) as pg:
            port = real_servers.free_port()
            cfg = os.path.join(tmp, "weft.toml")
            with open(cfg, "w") as f:
                f.write('[server]\nlisten = "127.0.0.1:%d"\n[admin]\nenabled = false\n'
                        '[monitor]\nprint_blocking_reports = false\n[log]\nlevel = "warn"\n'
                        '[[plugin]]\npath = "demo"\n[[plugin]]\npath = "%s"\n'
                        '[plugin.config]\npostgres = "%s"\npg_pool_size = %d\n' %
                        (port, plugin, pg.conninfo, max(1, a.pool // a.hubs)))
            servers = {
                "weft": [weft, "--config", cfg, "--hubs", str(a.hubs)],
                # Debian's python3, which has python3-gevent (a python3 earlier on PATH may not).
                "gevent": [python, os.path.join(ROOT, "bench", "cooperative",
                                                        "gevent_db_server.py"),
                           str(port), pg.conninfo, str(a.pool)],
            }
            url = "http://127.0.0.1:%d/pg_pool?ms=%d" % (port, a.ms)
            for rep in range(a.reps):
                for name in ("weft", "gevent"):
                    env = {k: v for k, v in os.environ.items() if not k.startswith("WEFT_")}
                    p = subprocess.Popen(servers[name], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, env=env)
                    try:
                        wait_http("http://127.0.0.1:%d/" % port, p)
                        wrk(url, 2, a.connections)  # warm up: the pool fills
                        c0, pg0 = cpu_seconds(p.pid), pg.backend_cpu_seconds()
                        reqs, total, p99 = wrk(url, a.seconds, a.connections)
                        c1, pg1 = cpu_seconds(p.pid), pg.backend_cpu_seconds()
                    finally:
                        real_servers.stop(p)
                    row = (reqs, p99, (c1 - c0) / total * 1e6, (pg1 - pg0) / total * 1e6)
                    rows[name].append(row)
                    print("rep %d %-6s %8.0f req/s  p99 %6.1f ms  server %6.1f us/req  "
                          "postgres %6.1f us/req" % ((rep + 1, name) + row), flush=True)
        print("\nmedians of %d interleaved runs (%d s each, wrk -c%d, pool %d, pg_sleep %d ms, "
              "weft on %d hub(s)):" % (a.reps, a.seconds, a.connections, a.pool, a.ms, a.hubs))
        print("| server | requests/s | p99 | server CPU per request | PostgreSQL CPU per "
              "request |\n| --- | --- | --- | --- | --- |")
        for name in ("weft", "gevent"):
            med = [statistics.median(r[i] for r in rows[name]) for i in range(4)]
            print("| %s | %.0f | %.1f ms | %.1f us | %.1f us |" % ((name,) + tuple(med)))
        w = [statistics.median(r[2] for r in rows[n]) for n in ("weft", "gevent")]
        print("\nweft's server CPU per request is %.2fx gevent's" % (w[0] / w[1]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

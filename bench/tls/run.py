#!/usr/bin/env python3
"""HTTPS benchmark (run on purpose, never in CI): weft and nginx side by side on 127.0.0.1 with
the same ECDSA P-256 certificate (a private CA made here with the openssl command), one worker
each (weft --hubs 1, nginx worker_processes 1), both answering GET / with a short text.

Rows, interleaved (weft, nginx, weft, nginx, ...), medians of the repetitions:
  keep-alive  wrk -t1 -c50 over reused connections: requests/s and the server's CPU per request
  h2load      h2load --h1 -c50 (keep-alive, nghttp2's client): requests/s and CPU per request
  handshakes  wrk -t1 -c50 with "Connection: close": every request a new connection and a full
              TLS handshake (wrk does not resume sessions): handshakes/s and CPU per handshake

    scripts/install-deps.sh build test bench && cmake --build build
    python3 bench/tls/run.py [--build build] [--reps 3] [--duration 5]
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench", "http"))
sys.path.insert(0, os.path.join(ROOT, "bench", "proxy"))
sys.path.insert(0, os.path.join(ROOT, "tests", "server"))
import bench as http_bench  # noqa: E402  (cpu_seconds, free_port)
import tls_util  # noqa: E402
from run import Proc  # noqa: E402  (bench/proxy: a process group stopped by its PID)


def wait_tls(port, ca, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca,
                            "https://127.0.0.1:%d/" % port], capture_output=True, text=True)
        if r.stdout == "200":
            return
        time.sleep(0.1)
    sys.exit("nothing answers HTTPS on port %d" % port)


def measure(kind, port, duration, pids):
    url = "https://127.0.0.1:%d/" % port
    cpu0 = http_bench.cpu_seconds(pids)
    if kind == "h2load":
        out = subprocess.run(["h2load", "--h1", "-c50", "-t1", "-D", str(duration), url],
                             capture_output=True, text=True, timeout=duration + 60).stdout
        cpu1 = http_bench.cpu_seconds(pids)
        m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) "
                      r"failed", out)
        n, failed = int(m.group(2)), int(m.group(3))
        rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))
    else:
        argv = ["wrk", "-t1", "-c50", "-d%ds" % duration, url]
        if kind == "handshakes":
            argv[1:1] = ["-H", "Connection: close"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60).stdout
        cpu1 = http_bench.cpu_seconds(pids)
        n = int(re.search(r"(\d+) requests in", out).group(1))
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        failed = sum(int(x) for x in m.groups()) if m else 0
        if kind == "handshakes":
            failed = 0  # a closed connection counts as a read "error" in wrk; none for HTTP
        failed += int(re.search(r"Non-2xx or 3xx responses: (\d+)", out).group(1)) \
            if "Non-2xx" in out else 0
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    if failed:
        sys.exit("%s on port %d: %d failed\n%s" % (kind, port, failed, out))
    return rps, (cpu1 - cpu0) * 1e6 / max(n, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    a = ap.parse_args()
    for tool in ("wrk", "h2load", "nginx", "openssl", "curl"):
        if shutil.which(tool) is None:
            sys.exit(tool + " is missing: scripts/install-deps.sh build test bench")
    weft = os.path.join(a.build, "bin", "weft")
    tmp = tempfile.mkdtemp(prefix="weft-tls-bench-")
    started = []
    try:
        ca = tls_util.PrivateCa(tmp)
        cert = ca.issue("server", ["127.0.0.1"])
        servers = {}
        wport = http_bench.free_port()
        clean = {k: v for k, v in os.environ.items() if not k.startswith("WEFT_")}
        servers["weft"] = (Proc([weft, "--hubs", "1", "--listen", "127.0.0.1:%d" % wport,
                                 "--set", "admin.enabled=false", "--log-level", "warn",
                                 "--set", "server.tls_cert=" + cert.cert,
                                 "--set", "server.tls_key=" + cert.key], env=clean), wport)
        nport = http_bench.free_port()
        ndir = os.path.join(tmp, "nginx")
        os.makedirs(os.path.join(ndir, "logs"))
        with open(os.path.join(ndir, "nginx.conf"), "w") as f:
            f.write("""daemon off; worker_processes 1; %s
error_log %s/logs/error.log warn; pid %s/nginx.pid;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:%d ssl; ssl_certificate %s; ssl_certificate_key %s;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m;
    location / { default_type text/plain; return 200 "Hello, World!"; } } }
""" % ("user root;" if os.getuid() == 0 else "", ndir, ndir, nport, cert.cert, cert.key))
        servers["nginx"] = (Proc(["nginx", "-p", ndir, "-c", os.path.join(ndir, "nginx.conf")]),
                            nport)
        started.extend(p for p, _ in servers.values())
        for _, (p, port) in servers.items():
            wait_tls(port, ca.cert)
        results = {}
        for kind in ("keep-alive", "h2load", "handshakes"):
            for rep in range(a.reps):
                for name, (p, port) in servers.items():
                    rps, cpu = measure(kind, port, a.duration, p.pids())
                    results.setdefault((kind, name), []).append((rps, cpu))
                    print("%-10s %-5s rep %d: %9.0f /s %8.2f us CPU each" %
                          (kind, name, rep + 1, rps, cpu), flush=True)
        print("\nmedians of %d interleaved runs, %d s each, one worker per server:" %
              (a.reps, a.duration))
        print("| row | server | per second | server CPU each | CPU vs nginx |")
        print("| --- | --- | --- | --- | --- |")
        for kind in ("keep-alive", "h2load", "handshakes"):
            ng = statistics.median(v[1] for v in results[(kind, "nginx")])
            for name in ("weft", "nginx"):
                vals = results[(kind, name)]
                rps = statistics.median(v[0] for v in vals)
                cpu = statistics.median(v[1] for v in vals)
                print("| %s | %s | %.0f | %.2f us | %.2fx |" % (kind, name, rps, cpu, cpu / ng))
    finally:
        for s in reversed(started):
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""WebSocket echo benchmark (run on purpose, never in CI): weft's /ws/echo (the demo plugin,
--hubs 1) and a Go echo server (gorilla/websocket, GOMAXPROCS=1) side by side on 127.0.0.1; a Go
load client (bench/websocket/wsload.go) keeps C connections each sending a message and waiting
for its echo. Interleaved repetitions; medians of messages/s, round-trip p50 and p99, and the
server's CPU per message (its utime+stime over the echoes).

    scripts/install-deps.sh build test bench && cmake --build build
    python3 bench/websocket/run.py [--build build] [--reps 3] [--duration 5]
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
import bench as http_bench  # noqa: E402
from run import Proc, sh, wait_ok  # noqa: E402  (bench/proxy)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    a = ap.parse_args()
    if not os.path.isdir("/usr/share/gocode/src/github.com/gorilla/websocket"):
        sys.exit("gorilla/websocket is missing: scripts/install-deps.sh bench")
    tmp = tempfile.mkdtemp(prefix="weft-ws-bench-")
    started = []
    try:
        env = dict(os.environ, GOCACHE=os.path.join(tmp, "gocache"), GOFLAGS="-buildvcs=false",
                   GO111MODULE="off", GOPATH="/usr/share/gocode")
        bins = {}
        for name in ("goecho", "wsload"):
            bins[name] = os.path.join(tmp, name)
            sh(["go", "build", "-o", bins[name], os.path.join(HERE, name + ".go")], env=env)
        clean = {k: v for k, v in os.environ.items() if not k.startswith("WEFT_")}
        wport, gport = http_bench.free_port(), http_bench.free_port()
        servers = {
            "weft": (Proc([os.path.join(a.build, "bin", "weft"), "--hubs", "1", "--listen",
                           "127.0.0.1:%d" % wport, "--set", "admin.enabled=false",
                           "--log-level", "warn"], env=clean), wport),
            "go": (Proc([bins["goecho"], "127.0.0.1:%d" % gport],
                        env=dict(clean, GOMAXPROCS="1")), gport),
        }
        started.extend(p for p, _ in servers.values())
        wait_ok(wport, "/")
        time.sleep(0.5)
        results = {}
        for conns, size in ((1, 64), (50, 64), (50, 4096)):
            for rep in range(a.reps):
                for name, (p, port) in servers.items():
                    pids = p.pids()
                    cpu0 = http_bench.cpu_seconds(pids)
                    out = subprocess.run([bins["wsload"], "ws://127.0.0.1:%d/ws/echo" % port,
                                          str(conns), str(a.duration), str(size)],
                                         capture_output=True, text=True,
                                         timeout=a.duration + 60).stdout
                    cpu1 = http_bench.cpu_seconds(pids)
                    m = re.search(r"messages (\d+) errors (\d+) msgs_per_s (\d+) p50_us (\d+) "
                                  r"p99_us (\d+)", out)
                    if not m or int(m.group(2)):
                        sys.exit("%s: %s" % (name, out))
                    n, mps, p50, p99 = (int(m.group(i)) for i in (1, 3, 4, 5))
                    cpu = (cpu1 - cpu0) * 1e6 / max(n, 1)
                    results.setdefault((conns, size, name), []).append((mps, p50, p99, cpu))
                    print("c%-3d %5dB %-4s rep %d: %8d msg/s p50 %5d us p99 %6d us %6.2f us CPU"
                          % (conns, size, name, rep + 1, mps, p50, p99, cpu), flush=True)
        print("\nmedians of %d interleaved runs, %d s each, one thread per server:" %
              (a.reps, a.duration))
        print("| connections | message | server | messages/s | RTT p50 | RTT p99 | CPU/message |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for (conns, size, name), vals in sorted(results.items()):
            med = [statistics.median(v[i] for v in vals) for i in range(4)]
            print("| %d | %d B | %s | %.0f | %.0f us | %.0f us | %.2f us |" %
                  (conns, size, name, med[0], med[1], med[2], med[3]))
    finally:
        for s in reversed(started):
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

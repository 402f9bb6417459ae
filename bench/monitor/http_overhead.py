#!/usr/bin/env python3
"""Monitoring overhead on real HTTP traffic: the weft server with the watchdog and hub histograms
on (A) versus off (B, `--set monitor.enabled=false`: no watchdog, no statistics), driven by wrk
with 16-deep pipelining on 256 connections against `/`. Runs are interleaved A B A B ...; the
table gives medians of requests/s and of server CPU time per request, and the ratios B/A.
On two shared cores wrk is often the bottleneck of the pipelined shape, so the CPU per request
is the steadier measure of what monitoring costs.

Usage: bench/monitor/http_overhead.py [--weft build/bin/weft] [--reps 5] [--seconds 5]
Everything binds 127.0.0.1; the servers it starts are ended by PID.
"""
import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "http"))
import bench  # noqa: E402  (bench/http/bench.py: Server, run_wrk, free_port)


def start(weft, monitor_on):
    port, admin = bench.free_port(), bench.free_port()
    argv = [weft, "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}",
            "--hubs", "2", "--log-level", "warn"]
    if not monitor_on:
        argv += ["--set", "monitor.enabled=false"]
    return bench.Server("weft-" + ("on" if monitor_on else "off"), argv, port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weft", default=os.path.join(HERE, "..", "..", "build", "bin", "weft"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    shape = {"name": "pipelined", "conns": 256, "pipeline": True}
    results = {True: [], False: []}
    for rep in range(args.reps):
        for on in (True, False):
            server = start(args.weft, on)
            try:
                bench.run_wrk(server, shape, 1)  # warm up
                r = bench.run_wrk(server, shape, args.seconds)
            finally:
                server.stop()
            results[on].append(r)
            print(f"rep {rep + 1} monitor {'on ' if on else 'off'}: {r['rps']:>10.0f} req/s "
                  f"{r['cpu_us']:.3f} us CPU/req", flush=True)
    med = {on: {k: statistics.median(x[k] for x in results[on]) for k in ("rps", "cpu_us")}
           for on in results}
    print()
    print(f"{'monitor':<8} {'req/s (median)':>16} {'CPU us/req (median)':>20}")
    for on in (True, False):
        print(f"{'on' if on else 'off':<8} {med[on]['rps']:>16.0f} {med[on]['cpu_us']:>20.3f}")
    print(f"\nthroughput on/off: {med[True]['rps'] / med[False]['rps']:.3f} "
          f"(cost {100 * (1 - med[True]['rps'] / med[False]['rps']):+.1f} %)")
    print(f"CPU per request on/off: {med[True]['cpu_us'] / med[False]['cpu_us']:.3f} "
          f"(cost {100 * (med[True]['cpu_us'] / med[False]['cpu_us'] - 1):+.1f} %)")


if __name__ == "__main__":
    main()

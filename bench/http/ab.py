#!/usr/bin/env python3
"""Side-by-side CPU per request of two or more `weft` builds (an A/B of a change), run on purpose.

Starts every binary given (each with its embedded default configuration, on 127.0.0.1), then
runs wrk against each in turn, interleaved (A B C, then C B A, ...), and prints each run's
req/s and server CPU per request (utime+stime of all threads over requests served, and utime
alone: a change in user-space code shows there above the kernel's noise), then per
binary the median, its ratio to the first binary's median, and the median of the per-repetition
ratios to the first (paired: robust against the machine's drift during the run). Ends every
process it started.

A process's address layout (ASLR: where its stacks, heap and libraries land, and so which of
its hot lines share cache sets) can move its CPU per request by several percent, and stays for
its life: with --restart every repetition starts fresh processes, so that a difference has to
hold across layouts to show in the medians.

  bench/http/ab.py build-old/bin/weft build/bin/weft            # pipelined, 8 repetitions
  bench/http/ab.py --shape c50 --reps 10 A/bin/weft B/bin/weft
  bench/http/ab.py --shape c50 --reps 10 --restart A/bin/weft B/bin/weft   # across layouts
  bench/http/ab.py --extra=--backend=epoll build/bin/weft build/bin/weft   # same binary, 2 ways

A binary runs from its build tree (it finds its libraries through its RPATH). --extra adds one
argument to every binary after the first (repeat it for more).
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """(utime + stime, utime) of the process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, int(fields[11]) / tick


def wait_listening(port, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def run_wrk(port, shape, seconds):
    conns = 256 if shape in ("pipelined", "c256") else 50
    args = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s"]
    if shape == "pipelined":
        args += ["-s", os.path.join(HERE, "pipeline.lua")]
    args.append(f"http://127.0.0.1:{port}/")
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30).stdout
    m = re.search(r"(\d+) requests in", out)
    if not m:
        sys.exit(f"ab: no request count in wrk's output:\n{out}")
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("binaries", nargs="+", help="weft binaries; the first is the baseline")
    ap.add_argument("--shape", default="pipelined", choices=("pipelined", "c50", "c256"),
                    help="load: wrk -t1 -c256 with 16-deep pipelining, -c50 or -c256")
    ap.add_argument("--reps", type=int, default=8, help="repetitions (default: 8)")
    ap.add_argument("--duration", type=int, default=3, help="seconds per wrk run (default: 3)")
    ap.add_argument("--extra", action="append", default=[],
                    help="an argument for every binary after the first")
    ap.add_argument("--restart", action="store_true",
                    help="start fresh processes (new address layouts) for every repetition")
    a = ap.parse_args()
    if len(a.binaries) < 2 or a.reps < 1 or a.duration < 1:
        ap.error("give two or more binaries, --reps >= 1 and --duration >= 1")
    for b in a.binaries:
        if not os.access(b, os.X_OK):
            ap.error(f"{b}: not an executable")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEFT_")}
    servers = []

    def start_all():
        for i, b in enumerate(a.binaries):
            port = free_port()
            argv = [b, "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{free_port()}"]
            if i > 0:
                argv += a.extra
            p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            servers.append((chr(ord("A") + i), b, p, port))
            if not wait_listening(port, p):
                sys.exit(f"ab: {b} did not start listening on 127.0.0.1:{port}")
        for _, _, _, port in servers:
            run_wrk(port, a.shape, 1)  # warm-up

    def stop_all():
        for _, _, p, _ in servers:
            p.terminate()
        for _, _, p, _ in servers:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        servers.clear()

    names = [(chr(ord("A") + i), b) for i, b in enumerate(a.binaries)]
    cost = {name: [] for name, _ in names}
    user = {name: [] for name, _ in names}
    try:
        start_all()
        for rep in range(a.reps):
            if a.restart and rep > 0:
                stop_all()
                start_all()
            order = servers if rep % 2 == 0 else servers[::-1]
            for name, _, p, port in order:
                c0 = cpu_seconds(p.pid)
                n = run_wrk(port, a.shape, a.duration)
                c1 = cpu_seconds(p.pid)
                cost[name].append((c1[0] - c0[0]) / n * 1e6)
                user[name].append((c1[1] - c0[1]) / n * 1e6)
                print(f"rep {rep + 1} {name} {n / a.duration:>12,.0f} req/s "
                      f"{cost[name][-1]:7.3f} us/req ({user[name][-1]:.3f} in user space)",
                      flush=True)
    finally:
        stop_all()
    fresh = ", fresh processes each" if a.restart else ""
    print(f"\n{a.shape}, {a.reps} interleaved repetitions of {a.duration} s{fresh}; "
          "CPU per request")
    for title, table in (("all (user + kernel)", cost), ("user space only", user)):
        base = table["A"]
        print(title)
        for name, b in names:
            med = statistics.median(table[name])
            paired = statistics.median(x / y for x, y in zip(table[name], base) if y > 0)
            print(f"{name}  {med:7.3f} us/req  /A {med / statistics.median(base):5.3f}  "
                  f"paired /A {paired:5.3f}  {b}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""HTTP benchmark driver for bench/http/run.sh: Weft's demo against nginx and h2o on loopback.

Starts the three servers (each serving "Hello, World!" as text/plain on 127.0.0.1), runs wrk
against each, interleaved, for every repetition and load shape, and reports per server: median
requests/s, median p99 latency, server CPU time per request (utime+stime of the server's
processes over the requests wrk completed), and RSS per idle keep-alive connection (RSS growth
of the server's processes while this script holds N connections open after one request each).
Every process it starts is ended by PID; everything binds 127.0.0.1.
"""
import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    """PIDs of `pid` and its descendants."""
    out = [pid]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.extend(children(int(entry)))
        except (OSError, IndexError, ValueError):
            pass
    return out


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / CLK_TCK


def rss_bytes(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class Server:
    def __init__(self, name, argv, port, env=None, cwd=None, ready_line=None):
        self.name = name
        self.port = port
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=env, cwd=cwd, start_new_session=True)
        if ready_line:
            deadline = time.time() + 10
            while time.time() < deadline:
                line = self.proc.stdout.readline().decode(errors="replace")
                if not line:
                    break
                m = re.match(ready_line, line.strip())
                if m:
                    self.port = int(m.group(1))
                    break
        # Let the output go nowhere from now on (a full pipe would block the server).
        self.drain = subprocess.Popen(["cat"], stdin=self.proc.stdout, stdout=subprocess.DEVNULL)
        self.wait_ready()

    def wait_ready(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(REQUEST)
                    if b"Hello, World!" in s.recv(4096):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer on port {self.port}")

    def pids(self):
        return children(self.proc.pid)

    def stop(self):
        for p in reversed(self.pids()):
            try:
                os.kill(p, signal.SIGTERM)
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            for p in self.pids():
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            self.proc.wait()
        self.drain.wait(timeout=5)


def parse_latency(text):
    m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return float("nan")
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def run_wrk(server, shape, duration):
    args = ["wrk", "--latency", "-t1", f"-c{shape['conns']}", f"-d{duration}s"]
    if shape.get("pipeline"):
        args += ["-s", os.path.join(HERE, "pipeline.lua")]
    args.append(f"http://127.0.0.1:{server.port}/")
    pids = server.pids()
    cpu0 = cpu_seconds(pids)
    out = subprocess.run(args, capture_output=True, text=True, timeout=duration + 30).stdout
    cpu1 = cpu_seconds(pids)
    m = re.search(r"(\d+) requests in", out)
    requests = int(m.group(1)) if m else 0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)) if requests else 0.0
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or (errors and shape["conns"] <= 256 and "timeout 0" not in errors.group(1)):
        sys.stderr.write(f"warning: {server.name} {shape['name']}: "
                         f"{bad.group(0) if bad else ''} {errors.group(0) if errors else ''}\n")
    return {
        "rps": rps,
        "p99_ms": parse_latency(out),
        "cpu_us": (cpu1 - cpu0) * 1e6 / requests if requests else float("nan"),
    }


def idle_rss(server, count):
    """RSS growth of `server` per connection held open (after one request each)."""
    before = rss_bytes(server.pids())
    conns = []
    try:
        for start in range(0, count, 500):
            batch = []
            for _ in range(min(500, count - start)):
                s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                s.sendall(REQUEST)
                batch.append(s)
            for s in batch:
                data = b""
                while b"Hello, World!" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise RuntimeError(f"{server.name} closed a connection")
                    data += chunk
            conns.extend(batch)
        time.sleep(1.0)
        after = rss_bytes(server.pids())
    finally:
        for s in conns:
            s.close()
    time.sleep(1.0)
    return (after - before) / count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weft", required=True, help="the weft_http_demo binary")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--idle", type=int, default=10000)
    args = ap.parse_args()

    for tool in ("wrk", "nginx", "h2o"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} not found (Debian packages wrk, nginx-light, h2o)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, args.idle + 1000))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < args.idle + 100:
        sys.exit(f"bench: need {args.idle + 100} file descriptors, the hard limit is {hard}")

    scratch = tempfile.mkdtemp(prefix="weft-http-bench-")
    os.chmod(scratch, 0o755)  # h2o serves as 'nobody'
    with open(os.path.join(scratch, "hello.txt"), "w") as f:
        f.write("Hello, World!")
    os.chmod(os.path.join(scratch, "hello.txt"), 0o644)
    ports = {}
    for conf in ("nginx.conf", "h2o.conf"):
        ports[conf] = free_port()
        with open(os.path.join(HERE, conf)) as f:
            text = f.read().replace("@PORT@", str(ports[conf])).replace("@DIR@", scratch)
        with open(os.path.join(scratch, conf), "w") as f:
            f.write(text)

    servers = []
    try:
        servers.append(Server("weft", [args.weft, "127.0.0.1:0"], 0,
                              ready_line=r"^listening on 127\.0\.0\.1:(\d+)$"))
        servers.append(Server("nginx", ["nginx", "-p", scratch, "-c",
                                        os.path.join(scratch, "nginx.conf"), "-e",
                                        os.path.join(scratch, "nginx-error.log")],
                              ports["nginx.conf"]))
        servers.append(Server("h2o", ["h2o", "-c", os.path.join(scratch, "h2o.conf")],
                              ports["h2o.conf"]))
        shapes = [
            {"name": "-t1 -c50", "conns": 50},
            {"name": "-t1 -c256", "conns": 256},
            {"name": "pipelined 16 x 256", "conns": 256, "pipeline": True},
        ]
        for s in servers:  # warm-up
            run_wrk(s, shapes[2], 1)
        results = {(s.name, sh["name"]): [] for s in servers for sh in shapes}
        for rep in range(args.reps):
            for sh in shapes:
                for s in servers:
                    r = run_wrk(s, sh, args.duration)
                    results[(s.name, sh["name"])].append(r)
                    print(f"  rep {rep + 1} {s.name:6} {sh['name']:20} {r['rps']:>12,.0f} req/s"
                          f"  p99 {r['p99_ms']:8.2f} ms  cpu {r['cpu_us']:6.2f} us/req",
                          flush=True)
        idle = {}
        for s in servers:
            idle[s.name] = idle_rss(s, args.idle)
            print(f"  {s.name:6} idle keep-alive: {idle[s.name]:,.0f} bytes RSS per connection",
                  flush=True)

        print()
        print(f"loopback, {os.cpu_count()} CPUs, {args.reps} interleaved repetitions of "
              f"{args.duration} s; medians")
        print(f"{'server':8}{'load':22}{'req/s':>12}{'p99 ms':>10}{'CPU us/req':>12}")
        for s in servers:
            for sh in shapes:
                rs = results[(s.name, sh["name"])]
                print(f"{s.name:8}{sh['name']:22}"
                      f"{statistics.median(r['rps'] for r in rs):>12,.0f}"
                      f"{statistics.median(r['p99_ms'] for r in rs):>10.2f}"
                      f"{statistics.median(r['cpu_us'] for r in rs):>12.2f}")
            print(f"{s.name:8}{'idle RSS/connection':22}{idle[s.name]:>12,.0f} bytes "
                  f"({args.idle} connections)")
        med = {k: statistics.median(r["rps"] for r in v) for k, v in results.items()}
        cpu = {k: statistics.median(r["cpu_us"] for r in v) for k, v in results.items()}
        p = "pipelined 16 x 256"
        print()
        print(f"pipelined req/s, weft / nginx: {med[('weft', p)] / med[('nginx', p)]:.2f}x "
              f"(target >= 6x)")
        for sh in shapes:
            n = sh["name"]
            print(f"CPU per request, weft / nginx, {n}: {cpu[('weft', n)] / cpu[('nginx', n)]:.2f} "
                  f"(target <= 1)")
        print(f"idle RSS per connection, weft: {idle['weft']:,.0f} bytes (target <= 2048)")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

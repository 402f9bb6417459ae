#!/usr/bin/env python3
"""HTTP benchmark driver for bench/http/run.sh: Weft against a floor, nginx and h2o on loopback.

Starts four servers on 127.0.0.1, each answering GET / with "Hello, World!" as text/plain:
  weft   the `weft` server binary with its embedded default configuration (demo plugin, watchdog
         on, one hub per CPU), only --listen and --admin moved to free ports, WEFT_* unset;
  floor  bench/floor/floor.c: io_uring, one thread per CPU, a canned answer for every
         "\r\n\r\n" it reads, no parsing: the lower bound on CPU per request;
  nginx  bench/http/nginx.conf (2 workers) and h2o bench/http/h2o.conf (2 threads);
  floor-f  on request only (--servers): the floor with -f, its answer carrying the Server and
         Date fields weft sends, the same 129 bytes: what those bytes cost the floor. Ratios
         stay against the plain floor.
Runs wrk against each, interleaved (weft floor nginx h2o weft floor nginx h2o ...) for every
repetition and load shape, and reports per server and shape the medians of requests/s, p99
latency and server CPU time per request (utime+stime from /proc/PID/stat of the server's
processes, all threads, over the requests wrk completed; user and system apart too), each as a
ratio to the floor, and the CPU ratio paired by repetition (each run against the floor's run
of its repetition, then the median: steadier on a shared machine); then the RSS per idle keep-alive connection (RSS growth while this script holds N connections open after
one request each). Every process it starts is ended by PID; everything binds 127.0.0.1.
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
    """(user, system) CPU seconds of the processes, all their threads."""
    user = system = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])  # utime
            system += int(fields[12])  # stime
        except OSError:
            pass
    return user / CLK_TCK, system / CLK_TCK


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
    """A server process in its own session, its output in `log` (a file)."""

    def __init__(self, name, argv, port, env=None, cwd=None, ready_line=None, log=None):
        self.name = name
        self.port = port
        self.log = log or os.path.join(tempfile.gettempdir(),
                                       f"weft-bench-{name}-{os.getpid()}.log")
        self._own_log = log is None
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                         start_new_session=True)
        if ready_line:
            deadline = time.time() + 10
            while time.time() < deadline and self.proc.poll() is None:
                m = re.search(ready_line, self.output(), re.M)
                if m:
                    self.port = int(m.group(1))
                    break
                time.sleep(0.05)
        self.wait_ready()

    def output(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_ready(self):
        deadline = time.time() + 10
        while time.time() < deadline and self.proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(REQUEST)
                    if b"Hello, World!" in s.recv(4096):
                        return
            except OSError:
                time.sleep(0.05)
        tail = "\n".join(self.output().splitlines()[-20:])
        self.stop()
        raise RuntimeError(f"{self.name} did not answer on port {self.port}; its output:\n{tail}")

    def pids(self):
        return children(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            for p in reversed(self.pids()):
                try:
                    os.kill(p, signal.SIGTERM)
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                for p in self.pids():
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                self.proc.wait(timeout=10)
        if self._own_log:
            try:
                os.unlink(self.log)
            except OSError:
                pass


def to_ms(value, unit):
    v = float(value)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def parse_latency(text):
    """wrk's p99 in ms; NaN when missing, or when wrk reports 0 beside a non-zero mean (its
    percentiles are often all 0 under pipelining, wg/wrk#236)."""
    m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return float("nan")
    p99 = to_ms(m.group(1), m.group(2))
    avg = re.search(r"^\s*Latency\s+([\d.]+)(us|ms|s)\b", text, re.M)
    if p99 == 0 and avg and to_ms(avg.group(1), avg.group(2)) > 0:
        return float("nan")
    return p99


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
    def per_request(seconds):
        return seconds * 1e6 / requests if requests else float("nan")

    user, system = per_request(cpu1[0] - cpu0[0]), per_request(cpu1[1] - cpu0[1])
    return {
        "rps": rps,
        "p99_ms": parse_latency(out),
        "cpu_us": user + system,
        "user_us": user,
        "sys_us": system,
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


SHAPES = {
    "pipelined": {"name": "pipelined 16 x 256", "conns": 256, "pipeline": True},
    "c50": {"name": "-t1 -c50", "conns": 50},
    "c256": {"name": "-t1 -c256", "conns": 256},
}
SERVERS = ("weft", "floor", "nginx", "h2o")
EXTRA_SERVERS = ("floor-f",)


def median(values):
    """The median of the values that are not NaN (NaN when none is)."""
    vs = [v for v in values if v == v]
    return statistics.median(vs) if vs else float("nan")


def ratio(a, b):
    return a / b if b and b == b and a == a else float("nan")


def main():
    root = os.path.normpath(os.path.join(HERE, "..", ".."))
    ap = argparse.ArgumentParser(
        description="Weft vs a minimal io_uring floor vs nginx vs h2o under wrk on 127.0.0.1: "
        "req/s, p99, server CPU us per request (and its ratio to the floor), idle RSS per "
        "connection. Medians of interleaved repetitions.")
    ap.add_argument("--weft", default=os.path.join(root, "build", "bin", "weft"),
                    help="the weft server binary (build target weft; its demo plugin, target "
                    "weft_demo, must be built too) (default: %(default)s)")
    ap.add_argument("--floor", default=os.path.join(root, "build", "bench", "floor", "floor"),
                    help="the floor binary built from bench/floor/floor.c (default: %(default)s)")
    ap.add_argument("--servers", default=",".join(SERVERS),
                    help="comma-separated subset of %(default)s, in run order; floor-f (the "
                    "floor answering with weft's Server and Date fields) may be added")
    ap.add_argument("--shapes", default="pipelined,c50",
                    help="comma-separated load shapes: pipelined (wrk -t1 -c256 with "
                    "pipeline.lua, 16 deep), c50 (wrk -t1 -c50), c256 (wrk -t1 -c256) "
                    "(default: %(default)s)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default: 5)")
    ap.add_argument("--reps", type=int, default=3,
                    help="interleaved repetitions; the table gives medians (default: 3)")
    ap.add_argument("--idle", type=int, default=10000,
                    help="idle keep-alive connections held for the RSS figure; 0 skips it "
                    "(default: 10000)")
    args = ap.parse_args()
    names = [n for n in args.servers.split(",") if n]
    known = SERVERS + EXTRA_SERVERS
    if not names or any(n not in known for n in names) or len(set(names)) != len(names):
        sys.exit(f"bench: --servers takes a subset of {','.join(known)}")
    if any(n not in SHAPES for n in args.shapes.split(",") if n):
        sys.exit(f"bench: --shapes takes a subset of {','.join(SHAPES)}")
    shapes = [SHAPES[n] for n in dict.fromkeys(args.shapes.split(",")) if n]
    if args.duration < 1 or args.reps < 1 or args.idle < 0 or not shapes:
        sys.exit("bench: --duration and --reps must be >= 1, --idle >= 0, --shapes non-empty")

    for tool in ["wrk"] + [n for n in names if n in ("nginx", "h2o")]:
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} not found (Debian packages wrk, nginx-light, h2o)")
    for n, path in (("weft", args.weft), ("floor", args.floor), ("floor-f", args.floor)):
        if n in names and not os.access(path, os.X_OK):
            sys.exit(f"bench: {path} is not an executable (--{n.split('-')[0]})")
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

    def start(name):
        log = os.path.join(scratch, name + ".log")
        if name == "weft":
            # The embedded default configuration: no --config, no WEFT_* from our environment.
            env = {k: v for k, v in os.environ.items() if not k.startswith("WEFT_")}
            port, admin = free_port(), free_port()
            return Server("weft", [args.weft, "--listen", f"127.0.0.1:{port}",
                                   "--admin", f"127.0.0.1:{admin}"], port, env=env, log=log)
        if name in ("floor", "floor-f"):
            return Server(name, [args.floor] + (["-f"] if name == "floor-f" else [])
                          + [str(free_port())], 0, log=log,
                          ready_line=r"^listening on 127\.0\.0\.1:(\d+)")
        if name == "nginx":
            return Server("nginx", ["nginx", "-p", scratch, "-c",
                                    os.path.join(scratch, "nginx.conf"), "-e",
                                    os.path.join(scratch, "nginx-error.log")],
                          ports["nginx.conf"], log=log)
        return Server("h2o", ["h2o", "-c", os.path.join(scratch, "h2o.conf")],
                      ports["h2o.conf"], log=log)

    servers = []
    try:
        for n in names:
            servers.append(start(n))
        if "weft" in names:
            ready = re.search(r"^.*ready in.*$", servers[names.index("weft")].output(), re.M)
            print(f"  weft: {ready.group(0).strip() if ready else '(no ready line in its log)'}")
        for s in servers:  # warm-up
            run_wrk(s, SHAPES["pipelined"], 1)
        results = {(s.name, sh["name"]): [] for s in servers for sh in shapes}
        for rep in range(args.reps):
            for sh in shapes:
                for s in servers:
                    r = run_wrk(s, sh, args.duration)
                    results[(s.name, sh["name"])].append(r)
                    print(f"  rep {rep + 1} {s.name:7} {sh['name']:20} {r['rps']:>12,.0f} req/s"
                          f"  p99 {r['p99_ms']:8.2f} ms  cpu {r['cpu_us']:6.2f} us/req"
                          f" (user {r['user_us']:5.2f}, sys {r['sys_us']:5.2f})",
                          flush=True)
        idle = {}
        if args.idle:
            for s in servers:
                idle[s.name] = idle_rss(s, args.idle)
                print(f"  {s.name:7} idle keep-alive: {idle[s.name]:,.0f} bytes RSS per "
                      f"connection", flush=True)

        med = {k: {f: median(r[f] for r in v)
                   for f in ("rps", "p99_ms", "cpu_us", "user_us", "sys_us")}
               for k, v in results.items()}
        has_floor = "floor" in names
        # The ratio to the floor's run of the same repetition, then the median: drift on a
        # shared machine moves both runs of a pair alike, and the ratio of the medians would
        # keep it.
        paired = {k: median(ratio(r["cpu_us"], f["cpu_us"])
                            for r, f in zip(v, results[("floor", k[1])]))
                  for k, v in results.items() if has_floor}
        print()
        print(f"loopback, {os.cpu_count()} CPUs, {args.reps} interleaved repetitions of "
              f"{args.duration} s ({' '.join(names)}); medians. CPU = server utime+stime, "
              f"all threads, per request served; paired = median over repetitions of the CPU "
              f"ratio to the floor's run in the same repetition")
        print(f"{'server':8}{'load':22}{'req/s':>12}{'p99 ms':>10}{'CPU us/req':>12}"
              f"{'user':>7}{'sys':>7}"
              + (f"{'CPU/floor':>11}{'paired':>8}{'req/s/floor':>13}" if has_floor else ""))
        for sh in shapes:
            fl = med.get(("floor", sh["name"]))
            for s in servers:
                m = med[(s.name, sh["name"])]
                line = (f"{s.name:8}{sh['name']:22}{m['rps']:>12,.0f}{m['p99_ms']:>10.2f}"
                        f"{m['cpu_us']:>12.2f}{m['user_us']:>7.2f}{m['sys_us']:>7.2f}")
                if has_floor:
                    line += (f"{ratio(m['cpu_us'], fl['cpu_us']):>10.2f}x"
                             f"{paired[(s.name, sh['name'])]:>7.2f}x"
                             f"{ratio(m['rps'], fl['rps']):>12.2f}x")
                print(line)
        for s in servers:
            if s.name in idle:
                print(f"{s.name:8}{'idle RSS/connection':22}{idle[s.name]:>12,.0f} bytes "
                      f"({args.idle} connections)")
        p, n = "pipelined 16 x 256", "nginx"
        if "weft" in names and n in names:
            print()
            if ("weft", p) in med:
                print(f"pipelined req/s, weft / nginx: "
                      f"{ratio(med[('weft', p)]['rps'], med[(n, p)]['rps']):.2f}x (target >= 6x)")
            for sh in shapes:
                k = sh["name"]
                print(f"CPU per request, weft / nginx, {k}: "
                      f"{ratio(med[('weft', k)]['cpu_us'], med[(n, k)]['cpu_us']):.2f} "
                      f"(target <= 1)")
        if any(m["p99_ms"] != m["p99_ms"] for m in med.values()):
            print("p99 nan: wrk gave no usable percentiles (all 0 under pipelining: wg/wrk#236)")
        if idle and args.idle < 1000:
            print(f"idle RSS: {args.idle} connections are too few to measure (the servers reuse "
                  f"what the 256-connection runs left); the default is 10000")
        if "weft" in idle:
            print(f"idle RSS per connection, weft: {idle['weft']:,.0f} bytes (target <= 2048)")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

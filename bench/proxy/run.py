#!/usr/bin/env python3
"""Reverse-proxy benchmark (run on purpose, never in CI): three proxies forward GET requests to
one upstream over pooled keep-alive connections, side by side on 127.0.0.1:

  weft   the `weft` binary with bench/proxy's plugin (weft::http::Client), built against the
         staged SDK, one hub per CPU;
  nginx  proxy_pass to an upstream block with `keepalive 512`, 2 workers;
  go     net/http/httputil.ReverseProxy (bench/proxy/goproxy.go), GOMAXPROCS = CPUs.

Rows: an HTTP upstream (bench/floor's io_uring server, a canned answer) and an HTTPS one (nginx
with an ECDSA P-256 certificate from a private CA made here). wrk -t1 at 50 and 256 connections,
interleaved repetitions; medians of requests/s and of the proxy's CPU time per request (its
processes' utime+stime over the requests wrk completed).

    scripts/install-deps.sh build test bench && cmake --build build
    python3 bench/proxy/run.py [--build build] [--reps 3] [--duration 5]
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench", "http"))
sys.path.insert(0, os.path.join(ROOT, "tests", "server"))
import bench as http_bench  # noqa: E402  (Server, cpu_seconds, children, free_port)
import tls_util  # noqa: E402


def sh(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit("%s failed:\n%s%s" % (" ".join(cmd), r.stdout[-3000:], r.stderr[-3000:]))
    return r


class Proc:
    """A process group we started, stopped by its PID."""

    def __init__(self, argv, env=None, cwd=None):
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=env, cwd=cwd, start_new_session=True)

    def pids(self):
        return http_bench.children(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def wait_ok(port, path, timeout=15):
    import urllib.request
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    sys.exit("nothing answers 200 on port %d%s" % (port, path))


def wrk(port, path, conns, duration, pids):
    cpu0 = http_bench.cpu_seconds(pids)
    out = subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % duration,
                          "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    cpu1 = http_bench.cpu_seconds(pids)
    n = int(re.search(r"(\d+) requests in", out).group(1))
    if re.search(r"Non-2xx or 3xx responses", out):
        sys.exit("errors through the proxy on port %d:\n%s" % (port, out))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return rps, (cpu1 - cpu0) * 1e6 / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    a = ap.parse_args()
    for tool in ("wrk", "nginx", "go", "openssl", "cc"):
        if shutil.which(tool) is None:
            sys.exit(tool + " is missing: scripts/install-deps.sh build test bench")
    tmp = tempfile.mkdtemp(prefix="weft-proxy-bench-")
    started = []
    try:
        # Weft's plugin against the staged SDK; the floor; the Go proxy.
        stage = os.path.join(tmp, "stage")
        sh(["cmake", "--install", a.build, "--prefix", stage])
        sh(["cmake", "-S", HERE, "-B", os.path.join(tmp, "plugin"),
            "-DCMAKE_PREFIX_PATH=" + stage])
        sh(["cmake", "--build", os.path.join(tmp, "plugin")])
        plugin = os.path.join(tmp, "plugin", "libproxy.so")
        floor_bin = os.path.join(tmp, "floor")
        sh(["cc", "-O2", "-std=c11", "-o", floor_bin, os.path.join(ROOT, "bench", "floor",
                                                                  "floor.c"),
            "-luring", "-lpthread"])
        gobin = os.path.join(tmp, "goproxy")
        env = dict(os.environ, GOCACHE=os.path.join(tmp, "gocache"), GOFLAGS="-buildvcs=false",
                   GO111MODULE="off", GOPATH=os.path.join(tmp, "gopath"))
        sh(["go", "build", "-o", gobin, os.path.join(HERE, "goproxy.go")], env=env)

        # Upstreams: the floor (HTTP) and nginx over TLS.
        ca = tls_util.PrivateCa(tmp)
        cert = ca.issue("upstream", ["127.0.0.1"])
        up_nginx = tls_util.Nginx(tmp, [("tls", cert)])
        up_nginx.__enter__()
        started.append(up_nginx)
        floor_port = http_bench.free_port()
        floor = Proc([floor_bin, str(floor_port)])
        started.append(floor)
        time.sleep(0.5)
        rows = {"http": ("http://127.0.0.1:%d" % floor_port, "/"),
                "https": ("https://127.0.0.1:%d" % up_nginx.port("tls"), "/hello.txt")}

        results = {}
        for row, (upstream, path) in rows.items():
            proxies = {}
            # weft
            wport = http_bench.free_port()
            cfg = os.path.join(tmp, "weft-%s.toml" % row)
            with open(cfg, "w") as f:
                f.write('[server]\nlisten = "127.0.0.1:%d"\n[admin]\nenabled = false\n'
                        '[log]\nlevel = "warn"\n[[plugin]]\npath = "%s"\n[plugin.config]\n'
                        'upstream = "%s"\nca_file = "%s"\n' % (wport, plugin, upstream, ca.cert))
            clean = {k: v for k, v in os.environ.items() if not k.startswith("WEFT_")}
            proxies["weft"] = (Proc([os.path.join(stage, "bin", "weft"), "--config", cfg],
                                    env=clean), wport)
            # nginx proxy_pass with upstream keep-alive
            nport = http_bench.free_port()
            ndir = os.path.join(tmp, "nginx-proxy-" + row)
            os.makedirs(os.path.join(ndir, "logs"))
            with open(os.path.join(ndir, "nginx.conf"), "w") as f:
                f.write("""daemon off; worker_processes 2; %s
error_log %s/logs/error.log warn; pid %s/nginx.pid;
events { worker_connections 4096; }
http { access_log off;
  upstream up { server %s; keepalive 512; }
  server { listen 127.0.0.1:%d;
    location / { proxy_pass %s://up; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_ssl_trusted_certificate %s;
      proxy_ssl_verify on; proxy_ssl_session_reuse on; proxy_ssl_name 127.0.0.1; } } }
""" % ("user root;" if os.getuid() == 0 else "", ndir, ndir, upstream.split("//")[1], nport,
       upstream.split(":")[0], ca.cert))
            proxies["nginx"] = (Proc(["nginx", "-p", ndir, "-c",
                                      os.path.join(ndir, "nginx.conf")]), nport)
            # Go
            gport = http_bench.free_port()
            proxies["go"] = (Proc([gobin, "127.0.0.1:%d" % gport, upstream, ca.cert]), gport)
            started.extend(p for p, _ in proxies.values())
            for name, (p, port) in proxies.items():
                wait_ok(port, path)
            for conns in (50, 256):
                for rep in range(a.reps):
                    for name, (p, port) in proxies.items():
                        wrk(port, path, conns, 1, p.pids())  # warm the pools
                        rps, cpu = wrk(port, path, conns, a.duration, p.pids())
                        results.setdefault((row, conns, name), []).append((rps, cpu))
                        print("%-5s c%-3d %-5s rep %d: %9.0f req/s %7.2f us/req" %
                              (row, conns, name, rep + 1, rps, cpu), flush=True)
            for p, _ in proxies.values():
                p.stop()

        print("\nmedians of %d interleaved runs, %d s each, wrk -t1:" % (a.reps, a.duration))
        print("| upstream | connections | proxy | requests/s | proxy CPU per request | vs nginx |")
        print("| --- | --- | --- | --- | --- | --- |")
        for (row, conns, name), vals in sorted(results.items()):
            rps = statistics.median(v[0] for v in vals)
            cpu = statistics.median(v[1] for v in vals)
            ng = statistics.median(v[1] for v in results[(row, conns, "nginx")])
            print("| %s | %d | %s | %.0f | %.2f us | %.2fx |" % (row, conns, name, rps, cpu,
                                                                 cpu / ng))
    finally:
        for s in reversed(started):
            s.stop() if isinstance(s, Proc) else s.__exit__(None, None, None)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

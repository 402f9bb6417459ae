#!/usr/bin/env python3
"""What load shedding (or a stall budget) does to a route's latency while another route keeps
blocking its hub.

Runs the `weft` binary twice on 127.0.0.1 (port 0), the protection off then on, each time for
--seconds: --blockers clients keep calling the demo plugin's /block?ms=--block-ms (a fresh
connection each, so they land on every hub) while --clients clients loop on a light route.
Prints, for each run, the light route's answers (200 and 503) and the p50/p90/p99/max latency
of its 200s and of all its answers.

--protect shed (default): [shed] with --budget; the light route is the demo plugin's GET /.
--protect stall: [stall] budget 0.2 s (cool-down 60 s); the light route is GET /calm of a
second plugin (the test plugin tests/server/plugins/calm_plugin.cpp, --calm-plugin).

Bounded load on loopback only; run it on purpose on a quiet machine, never in CI.

    python3 bench/monitor/shed_p99.py [--protect stall]
"""

import argparse
import http.client
import re
import subprocess
import tempfile
import threading
import time

READY = re.compile(r"serving http://(\S+) on .* admin http://(\S+);")


def request(addr, path):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        t = time.perf_counter()
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status, time.perf_counter() - t
    finally:
        c.close()


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run(args, on):
    sets = ["--set", "monitor.print_blocking_reports=false", "--plugin", args.plugin]
    if args.protect == "shed":
        sets += ["--set", "shed.enabled=%s" % ("true" if on else "false"),
                 "--set", "shed.budget=%s" % args.budget]
    else:
        sets += ["--plugin", args.calm_plugin, "--set", "stall.cooldown=60s",
                 "--set", "stall.budget=%s" % ("0.2s" if on else "0s")]
    light = "/" if args.protect == "shed" else "/calm"
    with tempfile.TemporaryDirectory() as tmp:
        log = open(tmp + "/weft.log", "w+")
        p = subprocess.Popen([args.weft, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                              "--hubs", str(args.hubs)] + sets,
                             stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        try:
            deadline = time.monotonic() + 10
            while True:
                log.seek(0)
                m = READY.search(log.read())
                if m:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("weft did not start")
                time.sleep(0.02)
            addr = m.group(1)
            stop = threading.Event()
            ok, all_, codes, lock = [], [], {}, threading.Lock()

            def blocker():
                while not stop.is_set():
                    request(addr, "/block?ms=%d" % args.block_ms)

            def client():
                while not stop.is_set():
                    status, dt = request(addr, light)
                    with lock:
                        codes[status] = codes.get(status, 0) + 1
                        all_.append(dt)
                        if status == 200:
                            ok.append(dt)

            threads = [threading.Thread(target=blocker) for _ in range(args.blockers)]
            threads += [threading.Thread(target=client) for _ in range(args.clients)]
            for t in threads:
                t.start()
            time.sleep(args.seconds)
            stop.set()
            for t in threads:
                t.join(60)
            ms = lambda x: "%.1f" % (x * 1000)  # noqa: E731
            print("%s %-3s  GET %s: %s  200s p50 %s p90 %s p99 %s max %s ms; all answers p99 %s ms"
                  % (args.protect, "on" if on else "off", light, dict(sorted(codes.items())),
                     ms(pct(ok, .5)),
                     ms(pct(ok, .9)), ms(pct(ok, .99)), ms(max(ok) if ok else float("nan")),
                     ms(pct(all_, .99))))
        finally:
            p.terminate()
            p.wait(20)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weft", default="build/bin/weft")
    ap.add_argument("--plugin", default="build/lib/weft/plugins/libweft_demo.so")
    ap.add_argument("--hubs", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--blockers", type=int, default=1)
    ap.add_argument("--block-ms", type=int, default=50)
    ap.add_argument("--budget", default="20ms")
    ap.add_argument("--protect", choices=("shed", "stall"), default="shed")
    ap.add_argument("--calm-plugin", default="build/tests/server/plugins/libweft_test_calm.so")
    args = ap.parse_args()
    print("%d hubs; %d client(s) loop /block?ms=%d while %d loop the light route, %.0f s each; "
          "%s" % (args.hubs, args.blockers, args.block_ms, args.clients, args.seconds,
                  "[shed] budget " + args.budget if args.protect == "shed"
                  else "[stall] budget 0.2s"))
    run(args, False)
    run(args, True)


if __name__ == "__main__":
    main()

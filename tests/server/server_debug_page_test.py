"""The admin listener's live page and profiles through the real binary: /debug/ is one
self-contained page; /debug/events is a Server-Sent Events stream (hello, ticks of per-hub
histograms, blocking reports as they happen, the fiber tree) that outlives the admin's header
and idle timeouts and is bounded in number; /debug/pprof/hubblock and /debug/pprof/profile are
pprof profiles that `go tool pprof` reads, naming the culprit functions of /block and /spin."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import server_test_util as u
from server_test_util import Weft, get


class EventStream:
    """A /debug/events reader on its own connection: parses events into a list."""

    def __init__(self, admin, timeout=10):
        host, port = u.split_addr(admin)
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.conn.request("GET", "/debug/events")
        self.resp = self.conn.getresponse()
        self.events = []

    def read_until(self, pred, timeout):
        deadline = time.monotonic() + timeout
        name, data = None, []
        while time.monotonic() < deadline:
            line = self.resp.fp.readline()
            if not line:
                raise AssertionError("stream ended")
            line = line.decode().rstrip("\r\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and name:
                ev = (name, json.loads("\n".join(data)))
                self.events.append(ev)
                name, data = None, []
                if pred(ev):
                    return ev
        raise AssertionError("no matching event within %.1f s; got %s" %
                             (timeout, [e[0] for e in self.events]))

    def close(self):
        self.conn.close()


def go():
    """`go` for `go tool pprof` (Debian's golang-go; scripts/install-deps.sh test installs it)."""
    for p in (shutil.which("go"), "/usr/lib/go/bin/go"):
        if p and os.path.exists(p):
            return p
    raise AssertionError("go not found: run scripts/install-deps.sh test (golang-go)")


def pprof(args, data, tmp):
    path = os.path.join(tmp, "profile.pb.gz")
    with open(path, "wb") as f:
        f.write(data)
    env = dict(os.environ, HOME=tmp, GOCACHE=os.path.join(tmp, "gocache"), GOFLAGS="")
    r = subprocess.run([go(), "tool", "pprof"] + args + [path], capture_output=True, text=True,
                       timeout=120, env=env)
    if r.returncode != 0:
        raise AssertionError("go tool pprof failed: %s\n%s" % (r.returncode, r.stderr))
    return r.stdout


def profile_while(w, profile, request, test):
    """Asks the admin listener for `profile` (which takes a while) and, meanwhile, makes
    `request` on the data port; returns the profile's (status, headers, body)."""
    got = []
    t = threading.Thread(target=lambda: got.append(get(w.admin, profile, timeout=30)))
    t.start()
    time.sleep(0.3)
    test.assertEqual(get(w.http, request, timeout=10)[0], 200)
    t.join(30)
    return got[0]


class Page(unittest.TestCase):
    def test_page_is_self_contained(self):
        with Weft(["--plugin", u.plugin_path("demo")]) as w:
            w.wait_ready()
            status, headers, body = get(w.admin, "/debug/")
            self.assertEqual(status, 200)
            self.assertTrue(headers["content-type"].startswith("text/html"))
            self.assertIn("default-src 'none'", headers["content-security-policy"])
            page = body.decode()
            self.assertIn('new EventSource("/debug/events")', page)
            self.assertIn("prefers-color-scheme: dark", page)
            # Nothing from elsewhere: no script, style, font or image source outside the page.
            self.assertIsNone(re.search(r'(src|href)="(https?:)?//', page))
            self.assertNotIn("@import", page)
            self.assertNotIn("url(", page)
            # The index of the other endpoints is on it.
            for link in ("/debug/blocking", "/debug/fibers", "/debug/config", "/debug/pprof/"):
                self.assertIn('href="%s"' % link, page)
            self.assertEqual(get(w.admin, "/debug")[0], 200)
            st, state = u.get_json(w.admin, "/debug/state")
            self.assertIn("GET /block", state["plugins"][0]["routes"])


class Events(unittest.TestCase):
    def test_stream_pushes_ticks_reports_and_fibers(self):
        # A short admin header timeout: a live stream must outlive it.
        with Weft(["--plugin", u.plugin_path("demo"), "--hubs", "2",
                   "--set", "admin.header_timeout=1s"]) as w:
            w.wait_ready()
            s = EventStream(w.admin)
            try:
                self.assertEqual(s.resp.status, 200)
                self.assertTrue(s.resp.getheader("Content-Type").startswith("text/event-stream"))
                name, hello = s.read_until(lambda e: e[0] == "hello", 5)
                self.assertEqual(hello["hubs"], 2)
                self.assertEqual(len(hello["bounds_s"]), 20)
                self.assertEqual(hello["plugins"][0]["plugin"], "demo")
                self.assertIn("sources", hello["config"])
                self.assertIn("--set", hello["config"]["sources"]["admin.header_timeout"])
                _, tick = s.read_until(lambda e: e[0] == "tick", 5)
                self.assertEqual(len(tick["hubs"]), 2)
                self.assertEqual(len(tick["hubs"][0]["sched"]), 21)
                self.assertIn("protection", tick)
                s.read_until(lambda e: e[0] == "fibers", 5)

                t0 = time.monotonic()
                got = []
                threading.Thread(target=u.swallow_get, args=(w.http, "/block?ms=300", got)).start()
                _, rep = s.read_until(lambda e: e[0] == "report", 5)
                took = time.monotonic() - t0
                print("report on the stream %.0f ms after the request" % (took * 1000))
                self.assertLess(took, 2.0)
                self.assertEqual(rep["plugin"], "demo")
                self.assertEqual(rep["kind"], "syscall")
                self.assertEqual(rep["report"]["request"]["route"], "/block")
                self.assertTrue(any("raw_sleep" in f.get("function", "")
                                    for f in rep["report"]["stack"]), rep["report"]["stack"])
                _, end = s.read_until(lambda e: e[0] == "end", 5)
                self.assertEqual(end["report_id"], rep["report"]["id"])
                self.assertGreater(end["duration_seconds"], 0.25)

                # Past the header timeout (1 s) and still ticking.
                time.sleep(2.5)
                n = len([e for e in s.events if e[0] == "tick"])
                s.read_until(lambda e: e[0] == "tick", 3)
                s.read_until(lambda e: e[0] == "tick", 3)
                self.assertGreater(len([e for e in s.events if e[0] == "tick"]), n + 1)
            finally:
                s.close()

    def test_a_blocked_hub_is_busy_while_it_is_blocked(self):
        # The busy time of a slice was added only as the slice ended: the page showed a hub
        # blocked for seconds as "busy 0% · idle 100%" beside its "blocked" badge, then the
        # whole of it in the one tick after.
        with Weft(["--plugin", u.plugin_path("demo"), "--hubs", "1"]) as w:
            w.wait_ready()
            s = EventStream(w.admin)
            try:
                _, hello = s.read_until(lambda e: e[0] == "hello", 5)
                tick_s = hello["tick_s"]
                s.read_until(lambda e: e[0] == "tick", 5)
                got = []
                t = threading.Thread(target=u.swallow_get, args=(w.http, "/block?ms=4500", got))
                t.start()
                start = len(s.events)
                # Until a tick after the block that says it is over.
                s.read_until(lambda e: e[0] == "tick" and not t.is_alive() and
                             not e[1]["hubs"][0]["blocked"], 8)
                t.join()
                self.assertEqual(got, [200])
                ticks = [e[1]["hubs"][0] for e in s.events[start:] if e[0] == "tick"]
                blocked = [h["busy_s"] for h in ticks if h["blocked"]]
                print("tick %.2f s; busy_s of the blocked ticks: %s; largest of all: %.2f" %
                      (tick_s, ["%.2f" % b for b in blocked], max(h["busy_s"] for h in ticks)))
                self.assertGreaterEqual(len(blocked), 3)
                # Every whole tick inside the block is all busy; the first may be partly.
                for b in blocked[1:-1]:
                    self.assertGreater(b, 0.8 * tick_s)
                self.assertGreater(sum(blocked), 4.5 - 2.5 * tick_s)
                # And no tick takes more than its share afterwards.
                self.assertLess(max(h["busy_s"] for h in ticks), 2 * tick_s)
            finally:
                s.close()

    def test_a_stream_ends_whole_when_the_server_stops(self):
        # The stream was cut with the connection at shutdown: curl said "transfer closed with
        # outstanding read data remaining" (exit 18), with no last chunk.
        with Weft(["--plugin", u.plugin_path("demo")]) as w:
            w.wait_ready()
            s = EventStream(w.admin)
            try:
                s.read_until(lambda e: e[0] == "tick", 5)
                w.signal(signal.SIGTERM)
                rest = b""
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    chunk = s.resp.fp.read1(65536)
                    if not chunk:
                        break
                    rest += chunk
                self.assertTrue(rest.endswith(b"\r\n0\r\n\r\n"), rest[-200:])
            finally:
                s.close()
            self.assertEqual(w.wait(15), 0)

    def test_streams_are_bounded(self):
        with Weft(["--plugin", u.plugin_path("demo"),
                   "--set", "admin.max_event_streams=2"]) as w:
            w.wait_ready()
            a, b = EventStream(w.admin), EventStream(w.admin)
            try:
                self.assertEqual(a.resp.status, 200)
                self.assertEqual(b.resp.status, 200)
                a.read_until(lambda e: e[0] == "hello", 5)
                b.read_until(lambda e: e[0] == "hello", 5)
                status, headers, body = get(w.admin, "/debug/events", timeout=5)
                self.assertEqual(status, 503)
                self.assertIn("max_event_streams", body.decode())
                self.assertEqual(headers["retry-after"], "5")
            finally:
                a.close()
                b.close()
            # A closed stream frees its place (once its fiber notices, at its next write).
            u.poll(lambda: _stream_opens(w.admin), 5, 0.1, "a stream after two closed")
            self.assertEqual(w.stop(), 0)


def _stream_opens(admin):
    s = EventStream(admin)
    try:
        return s.resp.status == 200
    finally:
        s.close()


class Profiles(unittest.TestCase):
    def test_hubblock_profile_names_the_culprits(self):
        with tempfile.TemporaryDirectory(prefix="weft-pprof-") as tmp, \
                Weft(["--plugin", u.plugin_path("demo"), "--hubs", "2"]) as w:
            w.wait_ready()
            self.assertEqual(get(w.http, "/block?ms=300", timeout=10)[0], 200)
            self.assertEqual(get(w.http, "/spin?ms=300", timeout=10)[0], 200)

            # A blockage counts in the profile once it ends. Not the plugin's stall-budget total:
            # on a loaded machine /spin's hub may be found starved of a CPU, which charges no
            # plugin but is profiled all the same.
            def both_ended():
                _, dbg = u.get_json(w.admin, "/debug/blocking")
                routes = {r.get("request", {}).get("route") for r in dbg["reports"]
                          if "duration_seconds" in r}
                return {"/block", "/spin"} <= routes
            u.poll(both_ended, 10, 0.05, "both blockages ended")

            def profiled():
                status, _, data = get(w.admin, "/debug/pprof/hubblock")
                self.assertEqual(status, 200)
                self.assertEqual(data[:2], b"\x1f\x8b")  # gzip
                tags = pprof(["-tags"], data, tmp)
                return data if "/block" in tags and "/spin" in tags else None
            data = u.poll(profiled, 20, 0.2, "both blockages in the profile")
            top = pprof(["-top"], data, tmp)
            print(top)
            self.assertIn("Type: blocked", top)
            self.assertRegex(top, r"raw_sleep")
            self.assertRegex(top, r"spin_on_cpu")
            tags = pprof(["-tags"], data, tmp)
            print(tags)
            for want in ("/block", "/spin", "demo", "syscall", "cpu"):
                self.assertIn(want, tags)
            # Only /block's time, by its label.
            block_only = pprof(["-top", "-tagfocus=route=/block"], data, tmp)
            self.assertIn("raw_sleep", block_only)
            self.assertNotIn("spin_on_cpu", block_only)

            # ?seconds=N: only what happens in the next N seconds.
            status, _, delta = profile_while(w, "/debug/pprof/hubblock?seconds=2",
                                             "/spin?ms=250", self)
            self.assertEqual(status, 200)
            top = pprof(["-top"], delta, tmp)
            self.assertIn("spin_on_cpu", top)
            self.assertNotIn("raw_sleep", top)
            self.assertEqual(get(w.admin, "/debug/pprof/hubblock?seconds=0")[0], 400)

    def test_cpu_profile_samples_the_hub_threads(self):
        with tempfile.TemporaryDirectory(prefix="weft-pprof-") as tmp, \
                Weft(["--plugin", u.plugin_path("demo"), "--hubs", "2"]) as w:
            w.wait_ready()

            def cpu_seconds():  # the data hubs' threads (what the profile samples)
                ticks = 0
                for t in os.listdir("/proc/%d/task" % w.pid):
                    try:
                        with open("/proc/%d/task/%s/stat" % (w.pid, t)) as f:
                            comm, rest = f.read().split("(", 1)[1].rsplit(")", 1)
                    except OSError:
                        continue
                    if comm.startswith("weft-hub-"):
                        fields = rest.split()
                        ticks += int(fields[11]) + int(fields[12])
                return ticks / os.sysconf("SC_CLK_TCK")
            before = cpu_seconds()
            status, headers, data = profile_while(w, "/debug/pprof/profile?seconds=2&hz=200",
                                                  "/spin?ms=1000", self)
            used = cpu_seconds() - before
            self.assertEqual(status, 200)
            top = pprof(["-top"], data, tmp)
            print(top, "hub threads' CPU meanwhile: %.2f s" % used)
            self.assertIn("Type: cpu", top)
            self.assertIn("spin_on_cpu", top)
            m = re.search(r"Total samples = ([\d.]+)(ms|s)", top)
            total = float(m.group(1)) * (1 if m.group(2) == "s" else 1e-3)
            # The /spin spins for a second of wall time: on a machine as busy as CI's (a
            # browser test beside it) that may be far less CPU. The samples are scaled to the
            # CPU time each sampled hub used (on a loaded machine, unscaled, they held a
            # twentieth of it): the total is that time, give or take the windows' edges.
            self.assertGreater(total, 0.6 * used)
            self.assertLess(total, 1.2 * used + 0.1)
            self.assertEqual(get(w.admin, "/debug/pprof/profile?seconds=9999")[0], 400)
            self.assertEqual(get(w.admin, "/debug/pprof/profile?seconds=1&hz=0")[0], 400)

    @unittest.skipUnless(u.io_uring_available(), "io_uring is not available here")
    def test_busy_time_and_the_profile_count_the_kernels_io_work(self):
        # On io_uring the kernel sends, receives and completes I/O inside the call in which
        # the hub waits: that time is the hub's work, not idleness. The busy counter and the
        # CPU profile both showed a hub that served requests flat out as nearly idle (about a
        # tenth of its CPU time).
        with tempfile.TemporaryDirectory(prefix="weft-pprof-") as tmp, \
                Weft(["--hubs", "2", "--backend", "io_uring"]) as w:
            w.wait_ready()
            stop = time.monotonic() + 3.5

            def load():
                host, port = u.split_addr(w.http)
                with socket.create_connection((host, port)) as c:
                    batch = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 8
                    while time.monotonic() < stop:
                        c.sendall(batch)
                        got = 0
                        while got < 8:
                            got += c.recv(65536).count(b"HTTP/1.1 200")

            def hub_cpu_s():
                ticks = 0
                for t in os.listdir("/proc/%d/task" % w.pid):
                    base = "/proc/%d/task/%s/" % (w.pid, t)
                    with open(base + "comm") as f:
                        if not f.read().startswith("weft-hub-"):
                            continue
                    with open(base + "stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    ticks += int(fields[11]) + int(fields[12])
                return ticks / os.sysconf("SC_CLK_TCK")

            def busy_s():
                text = get(w.admin, "/metrics")[2].decode()
                return sum(float(m.group(1)) for m in re.finditer(
                    r"(?m)^weft_hub_busy_seconds_total\{[^}]*\} (\S+)$", text))

            clients = [threading.Thread(target=load) for _ in range(3)]
            for c in clients:
                c.start()
            time.sleep(0.3)
            cpu0, busy0 = hub_cpu_s(), busy_s()
            status, _, data = get(w.admin, "/debug/pprof/profile?seconds=2&hz=100", timeout=30)
            cpu1, busy1 = hub_cpu_s(), busy_s()
            for c in clients:
                c.join()
            self.assertEqual(status, 200)
            cpu, busy = cpu1 - cpu0, busy1 - busy0
            self.assertGreater(cpu, 0.2, "the load did not reach the hubs")
            top = pprof(["-top"], data, tmp)
            print("hub CPU %.2f s, busy %.2f s\n%s" % (cpu, busy, top))
            m = re.search(r"Total samples = ([\d.]+)(ms|s)", top)
            total = float(m.group(1)) * (1 if m.group(2) == "s" else 1e-3)
            self.assertIn("[kernel] I/O in the hub's poll", top)
            # Both near the CPU time the hub threads had (before, both were about a tenth of
            # it). The profile's values are scaled to each hub's CPU time over the profile,
            # which the test's window holds, give or take the scrapes' timing.
            self.assertGreater(total, 0.6 * cpu)
            self.assertLess(total, 1.2 * cpu + 0.1)
            self.assertGreater(busy, 0.6 * cpu)
            self.assertEqual(w.stop(), 0)

    def test_profiles_are_bounded_and_end_with_their_client(self):
        with Weft(["--plugin", u.plugin_path("demo"), "--hubs", "2"]) as w:
            w.wait_ready()
            host, port = u.split_addr(w.admin)

            def open_request(path):
                s = socket.create_connection((host, port), timeout=10)
                s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode())
                return s

            # One CPU profile at a time: a second is refused at once, not queued behind it.
            first = open_request("/debug/pprof/profile?seconds=30&hz=10")
            try:
                def refused():
                    return get(w.admin, "/debug/pprof/profile?seconds=1", timeout=5)[0] == 409
                u.poll(refused, 5, 0.1, "a second CPU profile refused")
                status, _, body = get(w.admin, "/debug/pprof/profile?seconds=1", timeout=5)
                self.assertIn(b"already running", body)
            finally:
                first.close()  # hangs up: its sampling ends, not in 30 s
            t0 = time.monotonic()
            u.poll(lambda: get(w.admin, "/debug/pprof/profile?seconds=1&hz=10",
                               timeout=10)[0] == 200, 10, 0.2,
                   "a CPU profile once the hung-up one ended")
            self.assertLess(time.monotonic() - t0, 8)

            # Timed hub-blocking profiles hold a connection each: four at most, and /healthz
            # still answers.
            held = [open_request("/debug/pprof/hubblock?seconds=30") for _ in range(4)]
            try:
                def fifth_refused():
                    st, hd, bd = get(w.admin, "/debug/pprof/hubblock?seconds=30", timeout=5)
                    return st == 503 and b"the most at once" in bd and hd["retry-after"] == "30"
                u.poll(fifth_refused, 5, 0.1, "a fifth timed hubblock profile refused")
                self.assertEqual(get(w.admin, "/healthz", timeout=5)[0], 200)
                self.assertEqual(get(w.admin, "/debug/pprof/hubblock", timeout=5)[0], 200)
            finally:
                for s in held:
                    s.close()
            u.poll(lambda: get(w.admin, "/debug/pprof/hubblock?seconds=1", timeout=5)[0] == 200,
                   10, 0.2, "a timed profile once the hung-up ones ended")
            self.assertEqual(w.stop(), 0)


if __name__ == "__main__":
    u.main()

"""The limits of the real binary under the load an adversary makes: at max_connections, idle
keep-alive connections make room for newcomers (counted in weft_http_connections_reclaimed_total,
with one warning a second at most); a slowloris on either port leaves /healthz and /metrics
answering, and so does a flood that takes every file descriptor; request bodies in memory stay within max_buffered_body_bytes (503 beyond), and their
memory goes back to the system when their connections end."""

import os
import re
import resource
import socket
import threading
import time
import unittest

import server_test_util as u
from server_test_util import Weft, get, split_addr

GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


def open_served(addr, timeout=5.0):
    """A connection that sent one GET, read its whole answer, and stays open (idle)."""
    s = socket.create_connection(split_addr(addr), timeout=timeout)
    try:
        s.sendall(GET)
        u.read_hello(s)
    except BaseException:
        s.close()
        raise
    return s


def open_half_sent(addr, n):
    """`n` connections that each sent part of a request head and nothing more (slowloris)."""
    out = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(5)
        s.connect(split_addr(addr))  # the kernel completes it even when weft does not accept
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        out.append(s)
    return out


def post_partial(addr, length, sent):
    """A POST that announces `length` body bytes, sends `sent` of them, and stalls."""
    s = socket.create_connection(split_addr(addr), timeout=5)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % length +
              b"x" * sent)
    return s


def answer_of(s, timeout):
    """The status line the server sent on `s` within `timeout` s, or None."""
    s.settimeout(timeout)
    try:
        data = s.recv(4096)
    except (socket.timeout, OSError):
        return None
    return data.split(b"\r\n", 1)[0].decode() if data else None


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024


def metric(text, name, **labels):
    """The sum of the samples of `name` whose labels include `labels`; None if there is none."""
    found = None
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all('%s="%s"' % kv in line for kv in labels.items()):
            found = (found or 0) + float(line.rsplit(" ", 1)[1])
    return found


def timed_get(addr, path, timeout):
    t0 = time.monotonic()
    status = get(addr, path, timeout=timeout)[0]
    return status, time.monotonic() - t0


class Limits(unittest.TestCase):
    def test_a_refused_upload_gets_its_answer_whatever_its_size(self):
        # A client that does not ask "Expect: 100-continue" (Python's http.client, requests,
        # browsers) sends the whole body before it reads. The server answers 413 at once and
        # drains the rest until the client is done (nginx's lingering close), so the client
        # reads the 413, not a reset (it was a broken pipe beyond 1 MiB of drained body).
        # (A linger_timeout long enough for a loaded machine to send 64 MiB: what is tested is
        # that bytes do not end the drain.)
        import http.client
        with Weft(["--hubs", "1", "--set", "server.max_body_bytes=1MiB",
                   "--set", "server.linger_timeout=30s"]) as w:
            w.wait_ready()
            host, port = split_addr(w.http)
            for size in (4 << 20, 64 << 20):
                c = http.client.HTTPConnection(host, port, timeout=20)
                c.request("POST", "/echo", body=b"x" * size)
                r = c.getresponse()
                self.assertEqual(r.status, 413, "a body of %d bytes" % size)
                self.assertIn(b"request body too large", r.read())
                c.close()
            self.assertEqual(get(w.http, "/")[0], 200)
            self.assertEqual(w.stop(), 0)

    def test_a_refused_upload_is_drained_for_linger_timeout_at_most(self):
        # Time bounds the drain, not bytes: a client that never stops sending is cut off once
        # linger_timeout has passed.
        with Weft(["--hubs", "1", "--set", "server.max_body_bytes=1MiB",
                   "--set", "server.linger_timeout=1s"]) as w:
            w.wait_ready()
            s = socket.create_connection(split_addr(w.http), timeout=10)
            t0 = time.monotonic()
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" %
                      (1 << 40))
            chunk = b"x" * (64 << 10)
            cut = None
            sent = 0
            while time.monotonic() - t0 < 20:
                try:
                    s.sendall(chunk)
                    sent += len(chunk)
                except OSError:
                    cut = time.monotonic() - t0
                    break
            s.close()
            print("the endless upload was cut after %.2f s, %.0f MiB in" %
                  (cut or 0, sent / 2**20))
            self.assertIsNotNone(cut, "the server drained an endless upload for 20 s")
            self.assertGreaterEqual(cut, 0.9)
            self.assertLess(cut, 10)
            # It was read until then (the socket buffers hold a few MiB at most).
            self.assertGreater(sent, 32 << 20)
            self.assertEqual(get(w.http, "/")[0], 200)
            self.assertEqual(w.stop(), 0)

    def test_the_open_file_limit_is_raised_and_one_too_low_is_named(self):
        # A soft limit of 1024 (or less) is common: connections beyond it failed with EMFILE
        # long before max_connections, with no word at startup.
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < 1024:
            self.skipTest("hard open-file limit %d" % hard)
        warning = r"the open-file limit \((\d+), hard limit (\d+)\) is below what \[server\] " \
                  r"max_connections \(%d\)"

        def soft_256():
            resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        with Weft(["--set", "server.max_connections=500"], preexec_fn=soft_256) as w:
            w.wait_ready()
            with open("/proc/%d/limits" % w.pid) as f:
                line = re.search(r"Max open files\s+(\S+)", f.read())
            # As far as 500 + 256 (admin) + 256 spare need, not further.
            self.assertEqual(int(line.group(1)),
                             1012 if hard == resource.RLIM_INFINITY else min(hard, 1012))
            self.assertNotRegex(w.stderr(), warning % 500)
            self.assertEqual(w.stop(), 0)

        def both_300():
            resource.setrlimit(resource.RLIMIT_NOFILE, (300, 300))
        with Weft(["--set", "server.max_connections=500"], preexec_fn=both_300) as w:
            w.wait_ready()
            m = re.search(warning % 500, w.stderr())
            self.assertIsNotNone(m, w.stderr())
            self.assertEqual(m.groups(), ("300", "300"))
            self.assertEqual(w.stop(), 0)
        # --check-config says so too.
        r = u.run_weft(["--set", "server.max_connections=500", "--check-config"],
                       preexec_fn=both_300)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, warning % 500)

    def test_admin_answers_when_the_process_runs_out_of_descriptors(self):
        # A flood (or a leak) that takes every descriptor left admin unable to accept: the
        # liveness probe failed and nothing could be scraped while it lasted.
        if "sanitizers=none" not in u.run_weft(["--version"]).stdout:
            # UBSan checks a virtual call's object by writing it to a pipe it makes: with no
            # descriptor left it cannot, and reports the object invalid (a false report that
            # ends the process: seen as "<memory cannot be printed>").
            self.skipTest("a sanitizer's runtime needs descriptors of its own")
        def both_160():
            resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))

        def exhaust(w):
            """Connections to the data port until one is no longer accepted (the process has
            no descriptor left); they stay open."""
            held = []
            while len(held) < 400:
                try:
                    held.append(open_served(w.http, timeout=3.0))
                except (socket.timeout, OSError):
                    # Not answered: because every descriptor is taken (not a slow machine).
                    used = len(os.listdir("/proc/%d/fd" % w.pid))
                    self.assertGreaterEqual(used, 150, "unanswered with %d descriptors open; "
                                            "%d held; stderr:\n%s" % (used, len(held), w.stderr()[-3000:]))
                    return held
            self.fail("400 connections accepted under a limit of 160 descriptors")

        for reserved in (0, 4):
            with Weft(["--hubs", "2", "--set", "server.max_connections=1000",
                       "--set", "admin.reserved_fds=%d" % reserved], preexec_fn=both_160) as w:
                w.wait_ready()
                held = exhaust(w)
                try:
                    answers, bodies = [], []
                    for path in ("/healthz", "/metrics"):
                        try:
                            status, _, body = get(w.admin, path, timeout=2.0)
                            answers.append(status)
                            bodies.append(body.decode())
                        except (OSError, u.http.client.HTTPException):
                            answers.append(None)
                    print("reserved_fds=%d: %d connections held, admin answered %s" %
                          (reserved, len(held), answers))
                    if reserved == 0:
                        # What it was: admin cannot accept while the descriptors are gone.
                        self.assertEqual(answers, [None, None])
                    else:
                        # Alive, scraped, and out of the load balancer while newcomers wait.
                        # (A data hub retrying its accept may take the room admin made for a
                        # moment, and be ready until its next newcomer fails: ask again then.)
                        self.assertEqual(answers, [200, 200])
                        status, _, body = u.poll(lambda: (lambda r: r if r[0] == 503 else None)(
                            get(w.admin, "/readyz", timeout=2.0)), 5, interval=0.2,
                            what="/readyz 503")
                        self.assertIn(b"out of file descriptors", body)
                        self.assertGreater(metric(bodies[1], "weft_http_accept_errors_total",
                                                  reason="no_descriptors"), 0)
                        self.assertGreaterEqual(
                            metric(bodies[1], "weft_http_connections_accepted_total"), len(held))
                        # What an operator alerts on: every descriptor taken (the scrape needs
                        # none of its own for it).
                        self.assertEqual(metric(bodies[1], "process_max_fds"), 160)
                        self.assertGreaterEqual(metric(bodies[1], "process_open_fds"), 150)
                        self.assertIn("gave up its 4 reserved descriptor(s) to accept",
                                      w.stderr())
                finally:
                    for s in held:
                        s.close()
                # Once the flood is gone, both ports serve again, and the server is ready
                # (within a backoff of the accept loops, a second at most) even if no newcomer
                # comes to the hub whose accepts failed.
                deadline = time.monotonic() + 5
                while True:
                    try:
                        self.assertEqual(get(w.admin, "/healthz", timeout=2.0)[0], 200)
                        self.assertEqual(get(w.admin, "/readyz", timeout=2.0)[0], 200)
                        break
                    except (OSError, u.http.client.HTTPException, AssertionError):
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
                self.assertEqual(get(w.http, "/", timeout=2.0)[0], 200)
                self.assertEqual(w.stop(), 0)

    def test_idle_connections_make_room_at_max_connections(self):
        # The reproducer: 50 idle keep-alive sockets at max_connections=50 made a new
        # client wait 59 s (until the idle timeout).
        with Weft(["--hubs", "2", "--set", "server.max_connections=50"]) as w:
            w.wait_ready()
            idle = [open_served(w.http) for _ in range(50)]
            # An operator sees how close to the limit the server is.
            text = get(w.admin, "/metrics")[2].decode()
            self.assertEqual(metric(text, "weft_http_connections"), 50)
            self.assertEqual(metric(text, "weft_http_connections_limit"), 50)
            status, took = timed_get(w.http, "/", timeout=10)
            self.assertEqual(status, 200)
            self.assertLess(took, 1.0)

            # Newcomers that stay open, for 2.5 s: each finds the server full and takes the
            # place of an idle connection.
            start = time.monotonic()
            newcomers = []
            while time.monotonic() - start < 2.5:
                newcomers.append(open_served(w.http))
                time.sleep(0.005)
            elapsed = time.monotonic() - start
            text = get(w.admin, "/metrics")[2].decode()
            reclaimed = metric(text, "weft_http_connections_reclaimed_total", reason="idle")
            print("%d newcomers in %.1f s, %d idle connections reclaimed" %
                  (len(newcomers), elapsed, reclaimed))
            self.assertGreaterEqual(reclaimed, len(newcomers))
            self.assertEqual(metric(text, "weft_http_connections_reclaimed_total",
                                    reason="slow_head"), 0)
            # The warning: at most once a second per hub, with a count (it was logged after
            # every accept at the limit: 820 lines in 8 s).
            lines = re.findall(r"hub \d: at max_connections \(50\)[^\n]*", w.stderr())
            self.assertGreaterEqual(len(lines), 1)
            self.assertLessEqual(len(lines), 2 * (int(elapsed + (time.monotonic() - start)) + 2),
                                 "\n".join(lines))
            self.assertTrue(any(re.search(r"\d+ new connection\(s\) waited for room in the last",
                                          line) for line in lines) or len(lines) <= 2,
                            "\n".join(lines))
            for s in idle + newcomers:
                s.close()
            self.assertEqual(w.stop(), 0)

    def test_admin_answers_while_clients_trickle_bodies_to_it(self):
        # Every admin connection taken by a request that announces a body and trickles it in
        # (a byte every 0.3 s, which kept each of them for as long as it liked): probes and
        # scrapes still answer within a second. No admin route takes a body: 413 at once,
        # and a lingering connection is the first to make room.
        with Weft(["--hubs", "1"]) as w:
            w.wait_ready()
            trickling = []
            for _ in range(300):
                s = socket.socket()
                s.settimeout(5)
                s.connect(split_addr(w.admin))
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
                trickling.append(s)
            stop = time.monotonic() + 4.0
            worst = 0.0
            probes = 0
            while time.monotonic() < stop:
                for s in trickling:
                    try:
                        s.send(b"x")
                    except OSError:
                        pass
                status, took = timed_get(w.admin, "/healthz", timeout=5)
                self.assertEqual(status, 200)
                worst = max(worst, took)
                probes += 1
                time.sleep(0.3)
            print("%d probes, the slowest in %.3f s" % (probes, worst))
            self.assertLess(worst, 1.0)
            status, _, body = get(w.admin, "/metrics")
            self.assertEqual(status, 200)
            # They were answered 413 (those closed to make room may have lost theirs).
            answers = [answer_of(s, 0.05) for s in trickling[:20]]
            self.assertTrue(any(a and a.startswith("HTTP/1.1 413") for a in answers), answers)
            for s in trickling:
                s.close()
            self.assertEqual(w.stop(), 0)

    def test_a_body_trickled_below_the_minimum_rate_is_cut(self):
        # Two uploads side by side, each sending a few bytes every 0.25 s, well within the
        # body timeout between reads: one at 20 bytes/s, one at 200, against a minimum of 100.
        # The slow one is answered 408 once it falls behind (5 s of grace, then the bytes it
        # sent were due at 100 bytes/s: about 6.3 s in), the other gets its answer.
        with Weft(["--hubs", "1", "--set", "server.min_body_rate=100",
                   "--set", "server.body_timeout=3s"]) as w:
            w.wait_ready()
            results = {}

            def upload(name, per_tick, total):
                s = socket.create_connection(split_addr(w.http), timeout=15)
                s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n"
                          % total)
                t0 = time.monotonic()
                sent = 0
                try:
                    while sent < total:
                        n = min(per_tick, total - sent)
                        s.sendall(b"x" * n)
                        sent += n
                        time.sleep(0.25)
                except OSError:
                    pass  # cut: the answer is read below
                data = b""
                try:
                    while True:  # the whole answer, by its Content-Length
                        head, sep, body = data.partition(b"\r\n\r\n")
                        m = re.search(rb"(?i)content-length: *(\d+)", head)
                        if sep and m and len(body) >= int(m.group(1)):
                            break
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                results[name] = (data, sent, time.monotonic() - t0)
                s.close()

            slow = threading.Thread(target=upload, args=("slow", 5, 10000))
            fast = threading.Thread(target=upload, args=("fast", 50, 1500))
            slow.start()
            fast.start()
            slow.join(30)
            fast.join(30)
            data, sent, took = results["slow"]
            self.assertTrue(data.startswith(b"HTTP/1.1 408 "), data[:200])
            self.assertIn(b"request body too slow: below the server's minimum of 100 bytes/s",
                          data)
            self.assertGreater(took, 5.5)
            self.assertLess(took, 9.0)
            self.assertLess(sent, 300)
            data, sent, took = results["fast"]
            self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:200])
            self.assertTrue(data.endswith(b"x" * 1500), data[-100:])
            text = get(w.admin, "/metrics")[2].decode()
            self.assertEqual(metric(text, "http_server_request_duration_seconds_count",
                                    http_request_method="POST",
                                    http_response_status_code="408"), 1)
            self.assertEqual(w.stop(), 0)

    def test_admin_answers_under_slowloris_on_either_port(self):
        with Weft(["--hubs", "2", "--set", "server.max_connections=100"]) as w:
            w.wait_ready()
            # 300 half-sent requests on the admin port (256 connections at most, 2 s to send a
            # head), then on the data port: probes and scrapes keep answering within a second.
            def answer_fast(paths, under):
                for i, path in enumerate(paths):
                    status, took = timed_get(w.admin, path, timeout=5)
                    self.assertEqual(status, 200)
                    self.assertLess(took, 1.0, "%s (%d) under a slowloris on %s" %
                                    (path, i, under))

            slow = open_half_sent(w.admin, 300)
            time.sleep(0.7)  # the first heads are now older than a quarter of 2 s
            answer_fast(["/healthz"] * 7 + ["/metrics"], "the admin port")

            # 150 on the data port (max_connections 100): 50 wait in the backlog, ahead of
            # the newcomer below.
            slow += open_half_sent(w.http, 150)
            answer_fast(["/healthz"] * 3, "the data port")
            # The data port itself serves the newcomer once the oldest slow heads are past a
            # quarter of the header timeout (10 s), not after the whole timeout.
            status, took = timed_get(w.http, "/", timeout=15)
            self.assertEqual(status, 200)
            self.assertLess(took, 4.0)
            text = get(w.admin, "/metrics")[2].decode()
            self.assertGreaterEqual(
                metric(text, "weft_http_connections_reclaimed_total", reason="slow_head"), 1)
            for s in slow:
                s.close()
            self.assertEqual(w.stop(), 0)

    def test_a_request_whose_head_came_in_pieces_is_no_slow_head_once_it_runs(self):
        # Its head came in two reads, so it was queued as a slow head; then its handler ran.
        # A newcomer at max_connections must wait for it, not have it cut (it was counted as a
        # reclaimed slow head, and its client got nothing).
        with Weft(["--hubs", "1", "--set", "server.max_connections=1",
                   "--set", "server.header_timeout=2s"]) as w:
            w.wait_ready()
            a = socket.create_connection(split_addr(w.http), timeout=10)
            a.sendall(b"GET /sleep?ms=1500 HTTP/1.1\r\n")
            time.sleep(0.1)
            a.sendall(b"Host: t\r\n\r\n")
            time.sleep(0.7)  # the head began more than a quarter of 2 s ago
            status, took = timed_get(w.http, "/", timeout=10)  # waits in the backlog
            self.assertEqual(status, 200)
            a.settimeout(10)
            got = b""
            while b"slept" not in got:
                chunk = a.recv(4096)
                if not chunk:
                    break
                got += chunk
            self.assertIn(b"HTTP/1.1 200 ", got)
            self.assertIn(b"slept 1500 ms", got)
            a.close()
            text = get(w.admin, "/metrics")[2].decode()
            self.assertEqual(
                metric(text, "weft_http_connections_reclaimed_total", reason="slow_head"), 0)
            self.assertEqual(w.stop(), 0)

    def test_request_bodies_stay_within_their_budget_and_go_back(self):
        # 300 uploads of 1 MiB that stall after 700 KiB (the issue's: ~704 KB resident each,
        # ~341 MB still resident after they closed; by default up to ~10 GiB).
        # The receive-buffer pool is small here (32 buffers of 16 KiB a hub): its pages stay
        # resident once used (by design, and 16 MiB with the defaults), and what should be
        # measured is what the bodies leave behind.
        budget = 64 << 20
        with Weft(["--hubs", "2", "--set", "server.max_buffered_body_bytes=%d" % budget,
                   "--set", "server.max_body_bytes=%d" % (4 * budget),
                   "--set", "runtime.recv_buffers=32"]) as w:
            w.wait_ready()
            # One whole 1 MiB upload first: once glibc has freed a block that large, it serves
            # blocks below that size from heaps that rarely shrink (its mmap threshold moves up).
            status, _, body = get(w.http, "/echo", method="POST", body=b"z" * (1 << 20))
            self.assertEqual((status, len(body)), (200, 1 << 20))
            # The baseline has 300 connections' worth of fiber stacks and sessions in the
            # hubs' caches, from 300 small uploads that stalled the same way.
            warm = [post_partial(w.http, 1000, 500) for _ in range(300)]
            u.poll(lambda: metric(get(w.admin, "/metrics")[2].decode(),
                                  "http_server_active_requests") is not None and
                   len(warm) == 300, 5)
            time.sleep(0.5)
            for c in warm:
                c.close()
            time.sleep(0.5)
            base = rss_bytes(w.pid)
            conns = [post_partial(w.http, 1 << 20, 700 << 10) for _ in range(300)]

            # Settled: enough read or refused, and no change over the last 0.3 s (on a slow
            # machine the last uploads are still being read, or refused, when the sum is
            # reached: their answers would come after the look below).
            last = []

            def settled():
                text = get(w.admin, "/metrics")[2].decode()
                refused = metric(text, "http_server_request_duration_seconds_count",
                                 http_response_status_code="503") or 0
                held = metric(text, "weft_http_request_body_bytes")
                now = (held, refused)
                steady = last == [now]
                last[:] = [now]
                return now if steady and held + refused * (1 << 20) >= 250 << 20 else None
            held, refused = u.poll(settled, 20, interval=0.3, what="every upload read or refused")
            peak = rss_bytes(w.pid)
            answers = [answer_of(c, 0.01) for c in conns]
            refused_here = sum(a is not None and a.startswith("HTTP/1.1 503") for a in answers)
            print("body memory %.1f MiB (budget %d MiB), %d refused with 503, resident %.0f MB "
                  "over the start" % (held / 2**20, budget >> 20, refused_here,
                                      (peak - base) / 1e6))
            self.assertLessEqual(held, budget)
            self.assertGreaterEqual(refused_here, 200)
            # Resident memory says what the allocator kept, except under a sanitizer, whose
            # allocator keeps freed blocks in quarantine on purpose.
            sanitized = re.search(r'weft_build_info\{[^}]*sanitizers="(?!none")',
                                  get(w.admin, "/metrics")[2].decode())
            if not sanitized:
                self.assertLess(peak - base, budget + (48 << 20))
            # A 503 says when to come back, and closes.
            for c, a in zip(conns, answers):
                if a is not None:
                    self.assertEqual(a, "HTTP/1.1 503 Service Unavailable")

            for c in conns:
                c.close()
            u.poll(lambda: metric(get(w.admin, "/metrics")[2].decode(),
                                  "weft_http_request_body_bytes") == 0, 10,
                   what="every body given back")
            # weft hands freed body memory back to the kernel once the peak has passed (it looks
            # once a second).
            deadline = time.monotonic() + 5
            while rss_bytes(w.pid) - base >= 16 << 20 and time.monotonic() < deadline:
                time.sleep(0.1)
            after = rss_bytes(w.pid)
            print("resident after they closed: %.0f MB over the start" % ((after - base) / 1e6))
            if not sanitized:
                self.assertLess(after - base, 16 << 20,
                                "freed body memory went back to the system")
            # A body within the budget is served.
            status, _, body = get(w.http, "/echo", method="POST", body=b"y" * 500000)
            self.assertEqual((status, len(body)), (200, 500000))
            # One larger than the whole budget would never fit: 413 (a 503 with Retry-After
            # had clients retry it for ever), announced or chunked.
            c = post_partial(w.http, budget + 1, 0)
            self.assertEqual(answer_of(c, 5), "HTTP/1.1 413 Content Too Large")
            c.close()
            s = socket.create_connection(split_addr(w.http), timeout=10)
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n" % (1 << 20) + b"c" * (1 << 20) + b"\r\n"
            try:
                for _ in range((budget >> 20) + 2):
                    s.sendall(chunk)
            except OSError:
                pass  # answered and closed before the last chunks
            self.assertEqual(answer_of(s, 5), "HTTP/1.1 413 Content Too Large")
            s.close()
            self.assertEqual(w.stop(), 0)


if __name__ == "__main__":
    u.main()

"""Graceful drain of the real binary under load: SIGTERM arrives while clients keep requests
flowing (fast ones and slow /sleep ones). Every request the server had accepted gets its full
response (with Connection: close once the drain began), /readyz turns 503, new connections
are refused, and the process exits 0 within the drain timeout. A second SIGTERM exits at once;
a drain that outlasts its timeout is cut short (exit status 3); idle keep-alive connections
close at once."""

import http.client
import os
import re
import signal
import socket
import tempfile
import threading
import time
import unittest

import server_test_util as u
from server_test_util import Weft, get, split_addr

# Requests written this long before SIGTERM were certainly read by the server before its drain
# began (it reads a request within microseconds on an idle machine; this allows a loaded one,
# where the server's hubs may wait for a CPU).
ACCEPTED_MARGIN = 0.25


class Outcome:
    def __init__(self, path, sent):
        self.path = path
        self.sent = sent
        self.done = None
        self.kind = None  # "ok", "no_response" (nothing came back), "refused", "bad"
        self.status = None
        self.connection = None
        self.detail = ""

    def __repr__(self):
        return "%s sent=%.3f done=%s %s %s %s" % (self.path, self.sent, self.done, self.kind,
                                                  self.status, self.detail)


def expected_body(path):
    if path == "/":
        return b"Hello, World!"
    if path.startswith("/sleep?ms="):
        return b"slept %s ms\n" % path.split("=")[1].encode()
    raise ValueError(path)


def request(conn, path, t0, sent=None):
    """One GET on a keep-alive connection; classifies what came back. `sent` (an Event) is set
    once the request is written."""
    o = Outcome(path, None)
    try:
        conn.request("GET", path)
    except ConnectionRefusedError:
        o.kind = "refused"
    except OSError as e:  # the server closed an idle connection as we wrote
        o.kind, o.detail = "no_response", repr(e)
    # Stamped once the bytes are written, not before: with 8 threads sharing the GIL, a thread
    # may wait a while between the two.
    o.sent = time.monotonic() - t0
    if sent is not None:
        sent.set()
    if o.kind is None:
        try:
            r = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            o.kind, o.detail = "no_response", repr(e)
        else:
            o.status = r.status
            o.connection = r.getheader("Connection")
            try:
                body = r.read()
                ok = r.status == 200 and body == expected_body(path)
                o.kind = "ok" if ok else "bad"
                if not ok:
                    o.detail = "status %d body %r" % (r.status, body[:80])
            except (http.client.IncompleteRead, OSError) as e:
                o.kind, o.detail = "bad", "cut short: %r" % e
    o.done = time.monotonic() - t0
    if o.kind != "ok":
        conn.close()
    return o


class Drain(unittest.TestCase):
    def test_drain_under_load(self):
        with Weft(["--hubs", "2", "--set", "server.drain_timeout=10s"]) as w:
            w.wait_ready()
            t0 = time.monotonic()
            host, port = split_addr(w.http)
            stop = threading.Event()
            outcomes = []
            lock = threading.Lock()

            def client(i):
                conn = http.client.HTTPConnection(host, port, timeout=15)
                if i < 3:
                    # The slow clients start 300 ms apart, so that their 900 ms requests stay
                    # out of step: whenever SIGTERM comes, one began more than ACCEPTED_MARGIN
                    # before it and ends well after it.
                    time.sleep(0.3 * i)
                n = 0
                while not stop.is_set():
                    # Clients 0-2 mix slow and fast requests; 3-5 send fast ones back to back.
                    path = "/sleep?ms=900" if i < 3 and (n + i) % 2 == 0 else "/"
                    o = request(conn, path, t0)
                    with lock:
                        outcomes.append(o)
                    n += 1
                    if o.kind == "refused":
                        break  # the listeners are closed: nothing more to learn
                conn.close()

            # One long request that keeps the drain busy for a while, so the states during
            # the drain can be observed without racing its end.
            long_outcome = []
            long_sent = threading.Event()

            def long_request():
                conn = http.client.HTTPConnection(host, port, timeout=15)
                long_outcome.append(request(conn, "/sleep?ms=1500", t0, long_sent))
                conn.close()

            threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
            for t in threads:
                t.start()
            time.sleep(0.8)  # load builds up (this is the load, not a readiness wait)
            lt = threading.Thread(target=long_request)
            lt.start()
            # Written, and then (as for every request the test counts as accepted) given the
            # margin to be read: on a loaded machine the thread may start late, and a SIGTERM
            # before its request is refused, rightly.
            self.assertTrue(long_sent.wait(10), "the long request was not sent")
            time.sleep(ACCEPTED_MARGIN)
            u.poll(lambda: active_requests(w) >= 1, 5, what="the long request in flight")
            self.assertEqual(get(w.admin, "/readyz")[0], 200)

            t_term = time.monotonic() - t0
            w.signal(signal.SIGTERM)

            # During the drain: readiness fails and nobody can connect, while the process lives.
            u.poll(lambda: get(w.admin, "/readyz", timeout=2)[0] == 503, 2,
                   what="/readyz 503 during the drain")
            self.assertIn(b"draining", get(w.admin, "/readyz")[2])
            u.poll(lambda: u.connect_refused(w.http), 2, what="new connections refused")
            self.assertIsNone(w.proc.poll(), "weft exited before the long request finished")

            code = w.wait(15)
            t_exit = time.monotonic() - t0
            stop.set()
            for t in threads + [lt]:
                t.join(20)
            log = w.stderr()

        kinds = {k: sum(o.kind == k for o in outcomes) for k in ("ok", "refused",
                                                                  "no_response", "bad")}
        print("drain: %d requests %s, exit %.3f s after SIGTERM" % (len(outcomes), kinds,
                                                                    t_exit - t_term))
        self.assertEqual(code, 0, log)
        self.assertLess(t_exit - t_term, 10.0, "exceeded the drain timeout")
        self.assertIn("SIGTERM: draining", log)
        self.assertIn("drained: every request finished", log)

        (lo,) = long_outcome
        self.assertEqual(lo.kind, "ok", lo)
        self.assertEqual(lo.connection, "close", "a response during the drain keeps alive")
        self.assertGreaterEqual(t_exit, lo.done - 0.05, "exited before the long request ended")

        self.assertGreater(sum(o.kind == "ok" for o in outcomes), 200, "too little load")
        bad = [o for o in outcomes if o.kind == "bad"]
        self.assertEqual(bad, [], "responses cut short or wrong")
        accepted_before = [o for o in outcomes if o.sent < t_term - ACCEPTED_MARGIN]
        lost = [o for o in accepted_before if o.kind != "ok"]
        self.assertEqual(lost, [], "requests sent before SIGTERM without a full response")
        spanning = [o for o in accepted_before if o.done > t_term + 0.05]
        self.assertTrue(any(o.path.startswith("/sleep") for o in spanning),
                        "no slow request was in flight at SIGTERM")
        for o in spanning:
            if o.done > t_term + 0.2:  # answered well after the drain began
                self.assertEqual(o.connection, "close", o)
        # What was sent after SIGTERM was either answered in full or never accepted.
        self.assertTrue(all(o.kind in ("ok", "refused", "no_response") for o in outcomes))
        self.assertTrue(any(o.kind == "refused" for o in outcomes),
                        "no client saw the listener closed")

    def test_second_sigterm_exits_at_once(self):
        with Weft(["--hubs", "1", "--set", "server.drain_timeout=60s"]) as w:
            w.wait_ready()
            hold = threading.Thread(target=u.swallow_get, args=(w.http, "/sleep?ms=30000"))
            hold.start()
            u.poll(lambda: active_requests(w) >= 1, 5, what="the long request in flight")
            w.signal(signal.SIGTERM)
            u.poll(lambda: get(w.admin, "/readyz")[0] == 503, 5, what="the drain")
            time.sleep(0.3)  # the drain is waiting for the request, as it should
            self.assertIsNone(w.proc.poll(), "exited although a request was in flight")
            t = time.monotonic()
            w.signal(signal.SIGTERM)
            code = w.wait(5)
            took = time.monotonic() - t
            hold.join(10)
            self.assertEqual(code, 128 + signal.SIGTERM)
            self.assertLess(took, 1.0)
            self.assertIn("SIGTERM again: exiting now", w.stderr())

    def test_drain_timeout_cuts_a_long_request(self):
        with Weft(["--hubs", "1", "--set", "server.drain_timeout=1s"]) as w:
            w.wait_ready()
            got = []
            hold = threading.Thread(target=u.swallow_get, args=(w.http, "/sleep?ms=30000", got))
            hold.start()
            u.poll(lambda: active_requests(w) >= 1, 5, what="the long request in flight")
            t = time.monotonic()
            w.signal(signal.SIGTERM)
            code = w.wait(10)
            took = time.monotonic() - t
            hold.join(10)
            self.assertEqual(code, 3, "a drain cut short by its timeout is not a clean exit")
            self.assertGreaterEqual(took, 0.9)
            self.assertLess(took, 4.0)
            self.assertIn("drain timeout: closing 1 connection(s) still open", w.stderr())
            self.assertIn("weft stopped (exit status 3)", w.stderr())
            self.assertEqual(got, [None], "the cut request must not look answered")

    def test_no_drain_time_and_nothing_in_flight_is_a_clean_exit(self):
        # drain_timeout = 0 looked at its deadline before the listeners were closed and
        # called that a drain cut short (exit status 3).
        for _ in range(3):
            with Weft(["--hubs", "2", "--set", "server.drain_timeout=0s"]) as w:
                w.wait_ready()
                w.signal(signal.SIGTERM)
                code = w.wait(10)
                self.assertEqual(code, 0, w.stderr())
                self.assertIn("drained: every request finished", w.stderr())

    def test_a_sigterm_the_moment_the_server_says_ready_drains(self):
        # An orchestrator may stop the server as soon as it is ready. The ready line and
        # /readyz used to come a moment before the main loop took SIGTERM over from its default
        # action, and a signal in between killed the process (-15, no drain): seen once in CI.
        # The window was microseconds wide and this polls the log every 2 ms, so it can only
        # catch that by chance; what it pins down is the promise.
        for _ in range(3):
            with Weft(["--hubs", "1"]) as w:
                w.wait_for_log(u.READY_RE.pattern, 15)
                w.signal(signal.SIGTERM)
                code = w.wait(10)
                self.assertEqual(code, 0, w.stderr())
                self.assertIn("drained: every request finished", w.stderr())

    def test_a_cut_request_is_closed_at_once_and_logged_503(self):
        # /offload's handler waits for its work whatever happens: cancelled at the drain's end,
        # it still answers 200 once the work is done. Its client must not wait for that (the
        # socket closes at the drain's end), and the answer nobody got must not be logged or
        # counted as a success.
        with tempfile.TemporaryDirectory(prefix="weft-drain-test-") as tmp:
            access = os.path.join(tmp, "access.log")
            with Weft(["--hubs", "1", "--set", "server.drain_timeout=1s",
                       "--set", "log.access_log=" + access], workdir=tmp) as w:
                w.wait_ready()
                closed = []

                def client():
                    s = socket.create_connection(split_addr(w.http), timeout=20)
                    s.sendall(b"GET /offload?ms=2500 HTTP/1.1\r\nHost: t\r\n\r\n")
                    data = b""
                    while True:
                        b = s.recv(65536)
                        if not b:
                            break
                        data += b
                    closed.append((time.monotonic(), data))
                    s.close()

                c = threading.Thread(target=client)
                c.start()
                u.poll(lambda: active_requests(w) >= 1, 5, what="the request in flight")
                t = time.monotonic()
                w.signal(signal.SIGTERM)
                code = w.wait(15)
                c.join(15)
                log = w.stderr()
            self.assertEqual(code, 3, log)
            self.assertEqual(len(closed), 1)
            when, data = closed[0]
            self.assertEqual(data, b"", "a cut request got an answer")
            # The drain's end (1 s), not the work's (2.5 s after the request came).
            self.assertLess(when - t, 1.9, "the connection stayed open past the drain's end")
            with open(access) as f:
                lines = [ln for ln in f if "/offload" in ln]
            self.assertEqual(len(lines), 1, lines)
            self.assertRegex(lines[0], r'"GET /offload\?ms=2500 HTTP/1\.1" 503 0 .* incomplete$')

    def test_a_blocked_hub_does_not_keep_the_process_alive(self):
        # A handler blocking its hub ignores cancellation: after the drain timeout and the
        # shutdown limit the process exits anyway, non-zero, naming the stuck fiber.
        with Weft(["--hubs", "1", "--set", "server.drain_timeout=1s"]) as w:
            w.wait_ready()
            hold = threading.Thread(target=u.swallow_get, args=(w.http, "/block?ms=30000"))
            hold.start()
            u.poll(lambda: active_requests(w) >= 1, 5, what="the blocking request in flight")
            t = time.monotonic()
            w.signal(signal.SIGTERM)
            code = w.wait(20)
            took = time.monotonic() - t
            log = w.stderr()
            hold.join(40)
        self.assertEqual(code, 1, log)
        # drain timeout 1 s + 2 s for cancelled fibers + the 5 s shutdown limit
        self.assertGreaterEqual(took, 7.0)
        self.assertLess(took, 12.0)
        self.assertIn("still open after cancelling their fibers", log)
        self.assertRegex(log, r'fiber \d+ "http-connection"; RUNNING')
        self.assertIn("shutdown stuck", log)

    def test_a_plugin_fiber_that_will_not_end_does_not_keep_the_process_alive(self):
        with Weft(["--hubs", "1", "--plugin", "demo", "--plugin",
                   u.plugin_path("stubborn")]) as w:
            w.wait_ready()
            t = time.monotonic()
            w.signal(signal.SIGTERM)
            code = w.wait(20)
            took = time.monotonic() - t
            log = w.stderr()
        self.assertEqual(code, 1, log)
        self.assertIn("drained: every request finished", log)
        self.assertGreaterEqual(took, 4.5)
        self.assertLess(took, 9.0)
        self.assertIn("shutdown stuck", log)
        # Which fiber did not end, and what it does, before the shutdown hooks and before the
        # process ended. (The hub it blocks then holds the closing of the server's connections,
        # where the guard ends the process.)
        self.assertIn("1 background fiber(s) still running 2.0 s after their cancellation "
                      "(plugin 'stubborn': fiber 'stubborn')", log)
        self.assertRegex(log, r'fiber \d+ "stubborn"; RUNNING')
        self.assertNotIn("weft stopped", log)

    def test_background_fibers_end_before_the_shutdown_hooks_run(self):
        # A hook may free what a plugin's background fiber uses: the fiber is cancelled and
        # has ended (it takes 300 ms to) before the hook runs. A background fiber that throws
        # is logged under its plugin's name.
        tmp = tempfile.TemporaryDirectory(prefix="weft-drain-test-")
        self.addCleanup(tmp.cleanup)
        conf = os.path.join(tmp.name, "weft.toml")
        with open(conf, "w") as f:
            f.write('[[plugin]]\npath = "%s"\n[plugin.config]\nbackground_wind_down_ms = 300\n'
                    'background_throw = true\n' % u.plugin_path("calm"))
        with Weft(["--hubs", "2", "--config", conf]) as w:
            w.wait_ready()
            w.wait_for_log(r"background fiber 'calm-thrower' failed")
            w.signal(signal.SIGTERM)
            code = w.wait(20)
            log = w.stderr()
        self.assertEqual(code, 0, log)
        self.assertIn("[plugin.calm] [error] plugin 'calm': background fiber 'calm-thrower' "
                      "failed: calm thrower failed", log)
        self.assertNotIn("nobody joined", log)
        ended = log.find("calm worker ended")
        hook = log.find("calm shutdown hook ran")
        self.assertGreater(ended, 0, log)
        self.assertGreater(hook, ended, log)
        self.assertNotIn("still running", log)

    def test_a_shutdown_hook_that_will_not_return_is_named(self):
        tmp = tempfile.TemporaryDirectory(prefix="weft-drain-test-")
        self.addCleanup(tmp.cleanup)
        conf = os.path.join(tmp.name, "weft.toml")
        with open(conf, "w") as f:
            f.write('[[plugin]]\npath = "%s"\n[plugin.config]\nhook_sleep_ms = 60000\n' %
                    u.plugin_path("calm"))
        with Weft(["--hubs", "1", "--config", conf]) as w:
            w.wait_ready()
            w.signal(signal.SIGTERM)
            code = w.wait(20)
            log = w.stderr()
        self.assertEqual(code, 1, log)
        self.assertRegex(log, r"shutdown stuck: .*, while running the shutdown hook of plugin "
                              r"'calm'; exiting now")

    def test_offloaded_work_left_running_is_named_when_it_holds_the_shutdown(self):
        # A handler left work on a pool thread at its deadline (offload_owned): the runtime's
        # end waits for it, and when that outlasts the shutdown limit, the log says so rather
        # than blaming a blocked hub.
        with Weft(["--hubs", "1", "--plugin", u.plugin_path("calm")]) as w:
            w.wait_ready()
            status, _, _ = get(w.http, "/calm/owned?ms=30000", timeout=10)
            self.assertEqual(status, 504)  # answered at its 200 ms deadline
            w.signal(signal.SIGTERM)
            code = w.wait(20)
            log = w.stderr()
        self.assertEqual(code, 1, log)
        self.assertIn("drained: every request finished", log)
        self.assertRegex(log, r"shutdown stuck: .*, while waiting for 1 offloaded task\(s\) and 0 "
                              r"name lookup\(s\) still running on their threads")

    def test_sigterm_during_a_stuck_shutdown_exits_at_once(self):
        with Weft(["--hubs", "1", "--plugin", u.plugin_path("stubborn")]) as w:
            w.wait_ready()
            w.signal(signal.SIGTERM)
            w.wait_for_log(r"drained: every request finished")
            time.sleep(0.5)  # the shutdown is now stuck joining the hub
            self.assertIsNone(w.proc.poll())
            t = time.monotonic()
            w.signal(signal.SIGTERM)
            code = w.wait(5)
            took = time.monotonic() - t
        self.assertEqual(code, 128 + signal.SIGTERM)
        self.assertLess(took, 1.0)

    def test_sigterm_while_a_plugin_starts_ends_the_process(self):
        # A plugin whose init hangs (a database that does not answer): SIGTERM still stops it.
        tmp = tempfile.TemporaryDirectory(prefix="weft-drain-test-")
        self.addCleanup(tmp.cleanup)
        conf = os.path.join(tmp.name, "weft.toml")
        with open(conf, "w") as f:
            f.write('[[plugin]]\npath = "%s"\n[plugin.config]\ninit_sleep_ms = 60000\n' %
                    u.plugin_path("stubborn"))
        with Weft(["--hubs", "1", "--config", conf]) as w:
            time.sleep(1.0)  # it is in the plugin's init by now
            self.assertIsNone(w.proc.poll())
            self.assertNotRegex(w.stderr(), r"ready in \d+ ms")
            t = time.monotonic()
            w.signal(signal.SIGTERM)
            code = w.wait(5)
            took = time.monotonic() - t
        self.assertEqual(code, -signal.SIGTERM)
        self.assertLess(took, 2.0)

    def test_a_stop_signal_ends_an_exit_that_hangs_after_the_shutdown(self):
        # The shutdown is over ("weft stopped"), and the process's exit hangs in a plugin's
        # atexit handler: nobody reads the signal pipe any more, so SIGTERM must end the
        # process as by default.
        tmp = tempfile.TemporaryDirectory(prefix="weft-drain-test-")
        self.addCleanup(tmp.cleanup)
        conf = os.path.join(tmp.name, "weft.toml")
        with open(conf, "w") as f:
            f.write('[[plugin]]\npath = "%s"\n[plugin.config]\nexit_sleep_ms = 60000\n' %
                    u.plugin_path("calm"))
        with Weft(["--hubs", "1", "--config", conf]) as w:
            w.wait_ready()
            w.signal(signal.SIGTERM)
            u.poll(lambda: "weft stopped" in w.stderr(), 10, what="the shutdown to finish")
            time.sleep(0.3)
            self.assertIsNone(w.proc.poll(), "the exit did not hang (the test proves nothing)")
            t = time.monotonic()
            w.signal(signal.SIGTERM)
            code = w.wait(5)
            took = time.monotonic() - t
        self.assertEqual(code, -signal.SIGTERM)
        self.assertLess(took, 2.0)

    def test_a_child_process_of_a_handler_can_be_stopped(self):
        # A blocked signal mask is inherited: a child started with SIGTERM blocked would
        # ignore `kill`. None of the server's signals is blocked in the child.
        with Weft(["--hubs", "1", "--plugin", u.plugin_path("calm")]) as w:
            w.wait_ready()
            status, _, body = get(w.http, "/calm/child-status")
            self.assertEqual(status, 200, body)
            blocked = int(re.search(rb"(?m)^SigBlk:\s*([0-9a-f]+)$", body).group(1), 16)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):
                self.assertFalse(blocked & (1 << (sig - 1)), "%s blocked in the child" % sig.name)
            w.signal(signal.SIGTERM)
            self.assertEqual(w.wait(10), 0)

    def test_a_forked_child_does_not_answer_the_servers_signals(self):
        with Weft(["--hubs", "1", "--plugin", u.plugin_path("calm")]) as w:
            w.wait_ready()
            status, _, body = get(w.http, "/calm/fork-term")
            self.assertEqual((status, body), (200, b"signaled %d\n" % signal.SIGTERM))
            time.sleep(0.3)
            self.assertNotIn("draining", w.stderr())
            self.assertEqual(get(w.http, "/calm")[0], 200)
            self.assertEqual(w.stop(), 0)

    def test_idle_keep_alive_connections_close_at_once(self):
        with Weft(["--hubs", "1", "--set", "server.idle_timeout=60s"]) as w:
            w.wait_ready()
            host, port = split_addr(w.http)
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIn(b"Hello, World!", read_until(s, b"Hello, World!"))
            t = time.monotonic()
            w.signal(signal.SIGINT)  # SIGINT drains like SIGTERM
            s.settimeout(5)
            self.assertEqual(s.recv(100), b"", "the idle connection was not closed")
            self.assertLess(time.monotonic() - t, 2.0)
            s.close()
            self.assertEqual(w.wait(5), 0)
            self.assertIn("SIGINT: draining", w.stderr())


def active_requests(w):
    """http_server_active_requests summed over hubs and methods, from /metrics."""
    text = get(w.admin, "/metrics")[2].decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("http_server_active_requests{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def read_until(s, marker):
    data = b""
    while marker not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


if __name__ == "__main__":
    u.main()

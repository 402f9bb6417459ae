"""The server's logs: JSON lines (every stderr line parses, whoever logged it: the server, a
plugin, the watchdog's reports, the SIGUSR1 dump, the access log), the access log as text in a
file, SIGUSR1's run-info dump in the text format, and a bad access-log path."""

import json
import os
import http.client
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import real_servers
import server_test_util as u
from server_test_util import Weft, get


def raw(addr, pieces, pause=0.25):
    """Sends `pieces` on one connection, `pause` s apart, and returns all it reads until the
    server closes."""
    host, port = u.split_addr(addr)
    with socket.create_connection((host, port), timeout=10) as c:
        for n, piece in enumerate(pieces):
            if n:
                time.sleep(pause)
            c.sendall(piece)
        got = b""
        while True:
            b = c.recv(65536)
            if not b:
                return got
            got += b


class JsonLines(unittest.TestCase):
    def test_every_stderr_line_is_a_json_object(self):
        with Weft(["--hubs", "2", "--log-format", "json", "--set", "log.access_log=stderr",
                   "--plugin", "demo", "--plugin", u.plugin_path("hello")]) as w:
            w.wait_ready()
            self.assertEqual(get(w.http, "/hello/json")[0], 200)
            self.assertEqual(get(w.http, "/missing", headers={"Referer": "http://r/",
                                                           "User-Agent": "t\"1"})[0], 404)
            self.assertEqual(get(w.http, '/echo?q="quoted"', method="POST",
                                 body=b"line1\nline2")[0], 200)
            self.assertEqual(get(w.http, "/block?ms=250")[0], 200)  # a watchdog report
            self.assertTrue(raw(w.http, [b"GARBAGE \xff\r\n\r\n"]).startswith(b"HTTP/1.1 400 "))
            w.wait_for_log(r"runs again")
            w.wait_for_log(r"appears to be blocked")
            mark = len(w.stderr())
            w.signal(signal.SIGUSR1)
            w.wait_for_log(r"run info of every hub", after=mark)
            self.assertEqual(w.stop(), 0)
            lines = w.stderr().splitlines()

        self.assertGreater(len(lines), 5)
        records = []
        for i, line in enumerate(lines):
            try:
                rec = json.loads(line)
            except ValueError as e:
                self.fail("stderr line %d is not JSON (%s): %r" % (i + 1, e, line))
            self.assertIsInstance(rec, dict, line)
            records.append(rec)

        logs = [r for r in records if "msg" in r]
        access = [r for r in records if "status" in r]
        for r in logs:
            # A blocking report's lines carry it as fields too, for log collectors to filter on.
            expected = {"time", "level", "logger", "thread", "msg"}
            if "blocking" in r:
                expected.add("blocking")
            self.assertEqual(set(r), expected, r)
            self.assertRegex(r["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        reports = [r["blocking"] for r in logs if "blocking" in r]
        blocked = [b for b in reports if b["kind"] == "blocked"]
        ended = [b for b in reports if b["kind"] == "unblocked"]
        self.assertEqual(len(blocked), 1, reports)
        self.assertEqual(blocked[0]["request"]["route"], "/block")
        self.assertEqual(blocked[0]["request"]["plugin"], "demo")
        self.assertGreater(len(blocked[0]["stack"]), 0, blocked[0])
        self.assertEqual(len(ended), 1, reports)
        self.assertEqual(ended[0]["report_id"], blocked[0]["id"])
        self.assertGreaterEqual(ended[0]["duration_seconds"], 0.2)
        by_logger = {}
        for r in logs:
            by_logger.setdefault(r["logger"], []).append(r["msg"])
        self.assertTrue(any("ready in" in m for m in by_logger.get("weft", [])), by_logger)
        self.assertTrue(any("hello plugin ready" in m for m in by_logger.get("plugin.hello", [])))
        self.assertTrue(any("shutting down" in m for m in by_logger.get("plugin.hello", [])))
        monitor = by_logger.get("weft.monitor", [])
        self.assertTrue(any("appears to be blocked" in m and "route=/block" in m
                            for m in monitor), monitor)
        self.assertTrue(any("run info of every hub" in m and "http-accept" in m
                            for m in monitor), monitor)

        # A refused request: no method or target, its line as it came (valid JSON whatever
        # bytes it held), and its error body's size.
        refused = [r for r in access if r["status"] == 400]
        self.assertEqual(len(refused), 1, access)
        self.assertEqual(refused[0]["request_line"], "GARBAGE \ufffd")
        self.assertEqual((refused[0]["method"], refused[0]["target"]), ("", ""))
        self.assertGreater(refused[0]["bytes"], 0)
        self.assertTrue(all("request_line" not in r for r in access if r["status"] != 400))
        targets = {r["target"]: r for r in access}
        self.assertEqual(targets["/hello/json"]["route"], "/hello/{name}")
        self.assertEqual(targets["/hello/json"]["status"], 200)
        self.assertEqual(targets["/hello/json"]["protocol"], "HTTP/1.1")
        self.assertNotIn("protocol", refused[0])
        self.assertEqual(targets["/missing"]["status"], 404)
        self.assertEqual(targets['/echo?q="quoted"']["method"], "POST")
        self.assertEqual(targets['/echo?q="quoted"']["bytes"], len(b"line1\nline2"))
        self.assertGreaterEqual(targets["/block?ms=250"]["duration_seconds"], 0.25)
        self.assertRegex(targets["/missing"]["peer"], r"^127\.0\.0\.1:\d+$")
        self.assertEqual((targets["/missing"]["referer"], targets["/missing"]["user_agent"]),
                         ("http://r/", 't"1'))
        self.assertEqual(targets["/hello/json"]["referer"], "")


    def test_an_access_log_that_cannot_be_written_says_so_in_json_and_counts(self):
        # A full disk: spdlog's own handler wrote one raw "[*** LOG ERROR ***]" line, not JSON,
        # and nothing counted the lines lost.
        with Weft(["--hubs", "1", "--log-format", "json",
                   "--set", "log.access_log=/dev/full"]) as w:
            w.wait_ready()
            for _ in range(3):
                self.assertEqual(get(w.http, "/")[0], 200)
            u.poll(lambda: re.search(r"(?m)^weft_access_log_lines_lost_total 3$",
                                     get(w.admin, "/metrics")[2].decode()), 5,
                   what="three lines counted lost")
            w.wait_for_log(r"access log: a line could not be written \(1 lost so far")
            self.assertEqual(w.stop(), 0)
            for line in w.stderr().splitlines():
                json.loads(line)
            self.assertNotIn("LOG ERROR", w.stderr())

    def test_an_access_log_on_stdout_that_cannot_be_written_counts_too(self):
        # spdlog's stdout sink ignored a failed write: lines lost to a full disk or a closed
        # pipe were neither counted nor said.
        def full_stdout():
            os.dup2(os.open("/dev/full", os.O_WRONLY), 1)
        with Weft(["--hubs", "1", "--set", "log.access_log=stdout"],
                  preexec_fn=full_stdout) as w:
            w.wait_ready()
            for _ in range(2):
                self.assertEqual(get(w.http, "/")[0], 200)
            u.poll(lambda: re.search(r"(?m)^weft_access_log_lines_lost_total 2$",
                                     get(w.admin, "/metrics")[2].decode()), 5,
                   what="two lines counted lost")
            w.wait_for_log(r"access log: a line could not be written \(1 lost so far, "
                           r"weft_access_log_lines_lost_total\): access log: writing to "
                           r"standard output")
            self.assertEqual(w.stop(), 0)

    def test_untrusted_bytes_stay_valid_utf8_json(self):
        # A plugin's refusal message carries bytes that are not UTF-8 (e.g. from a request or
        # a file); each log line must still be valid UTF-8 JSON, for strict log collectors.
        with tempfile.TemporaryDirectory(prefix="weft-logs-test-") as tmp:
            cfg = u.write(os.path.join(tmp, "weft.toml"),
                          '[[plugin]]\npath = "%s"\n[plugin.config]\nthrow = "bytes"\n'
                          % u.plugin_path("throwing"))
            r = subprocess.run([u.ARGS.weft, "--config", cfg, "--log-format", "json",
                                "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"],
                               capture_output=True, timeout=20, env=u.clean_env())
        self.assertNotEqual(r.returncode, 0)
        msgs = []
        for raw in r.stderr.splitlines():
            text = raw.decode("utf-8")  # strict: raises on invalid UTF-8
            msgs.append(json.loads(text)["msg"])
        failure = next(m for m in msgs if "init failed" in m)
        self.assertIn("bad name 'caf\ufffd' \x01 \U0001F600 ok", failure)


class AccessLogFile(unittest.TestCase):
    def test_text_access_log_in_a_file(self):
        with tempfile.TemporaryDirectory(prefix="weft-logs-test-") as tmp:
            path = os.path.join(tmp, "access.log")
            with Weft(["--hubs", "1", "--set", "log.access_log=" + path], workdir=tmp) as w:
                w.wait_ready()
                get(w.http, "/sleep?ms=1")
                get(w.http, "/nope", headers={"Referer": "http://example.com/p?q=1",
                                              "User-Agent": 'agent "quoted" 1.0'})
                get(w.http, "/", method="HEAD")
                # A quote cannot end the quoted field (nginx writes it as \x22, as here).
                get(w.http, '/a"b\\c')
                # Refused requests show their line as it came (nginx's $request), with the
                # size of the error body sent; the duration runs from the first byte.
                tls = raw(w.http, [b"\x16\x03\x01\x00\xa5\r\n"])
                self.assertTrue(tls.startswith(b"HTTP/1.1 400 "), tls)
                self.assertTrue(raw(w.http, [b"GET /up", b"load HTTP/1.1\r\nHost: h\r\n"
                                             b"Content-Length: x\r\n\r\n"]).startswith(
                    b"HTTP/1.1 400 "))
                self.assertTrue(raw(w.http, [b"GET /\r\n"]).startswith(b"HTTP/1.1 505 "))
                self.assertEqual(w.stop(), 0)
            with open(path) as f:
                lines = f.read().splitlines()
            self.assertEqual(len(lines), 7, lines)
            # nginx's combined format, then the duration, route and hub.
            time_local = r'\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]'
            line = r'^127\.0\.0\.1 - - ' + time_local + \
                   r' "%s HTTP/1\.1" %d (\d+) "-" "-" [\d.]+ route="%s" hub=0$'
            self.assertRegex(lines[0], line % (r"GET /sleep\?ms=1", 200, "/sleep"))
            self.assertRegex(lines[1], r'^127\.0\.0\.1 - - ' + time_local +
                             r' "GET /nope HTTP/1\.1" 404 \d+ "http://example\.com/p\?q=1" '
                             r'"agent \\x22quoted\\x22 1\.0" [\d.]+ route="" hub=0$')
            m = re.match(line % ("HEAD /", 200, "/"), lines[2])
            self.assertTrue(m, lines[2])
            self.assertEqual(m.group(1), "0")  # no body for HEAD
            self.assertRegex(lines[3], line % (r"GET /a\\x22b\\x5Cc", 404, ""))
            refused = r'^127\.0\.0\.1 - - ' + time_local + \
                      r' "%s" %d (\d+) "-" "-" ([\d.]+) route="" hub=0$'
            m = re.match(refused % (r"\\x16\\x03\\x01\\x00\\xA5", 400), lines[4])
            self.assertTrue(m, lines[4])
            self.assertEqual(m.group(1), str(len(tls.split(b"\r\n\r\n", 1)[1])))
            m = re.match(refused % ("GET /upload HTTP/1.1", 400), lines[5])
            self.assertTrue(m, lines[5])
            self.assertGreater(int(m.group(1)), 0)
            self.assertGreaterEqual(float(m.group(2)), 0.2)  # the line came in two pieces
            self.assertRegex(lines[6], refused % ("GET /", 505))
            # The access log stays out of the server log.
            self.assertNotIn("/sleep?ms=1", w.stderr())

    def test_a_response_that_did_not_all_go_out_is_logged_incomplete(self):
        # A 16 MiB echo to a client that stopped reading was logged as a complete 200.
        with tempfile.TemporaryDirectory(prefix="weft-logs-test-") as tmp:
            path = os.path.join(tmp, "access.log")
            with Weft(["--hubs", "1", "--set", "log.access_log=" + path,
                       "--set", "server.max_body_bytes=32MiB",
                       "--set", "server.send_timeout=1s"], workdir=tmp) as w:
                w.wait_ready()
                body = b"e" * (16 << 20)
                s = socket.create_connection(u.split_addr(w.http), timeout=10)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.sendall(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n"
                          % len(body) + body)
                self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 200 "))
                # Reads nothing more: the server's send times out.
                u.poll(lambda: os.path.exists(path) and os.path.getsize(path) > 0, 10,
                       what="the access log line")
                s.close()
                get(w.http, "/")
                self.assertEqual(w.stop(), 0)
            with open(path) as f:
                lines = f.read().splitlines()
            self.assertEqual(len(lines), 2, lines)
            self.assertRegex(lines[0], r'"POST /echo HTTP/1\.1" 200 16777216 "-" "-" [\d.]+ '
                                       r'route="/echo" hub=0 incomplete$')
            self.assertRegex(lines[1], r'"GET / HTTP/1\.1" 200 13 "-" "-" [\d.]+ route="/" '
                                       r'hub=0$')

    def test_an_access_log_that_does_not_keep_up_delays_no_request(self):
        # The access log is a FIFO nobody reads for now (a disk that has stalled): its 64 KiB
        # fill after some hundred lines. Requests go on being answered meanwhile (the lines
        # wait in the writer's queue), and every line comes out once the reader reads.
        with tempfile.TemporaryDirectory(prefix="weft-logs-test-") as tmp:
            path = os.path.join(tmp, "access.fifo")
            os.mkfifo(path)
            reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                with Weft(["--hubs", "1", "--set", "log.access_log=" + path], workdir=tmp) as w:
                    w.wait_ready()
                    host, port = u.split_addr(w.http)
                    c = http.client.HTTPConnection(host, port, timeout=5)
                    n = 2000  # about 200 KB of lines
                    t = time.monotonic()
                    for i in range(n):
                        c.request("GET", "/?line=%d" % i)
                        r = c.getresponse()
                        r.read()
                        self.assertEqual(r.status, 200)
                    took = time.monotonic() - t
                    c.close()
                    data = b""
                    deadline = time.monotonic() + 10
                    while data.count(b"\n") < n and time.monotonic() < deadline:
                        try:
                            chunk = os.read(reader, 65536)
                        except BlockingIOError:
                            chunk = b""
                        if chunk:
                            data += chunk
                        else:
                            time.sleep(0.01)
                    self.assertEqual(w.stop(), 0)
            finally:
                os.close(reader)
            lines = data.decode().splitlines()
            self.assertEqual(len(lines), n)
            self.assertIn("/?line=0 ", lines[0])
            self.assertIn("/?line=%d " % (n - 1), lines[-1])
            self.assertLess(took, 5.0)

    def test_streams_nobody_reads_hold_up_neither_requests_nor_the_stop(self):
        # Standard output and error are one pipe whose reader stopped reading (a log collector
        # that hangs). The access log (on stdout) filled it and its writer's queue: the hubs
        # then waited for room in the queue, and every thread that logged to stderr for the
        # lock its writer held (the data port stopped answering after some 8,800 requests,
        # SIGTERM was logged by nobody and drained nothing, only SIGKILL ended it). Now a
        # line waits at most a second for room; past that, lines are dropped and counted.
        with tempfile.TemporaryDirectory(prefix="weft-logs-test-") as tmp:
            fifo = os.path.join(tmp, "out.fifo")
            os.mkfifo(fifo)
            reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # open, never read
            writer = os.open(fifo, os.O_WRONLY)  # blocking, as a runtime's pipe
            port, admin = real_servers.free_port(), real_servers.free_port()
            p = subprocess.Popen([u.ARGS.weft, "--hubs", "1", "--listen", "127.0.0.1:%d" % port,
                                  "--admin", "127.0.0.1:%d" % admin,
                                  "--set", "log.access_log=stdout"],
                                 env=u.clean_env(), stdin=subprocess.DEVNULL, stdout=writer,
                                 stderr=writer, cwd=tmp, start_new_session=True)
            os.close(writer)
            try:
                addr = "127.0.0.1:%d" % port
                u.poll(lambda: not u.connect_refused(addr), 10, what="weft listening")
                batch = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" * 100
                with socket.create_connection(("127.0.0.1", port), timeout=20) as c:
                    for _ in range(120):  # 12,000 requests: the pipe's and the queue's worth
                        c.sendall(batch)
                        got = b""
                        while got.count(b"HTTP/1.1 200 ") < 100:
                            b = c.recv(65536)
                            self.assertTrue(b, "the server closed the connection")
                            got += b
                metrics = get("127.0.0.1:%d" % admin, "/metrics")[2].decode()
                m = re.search(r"(?m)^weft_access_log_lines_lost_total (\S+)$", metrics)
                self.assertTrue(m and float(m.group(1)) > 0, metrics[-1500:])

                def drain():
                    out, quiet = b"", 0
                    while quiet < 30:
                        try:
                            chunk = os.read(reader, 65536)
                        except BlockingIOError:
                            chunk = b""
                        out += chunk
                        quiet = 0 if chunk else quiet + 1
                        time.sleep(0 if chunk else 0.01)
                    return out
                drain()  # the reader is back: the next server line says what was lost
                t = time.monotonic()
                p.send_signal(signal.SIGTERM)
                self.assertEqual(p.wait(timeout=15), 0)
                self.assertLess(time.monotonic() - t, 10)
                self.assertRegex(drain().decode(errors="replace"),
                                 r"\[warning\] log: \d+ line\(s\) lost while standard error "
                                 r"was not being read\n.*SIGTERM: draining")
            finally:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                os.close(reader)

    def test_a_forked_child_exits_with_the_access_log_on(self):
        # The access log's writer is a thread the child of a fork does not have: its exit must
        # not wait to join it.
        # Under ASan, the leak check at the child's exit is turned off: GCC 12's libasan has no
        # fork handler, so a child forked while another thread holds one of ASan's allocator
        # locks waits for it forever when the check locks the allocator (seen with gdb in
        # __lsan::LockAllocator). That is the sanitizer's hang, not weft's.
        sanitized = "sanitizers=none" not in u.run_weft(["--version"]).stdout
        env = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"} \
            if sanitized else None
        with tempfile.TemporaryDirectory(prefix="weft-logs-test-") as tmp:
            path = os.path.join(tmp, "access.log")
            with Weft(["--hubs", "1", "--set", "log.access_log=" + path,
                       "--plugin", u.plugin_path("calm")], env=env, workdir=tmp) as w:
                w.wait_ready()
                status, _, body = get(w.http, "/calm/fork-exit", timeout=30)
                self.assertEqual(status, 200)
                self.assertEqual(body, b"exited\n")
                self.assertEqual(w.stop(), 0)

    def test_a_rotated_access_log_is_reopened(self):
        # logrotate renames the file (no copytruncate): weft goes on in a new file of the name,
        # within a second, and no line is lost.
        with tempfile.TemporaryDirectory(prefix="weft-logs-test-") as tmp:
            path = os.path.join(tmp, "access.log")
            with Weft(["--hubs", "1", "--set", "log.access_log=" + path], workdir=tmp) as w:
                w.wait_ready()
                for _ in range(3):
                    get(w.http, "/before")
                os.rename(path, path + ".1")
                get(w.http, "/between")  # to the renamed file, or the new one
                u.poll(lambda: os.path.exists(path), 5, what="access.log made again")
                for _ in range(2):
                    get(w.http, "/after")
                self.assertEqual(w.stop(), 0)
            with open(path + ".1") as f:
                old = f.read().splitlines()
            with open(path) as f:
                new = f.read().splitlines()
            self.assertEqual(len(old) + len(new), 6, (old, new))
            self.assertTrue(all("/before" in line for line in old[:3]), old)
            self.assertTrue(all("/after" in line for line in new[-2:]), new)

    def test_unwritable_access_log_is_a_startup_error(self):
        with tempfile.TemporaryDirectory(prefix="weft-logs-test-") as tmp:
            # A directory that does not exist is not made (a mistyped path made a stray tree
            # of them, as root, even under --check-config): nginx refuses it too.
            path = os.path.join(tmp, "no", "such", "dir", "access.log")
            for check in ([], ["--check-config"]):
                r = u.run_weft(check + ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                                        "--set", "log.access_log=" + path])
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("[log] access_log: cannot open '%s' (flag --set log.access_log): "
                              "No such file or directory" % path, r.stderr)
                self.assertNotRegex(r.stderr, r"ready in \d+ ms")
                self.assertFalse(os.path.exists(os.path.join(tmp, "no")))


class Sigusr1(unittest.TestCase):
    def test_sigusr1_logs_every_hubs_fibers(self):
        # A zone 5 hours west of UTC, spelled the POSIX way (no tzdata needed).
        with Weft(["--hubs", "2"], env=dict(os.environ, TZ="WFT+5")) as w:
            w.wait_ready()
            # Local time with its offset.
            self.assertRegex(w.stderr(), r"(?m)^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} "
                             r"-05:00\] \[weft\] \[info\] ")
            mark = len(w.stderr())
            w.signal(signal.SIGUSR1)
            w.wait_for_log(r"run info of every hub", after=mark)
            w.wait_for_log(r"---- Hub 1 ", after=mark)
            dump = w.stderr()[mark:]
            self.assertIn("[weft.monitor]", dump)
            self.assertRegex(dump, r"Thread \d+ \(weft-hub-0\)")
            self.assertEqual(len(re.findall(r'fiber \d+ "http-accept"; parked \(accept\)', dump)),
                             2, dump)
            # It dumps and carries on serving.
            self.assertEqual(get(w.http, "/")[2], b"Hello, World!")
            self.assertEqual(w.stop(), 0)

    def test_sigusr1_dumps_with_the_watchdog_off_too(self):
        # [monitor] enabled = false: no watchdog thread, and still the dump SIGUSR1 promises.
        with Weft(["--hubs", "1", "--set", "monitor.enabled=false"]) as w:
            w.wait_ready()
            mark = len(w.stderr())
            w.signal(signal.SIGUSR1)
            w.wait_for_log(r"run info of every hub", after=mark)
            self.assertEqual(get(w.http, "/")[2], b"Hello, World!")
            self.assertEqual(w.stop(), 0)

    def test_sigusr1_dumps_once_every_5_s_at_most(self):
        # A dump of 5,000 fibers is ~1 MB of log: a burst of signals must not flood it. The
        # requests after a dump are merged into one dump 5 s after it.
        with Weft(["--hubs", "1"]) as w:
            w.wait_ready()
            mark = len(w.stderr())
            t0 = time.monotonic()
            for _ in range(10):
                w.signal(signal.SIGUSR1)
                time.sleep(0.05)
            w.wait_for_log(r"run-info dump requested\n", after=mark)
            time.sleep(max(0.0, t0 + 2.5 - time.monotonic()))
            dumps = lambda: re.findall(r"run-info dump requested[^\n]*", w.stderr()[mark:])
            self.assertEqual(len(dumps()), 1, dumps())
            w.wait_for_log(r"run-info dump requested \(\d+ requests merged", timeout=8,
                           after=mark)
            self.assertGreaterEqual(time.monotonic() - t0, 4.5)
            self.assertEqual(len(dumps()), 2, dumps())
            self.assertRegex(dumps()[1], r"\((9|[1-8]) requests merged: one dump every 5 s")
            self.assertEqual(w.stop(), 0)


if __name__ == "__main__":
    u.main()

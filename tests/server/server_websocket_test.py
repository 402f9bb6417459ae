"""WebSocket routes of the real `weft` binary (the demo's /ws/echo) against real clients:
Python's `websockets` (Debian python3-websockets) over ws:// and wss://, and raw sockets for what
a polite client never sends: each malformed frame must get its close code (RFC 6455 §7.4.1).
Also the handshake's refusals, the server's pings and idle timeout, and 5,000 idle WebSockets
with the server's memory per connection."""

import asyncio
import base64
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unittest

# The websockets module comes from Debian (python3-websockets): under another interpreter (a
# developer's pyenv), run this file with Debian's.
try:
    import websockets
except ImportError:
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != \
            os.path.realpath("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

import server_test_util as u
import tls_util
from server_test_util import Weft, get

KEY = base64.b64encode(b"0123456789abcdef").decode()


def frame(opcode, payload, fin=True, mask=True, rsv=0):
    """A client frame."""
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return head + payload
    key = b"\x11\x22\x33\x44"
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


class RawWs:
    """A WebSocket client on a plain socket, for frames no library would send."""

    def __init__(self, addr, path="/ws/echo", extra=b""):
        host, port = u.split_addr(addr)
        self.s = socket.create_connection((host, port), timeout=5)
        self.s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                       b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\n" + extra + b"\r\n")
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")

    def status(self):
        return int(self.head.split(" ", 2)[1])

    def __del__(self):
        self.s.close()

    def read_frame(self, timeout=5.0):
        """(opcode, payload), or None at the end of the stream."""
        self.s.settimeout(timeout)

        def need(n):
            while len(self.buf) < n:
                chunk = self.s.recv(65536)
                if not chunk:
                    return False
                self.buf += chunk
            return True
        if not need(2):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            need(4)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            need(10)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        if not need(off + n):
            return None
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0F, payload

    def close_code(self, timeout=5.0):
        """Reads until the server's close frame; returns its code (None if the stream ended)."""
        while True:
            f = self.read_frame(timeout)
            if f is None:
                return None
            if f[0] == 0x8:
                return struct.unpack("!H", f[1][:2])[0] if len(f[1]) >= 2 else 1005

    def closed_by_server(self, timeout=5.0):
        self.s.settimeout(timeout)
        try:
            while self.s.recv(65536):
                pass
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def run(coro):
    return asyncio.run(coro)


class WebSocketTest(unittest.TestCase):
    def test_echo_with_python_websockets(self):
        with Weft(["--hubs", "2"]) as w:
            w.wait_ready()

            async def talk():
                async with websockets.connect("ws://%s/ws/echo" % w.http,
                                              subprotocols=["other", "echo"],
                                              max_size=None) as ws:
                    self.assertEqual(ws.subprotocol, "echo")
                    await ws.send("héllo, wörld")
                    self.assertEqual(await ws.recv(), "héllo, wörld")
                    # Counted as they go, not when the WebSocket closes (a long-lived socket
                    # would show nothing for its whole life).
                    text = get(w.admin, "/metrics")[2].decode()
                    self.assertRegex(text, r'weft_websocket_messages_total\{direction="in"\} 1\n')
                    self.assertRegex(text, r'weft_websocket_messages_total\{direction="out"\} 1\n')
                    await ws.send(b"\x00\x01\xff" * 1000)
                    self.assertEqual(await ws.recv(), b"\x00\x01\xff" * 1000)
                    # Fragments are joined into one message.
                    await ws.send(iter(["frag", "ments ", "joined"]))
                    self.assertEqual(await ws.recv(), "fragments joined")
                    big = os.urandom(900 * 1024)
                    await ws.send(big)
                    self.assertEqual(await ws.recv(), big)
                    pong = await ws.ping(b"are you there")
                    await asyncio.wait_for(pong, 5)
                    await ws.close(1000, "bye")
                    return ws.close_code
            self.assertEqual(run(talk()), 1000)
            text = u.poll(lambda: (lambda t: t if 'direction="in"} 4' in t else None)(
                get(w.admin, "/metrics")[2].decode()), 5, what="message counters")
            self.assertRegex(text, r'weft_websocket_messages_total\{direction="out"\} 4')
            self.assertRegex(text, r"weft_websocket_connections 0")

    def test_handshake_refusals(self):
        with Weft(["--hubs", "1"]) as w:
            w.wait_ready()
            status, headers, body = get(w.http, "/ws/echo")
            self.assertEqual(status, 426)
            self.assertEqual(headers.get("upgrade"), "websocket")
            r = RawWs(w.http, extra=b"")
            self.assertEqual(r.status(), 101)
            self.assertIn("Sec-WebSocket-Accept: ", r.head)
            for extra, status in ((b"X: 1\r\n", 101),):
                self.assertEqual(RawWs(w.http, extra=extra).status(), status)
            # Version 8: 426 naming the one we speak; a bad key: 400.
            host, port = u.split_addr(w.http)
            for hdrs, want, check in (
                    (b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: " + KEY.encode(), 426,
                     "Sec-WebSocket-Version: 13"),
                    (b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short", 400,
                     "Sec-WebSocket-Key"),
                    (b"Sec-WebSocket-Version: 13", 400, "Sec-WebSocket-Key")):
                with socket.create_connection((host, port), timeout=5) as s:
                    s.sendall(b"GET /ws/echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                              b"Connection: Upgrade\r\n" + hdrs + b"\r\n\r\n")
                    got = b""
                    while True:
                        c = s.recv(4096)
                        if not c:
                            break
                        got += c
                    text = got.decode("latin-1")
                    self.assertTrue(text.startswith("HTTP/1.1 %d " % want), text)
                    self.assertIn(check, text)

    def test_malformed_frames_get_their_close_codes(self):
        cases = [
            ("unmasked", frame(0x1, b"hi", mask=False), 1002),
            ("reserved opcode", frame(0x3, b"hi"), 1002),
            ("reserved bit", frame(0x1, b"hi", rsv=0x40), 1002),
            ("oversize", frame(0x2, b"x" * 2000), 1009),
            ("invalid UTF-8", frame(0x1, b"ok \xc3\x28 bad"), 1007),
            ("control frame too long", frame(0x9, b"p" * 126), 1002),
            ("fragmented control", frame(0x9, b"ping", fin=False), 1002),
            ("continuation first", frame(0x0, b"orphan"), 1002),
            ("bad close code", frame(0x8, struct.pack("!H", 1005)), 1002),
        ]
        for backend in u.backends():
            with self.subTest(backend=backend):
                self.malformed_frames(backend, cases)

    def malformed_frames(self, backend, cases):
        with Weft(["--hubs", "1", "--backend", backend,
                   "--set", "websocket.max_message_bytes=1000"]) as w:
            w.wait_ready()
            for what, data, code in cases:
                r = RawWs(w.http)
                self.assertEqual(r.status(), 101, what)
                r.s.sendall(data)
                self.assertEqual(r.close_code(), code, what)
                self.assertTrue(r.closed_by_server(), what + ": the server must close")
            # A message split across fragments over the limit is caught too.
            r = RawWs(w.http)
            r.s.sendall(frame(0x2, b"a" * 600, fin=False) + frame(0x0, b"b" * 600))
            self.assertEqual(r.close_code(), 1009)
            # The close handshake: our close is echoed with its code.
            r = RawWs(w.http)
            r.s.sendall(frame(0x8, struct.pack("!H", 4001) + b"done"))
            self.assertEqual(r.close_code(), 4001)
            # The server is fine after all of it.
            self.assertEqual(get(w.http, "/")[0], 200)

    def test_pings_and_idle_timeout(self):
        with Weft(["--hubs", "1", "--set", "websocket.ping_interval=300ms",
                   "--set", "websocket.idle_timeout=1500ms"]) as w:
            w.wait_ready()
            # A client that never answers: pinged after the interval, closed after another.
            r = RawWs(w.http)
            t0 = time.monotonic()
            op, payload = r.read_frame(3)
            self.assertEqual(op, 0x9)
            self.assertGreater(time.monotonic() - t0, 0.2)
            self.assertEqual(r.close_code(3), 1001)
            self.assertLess(time.monotonic() - t0, 1.5)

            # A client that answers pings but sends nothing: closed at the idle timeout.
            async def idle():
                async with websockets.connect("ws://%s/ws/echo" % w.http) as ws:
                    t = time.monotonic()
                    try:
                        await asyncio.wait_for(ws.recv(), 5)
                    except websockets.ConnectionClosed:
                        pass
                    return ws.close_code, ws.close_reason, time.monotonic() - t
            code, reason, took = run(idle())
            self.assertEqual((code, reason), (1001, "idle timeout"))
            self.assertGreater(took, 1.2)
            self.assertLess(took, 3.0)

    def test_drain_closes_websockets_with_going_away(self):
        for backend in u.backends():
            with self.subTest(backend=backend):
                self.drain(backend)

    def drain(self, backend):
        with Weft(["--hubs", "2", "--backend", backend,
                   "--set", "server.drain_timeout=20s"]) as w:
            w.wait_ready()

            async def held():
                socks = [await websockets.connect("ws://%s/ws/echo" % w.http) for _ in range(4)]
                for ws in socks:
                    await ws.send("before")
                    self.assertEqual(await ws.recv(), "before")
                t = time.monotonic()
                w.signal(signal.SIGTERM)
                codes = []
                for ws in socks:
                    try:
                        await asyncio.wait_for(ws.recv(), 10)
                    except websockets.ConnectionClosed:
                        pass
                    codes.append((ws.close_code, ws.close_reason))
                return codes, time.monotonic() - t
            codes, took = run(held())
            self.assertEqual(codes, [(1001, "server shutting down")] * 4)
            self.assertLess(took, 5.0)
            # Every WebSocket ended: the drain completes long before drain_timeout.
            self.assertEqual(w.wait(10), 0)
            self.assertIn("drained: every request finished", w.stderr())

    def test_over_tls(self):
        tmp = tempfile.mkdtemp(prefix="weft-ws-tls-")
        try:
            ca = tls_util.PrivateCa(tmp)
            cert = ca.issue("server", ["localhost", "127.0.0.1"])
            for backend in u.backends():
                with self.subTest(backend=backend):
                    self.over_tls(backend, ca, cert)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def over_tls(self, backend, ca, cert):
        with Weft(["--hubs", "1", "--backend", backend,
                   "--set", "server.tls_cert=" + cert.cert,
                   "--set", "server.tls_key=" + cert.key]) as w:
            w.wait_ready()
            self.assertTrue(w.https)
            ctx = ssl.create_default_context(cafile=ca.cert)

            async def talk():
                async with websockets.connect("wss://%s/ws/echo" % w.http, ssl=ctx) as ws:
                    out = []
                    for m in ("over", "tls", b"\x01" * 70000):
                        await ws.send(m)
                        out.append(await ws.recv())
                    return out
            self.assertEqual(run(talk()), ["over", "tls", b"\x01" * 70000])

            # A page of this host: its https:// origin is the server's own; its http:// one
            # (a page anyone on the path can rewrite) is another origin.
            async def with_origin(origin):
                try:
                    async with websockets.connect("wss://%s/ws/echo" % w.http, ssl=ctx,
                                                  origin=origin) as ws:
                        await ws.send("o")
                        return await ws.recv()
                except Exception as e:  # the handshake's status, as the library words it
                    return "refused: %s" % e
            self.assertEqual(run(with_origin("https://%s" % w.http)), "o")
            self.assertIn("403", run(with_origin("http://%s" % w.http)))

    def test_five_thousand_idle_websockets(self):
        n = 5000
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < 2 * n + 500:
            self.skipTest("the open-file limit (%d) is too low for %d WebSockets" % (hard, n))
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        with Weft(["--hubs", "2", "--set", "websocket.ping_interval=0s"]) as w:
            w.wait_ready()

            def rss_kib():
                with open("/proc/%d/status" % w.pid) as f:
                    return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))

            async def hold():
                before = rss_kib()
                socks = []
                for i in range(0, n, 250):
                    socks += await asyncio.gather(*[
                        websockets.connect("ws://%s/ws/echo" % w.http, ping_interval=None)
                        for _ in range(min(250, n - i))])
                await asyncio.sleep(0.5)
                after = rss_kib()
                metrics = get(w.admin, "/metrics")[2].decode()
                # Every one of them still answers.
                for ws in socks[::500]:
                    await ws.send("still there")
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 5), "still there")
                await asyncio.gather(*[ws.close() for ws in socks])
                return before, after, metrics
            before, after, metrics = run(hold())
            self.assertIn("weft_websocket_connections %d" % n, metrics)
            per = (after - before) * 1024 / n
            print("\n%d idle WebSockets: server RSS %d -> %d KiB, %.1f KiB per connection" %
                  (n, before, after, per / 1024))
            # A fiber (its stack), a session and the socket: far below a thread per connection.
            self.assertLess(per, 128 * 1024)


if __name__ == "__main__":
    u.main()

"""The outbound HTTP client as a plugin uses it, through the demo routes /fetch and /fanout of
the real `weft` binary: against Debian's nginx over HTTP and HTTPS (a private CA and its
certificates made with the openssl command: valid, expired, for another host), and against
small Python servers for chunked, close-delimited and stalled responses (and a close-delimited
one over TLS, ended with and without close_notify). Pool reuse is counted
by nginx's own accepted-connection count; TLS failures must say why; the client's metrics
appear in /metrics."""

import base64
import http.server
import os
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import unittest
import urllib.parse

import real_servers
import server_test_util as u
import tls_util
from server_test_util import Weft, get, split_addr


def metric_sum(text, name):
    """The sum of every sample of `name` in a /metrics page."""
    return sum(float(v) for v in re.findall(r"(?m)^%s(?:\{[^}]*\})? (\S+)$" % name, text))


class _Python(http.server.BaseHTTPRequestHandler):
    """GET /chunked: a chunked body; /close: HTTP/1.0 without Content-Length; /stall: half a
    body, then silence."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"x" * 1000, b"y" * 500):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/close":
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"z" * 777)
            self.close_connection = True
        elif self.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"half")
            self.wfile.flush()
            time.sleep(3)
            self.close_connection = True
        else:
            self.send_error(404)

    def log_message(self, *a):
        pass


class _Listener:
    """A socket on 127.0.0.1 whose connections each get a thread running self._one(sock)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def close(self):
        self.sock.close()


class _TlsCloseDelimited(_Listener):
    """HTTPS on 127.0.0.1: every request gets an HTTP/1.0 answer without Content-Length, its
    body ended by the close; GET /notify ends the stream with a close_notify alert, anything
    else just closes the socket (as a forged or broken end would)."""

    BODY = b"q" * 2345

    def __init__(self, cert):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert.cert, cert.key)
        super().__init__()

    def _one(self, raw):
        raw.settimeout(10)
        conn = None
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                piece = conn.recv(4096)
                if not piece:
                    return
                head += piece
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + self.BODY)
            if head.startswith(b"GET /notify "):
                conn.unwrap()  # sends close_notify
        except (OSError, ssl.SSLError):
            pass
        finally:
            (conn or raw).close()  # an SSLSocket's close sends no close_notify


class _ForwardProxy(_Listener):
    """An HTTP forward proxy on 127.0.0.1, as squid would be, for names that exist only here:
    `routes` maps "name:port" to a port on 127.0.0.1. An absolute-form request is passed on as
    it came (nginx takes the absolute form), a CONNECT opens a tunnel. Each request line is
    recorded with its Proxy-Authorization; without `auth` ("user:password") it is 407."""

    def __init__(self, routes, auth):
        self.routes = routes
        self.auth = "Basic " + base64.b64encode(auth.encode()).decode()
        self.seen = []
        super().__init__()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _one(self, c):
        c.settimeout(10)
        up = None
        try:
            up = self._open(c)
            if up:
                self._both_ways(c, up)
        except (OSError, ValueError):
            pass
        finally:
            c.close()
            if up:
                up.close()

    def _both_ways(self, c, up):
        back = threading.Thread(target=self._pipe, args=(up, c), daemon=True)
        back.start()
        self._pipe(c, up)
        back.join(10)

    def _open(self, c):
        """Reads the client's request; the connection to where it goes, or None (refused)."""
        head = b""
        while b"\r\n\r\n" not in head:
            piece = c.recv(4096)
            if not piece:
                return
            head += piece
        text, rest = head.split(b"\r\n\r\n", 1)
        lines = text.decode("latin-1").split("\r\n")
        fields = dict((k.strip().lower(), v.strip()) for k, v in
                      (line.split(":", 1) for line in lines[1:]))
        auth = fields.get("proxy-authorization")
        self.seen.append((lines[0], auth))
        if auth != self.auth:
            c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                      b"Proxy-Authenticate: Basic realm=\"test\"\r\n"
                      b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            return
        method, target, _ = lines[0].split(" ")
        if method == "CONNECT":
            where = target
        else:
            u = urllib.parse.urlsplit(target)
            where = "%s:%d" % (u.hostname, u.port or 80)
        if where not in self.routes:
            c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
                      b"Connection: close\r\n\r\n")
            return
        up = socket.create_connection(("127.0.0.1", self.routes[where]), timeout=10)
        if method == "CONNECT":
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            up.sendall(rest)
        else:
            up.sendall(head)
        return up


class _Socks5Proxy(_ForwardProxy):
    """A SOCKS5 proxy on 127.0.0.1 (RFC 1928) that takes only a user name and password (RFC
    1929): `routes` maps "name:port" to a port on 127.0.0.1, as _ForwardProxy's. Each CONNECT
    is recorded as (host, port), the host as the client gave it (a name or an address)."""

    def __init__(self, routes, auth):
        super().__init__(routes, auth)
        self.login = auth.encode()

    @staticmethod
    def _exactly(c, n):
        out = b""
        while len(out) < n:
            piece = c.recv(n - len(out))
            if not piece:
                raise OSError("closed")
            out += piece
        return out

    def _open(self, c):
        version, count = self._exactly(c, 2)
        methods = self._exactly(c, count)
        if version != 5 or 2 not in methods:
            c.sendall(b"\x05\xff")
            return
        c.sendall(b"\x05\x02")
        _, ulen = self._exactly(c, 2)
        user = self._exactly(c, ulen)
        password = self._exactly(c, self._exactly(c, 1)[0])
        if user + b":" + password != self.login:
            c.sendall(b"\x01\x01")
            return
        c.sendall(b"\x01\x00")
        _, cmd, _, atyp = self._exactly(c, 4)
        if atyp == 3:
            host = self._exactly(c, self._exactly(c, 1)[0]).decode()
        else:
            host = socket.inet_ntop(socket.AF_INET if atyp == 1 else socket.AF_INET6,
                                    self._exactly(c, 4 if atyp == 1 else 16))
        port = int.from_bytes(self._exactly(c, 2), "big")
        self.seen.append((host, port))
        where = "%s:%d" % (host, port)
        if cmd != 1 or where not in self.routes:
            c.sendall(b"\x05\x04\x00\x01\x00\x00\x00\x00\x00\x00")  # host unreachable
            return
        up = socket.create_connection(("127.0.0.1", self.routes[where]), timeout=10)
        c.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01" + up.getsockname()[1].to_bytes(2, "big"))
        return up


class Client(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="weft-client-test-")
        cls.stack = []
        try:
            ca = tls_util.PrivateCa(cls.tmp)
            cls.ca = ca
            good = ca.issue("good", ["localhost", "127.0.0.1"])
            expired = ca.issue("expired", ["localhost", "127.0.0.1"], expired=True)
            other = ca.issue("other", ["other.example"])
            service = ca.issue("service", ["service.test"])
            cls.nginx = tls_util.Nginx(cls.tmp, [("plain", None), ("good", good),
                                                 ("expired", expired), ("other", other),
                                                 ("service", service)])
            cls.nginx.__enter__()
            cls.stack.append(cls.nginx)
            cls.tls_close = _TlsCloseDelimited(good)

            class Server(http.server.ThreadingHTTPServer):
                daemon_threads = True
                request_queue_size = 128
            cls.py = Server(("127.0.0.1", 0), _Python)
            threading.Thread(target=cls.py.serve_forever, daemon=True).start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for s in reversed(cls.stack):
            s.__exit__(None, None, None)
        if getattr(cls, "tls_close", None):
            cls.tls_close.close()
        if getattr(cls, "py", None):
            cls.py.shutdown()
            cls.py.server_close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def weft(self, *extra):
        return Weft(["--hubs", "1", "--set", "client.ca_file=" + self.ca.cert] + list(extra))

    def url(self, name, path, https=False):
        return "%s://127.0.0.1:%d%s" % ("https" if https else "http", self.nginx.port(name), path)

    def py_url(self, path):
        return "http://127.0.0.1:%d%s" % (self.py.server_address[1], path)

    def fetch(self, w, url, route="/fetch", extra=""):
        status, _, body = get(w.http, "%s?url=%s%s" % (route, url, extra), timeout=30)
        return status, body.decode()

    def test_http_and_https_with_reuse(self):
        with self.weft() as w:
            w.wait_ready()
            before = self.nginx.accepts("plain")
            for _ in range(5):
                self.assertEqual(self.fetch(w, self.url("plain", "/hello.txt")),
                                 (200, "status=200 bytes=%d\n" % len(tls_util.Nginx.HELLO)))
            self.assertEqual(self.fetch(w, self.url("plain", "/big.bin")),
                             (200, "status=200 bytes=%d\n" % tls_util.Nginx.BIG_BYTES))
            # Six requests, one connection (and one more for this status request).
            self.assertEqual(self.nginx.accepts("plain") - before, 2)
            for _ in range(3):
                self.assertEqual(self.fetch(w, self.url("good", "/big.bin", https=True)),
                                 (200, "status=200 bytes=%d\n" % tls_util.Nginx.BIG_BYTES))
            self.assertEqual(self.fetch(w, self.url("plain", "/missing")),
                             (200, "status=404 bytes=%d\n" % self.nginx_404_bytes()))
            status, body = self.fetch(w, self.url("plain", "/hello.txt"), route="/fanout",
                                      extra="&n=10")
            self.assertEqual((status, body), (200, "n=10 ok=10 bytes=%d\n" %
                                              (10 * len(tls_util.Nginx.HELLO))))
            metrics = get(w.admin, "/metrics")[2].decode()
            https_ok = [float(m.group(1)) for m in re.finditer(
                r'(?m)^http_client_request_duration_seconds_count\{http_request_method="GET",'
                r'http_response_status_code="200",error_type="",server_address="127.0.0.1",'
                r'server_port="%d",url_scheme="https",hub="0"\} (\S+)$' %
                self.nginx.port("good"), metrics)]
            self.assertEqual(https_ok, [3.0])
            idle = re.search(r'(?m)^weft_http_client_connections\{hub="0",state="idle"\} (\S+)$',
                             metrics)
            self.assertTrue(idle and float(idle.group(1)) >= 2, metrics[-2000:])
            self.assertEqual(w.stop(), 0)

    def nginx_404_bytes(self):
        try:
            get_status = get("127.0.0.1:%d" % self.nginx.port("plain"), "/missing")
            return len(get_status[2])
        except OSError:
            return -1

    def test_tls_failures_say_why(self):
        with self.weft() as w:
            w.wait_ready()
            status, body = self.fetch(w, self.url("expired", "/hello.txt", https=True))
            self.assertEqual(status, 502)
            self.assertIn("tls: certificate has expired", body)
            # A certificate for other.example, asked for by name and by address.
            status, body = self.fetch(w, "https://localhost:%d/hello.txt" % self.nginx.port("other"))
            self.assertEqual(status, 502)
            self.assertIn("tls: hostname mismatch", body)
            status, body = self.fetch(w, self.url("other", "/hello.txt", https=True))
            self.assertEqual(status, 502)
            self.assertIn("tls: IP address mismatch", body)
            # Plain HTTP to a TLS port, and TLS to a plain port: clear errors, no hang.
            status, body = self.fetch(w, self.url("good", "/hello.txt"))
            self.assertEqual(status, 200)
            self.assertIn("status=400", body)  # nginx answers plain HTTP on a TLS port with 400
            status, body = self.fetch(w, self.url("plain", "/hello.txt", https=True))
            self.assertEqual(status, 502)
            self.assertIn("tls:", body)
            self.assertEqual(w.stop(), 0)
        # Without the private CA, the system's store does not know it.
        with Weft(["--hubs", "1"]) as w:
            w.wait_ready()
            status, body = self.fetch(w, self.url("good", "/hello.txt", https=True))
            self.assertEqual(status, 502)
            self.assertIn("tls: unable to get local issuer certificate", body)
            self.assertEqual(w.stop(), 0)
        # A CA file that does not exist is a configuration error at startup.
        r = u.run_weft(["--check-config", "--set", "client.ca_file=/nonexistent/ca.pem"])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("[client] ca_file: cannot be read", r.stderr)

    def test_through_a_forward_proxy(self):
        # service.test exists only in the proxy's table: http:// goes to the proxy in absolute
        # form, https:// through a CONNECT tunnel with TLS to nginx's certificate for
        # service.test inside; both with the credentials of HTTPS_PROXY / HTTP_PROXY. NO_PROXY
        # hosts and loopback addresses are reached directly.
        proxy = _ForwardProxy({"service.test:80": self.nginx.port("plain"),
                               "service.test:443": self.nginx.port("service")}, "weft:s3cret")
        try:
            url = "http://weft:s3cret@127.0.0.1:%d" % proxy.port
            env = {"HTTP_PROXY": url, "https_proxy": url, "NO_PROXY": "direct.invalid"}
            hello = (200, "status=200 bytes=%d\n" % len(tls_util.Nginx.HELLO))
            with Weft(["--hubs", "1", "--set", "client.ca_file=" + self.ca.cert], env=env) as w:
                w.wait_ready()
                for _ in range(2):
                    self.assertEqual(self.fetch(w, "http://service.test/hello.txt"), hello)
                    self.assertEqual(self.fetch(w, "https://service.test/hello.txt"), hello)
                status, body = self.fetch(w, "http://direct.invalid/")
                self.assertEqual(status, 502)
                self.assertIn("dns: cannot resolve 'direct.invalid'", body)
                self.assertEqual(self.fetch(w, self.url("plain", "/hello.txt")), hello)
                self.assertEqual(w.stop(), 0)
            auth = proxy.auth
            self.assertEqual(proxy.seen, [
                ("GET http://service.test/hello.txt HTTP/1.1", auth),
                ("CONNECT service.test:443 HTTP/1.1", auth)],
                "one connection each, reused (and no other request reached the proxy)")
            # Wrong credentials: the proxy's 407 is the answer to an http:// request, and a
            # refused tunnel is an error that says so.
            bad = "http://weft:wrong@127.0.0.1:%d" % proxy.port
            with Weft(["--hubs", "1"], env={"HTTP_PROXY": bad, "HTTPS_PROXY": bad}) as w:
                w.wait_ready()
                self.assertEqual(self.fetch(w, "http://service.test/hello.txt"),
                                 (200, "status=407 bytes=0\n"))
                status, body = self.fetch(w, "https://service.test/hello.txt")
                self.assertEqual(status, 502)
                self.assertIn("connect: proxy http://127.0.0.1:%d, CONNECT service.test:443: "
                              "refused by the proxy: 407 Proxy Authentication Required" %
                              proxy.port, body)
                self.assertEqual(w.stop(), 0)
        finally:
            proxy.close()
        # The settings as --print-config shows them: the password hidden, the variable named.
        r = u.run_weft(["--print-config"], env={"HTTPS_PROXY": "http://u:s3cret@p.example:3128",
                                                "no_proxy": ".corp,192.168.*"})
        self.assertEqual(r.returncode, 0, r.stderr)
        # An entry written for another tool is skipped with a warning, as Go and curl skip it.
        self.assertIn("[client] no_proxy (environment no_proxy): '192.168.*' is not a host "
                      "name, IP address or CIDR block and is ignored", r.stderr)
        self.assertNotIn("s3cret", r.stdout)
        self.assertRegex(r.stdout, r'(?m)^https_proxy = "http://\*\*\*@p\.example:3128" +'
                                   r'# environment HTTPS_PROXY; user information hidden')
        self.assertRegex(r.stdout, r'(?m)^no_proxy = "\.corp,192\.168\.\*" +# environment no_proxy$')
        r = u.run_weft(["--check-config"], env={"HTTPS_PROXY": "https://p.example:3128"})
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("[client] https_proxy: an https:// proxy", r.stderr)
        self.assertIn("(environment HTTPS_PROXY)", r.stderr)

    def test_through_a_socks5_proxy(self):
        # With socks5h:// the proxy resolves service.test (it exists only in its table) and
        # gets the login; http:// and https:// both go through a tunnel, https:// with TLS to
        # nginx's certificate for service.test inside. With socks5:// weft resolves the name
        # itself (here it cannot), as curl does.
        proxy = _Socks5Proxy({"service.test:80": self.nginx.port("plain"),
                              "service.test:443": self.nginx.port("service")}, "weft:s3cret")
        try:
            url = "socks5h://weft:s3cret@127.0.0.1:%d" % proxy.port
            hello = (200, "status=200 bytes=%d\n" % len(tls_util.Nginx.HELLO))
            with Weft(["--hubs", "1", "--set", "client.ca_file=" + self.ca.cert],
                      env={"HTTP_PROXY": url, "HTTPS_PROXY": url}) as w:
                w.wait_ready()
                for _ in range(2):
                    self.assertEqual(self.fetch(w, "http://service.test/hello.txt"), hello)
                    self.assertEqual(self.fetch(w, "https://service.test/hello.txt"), hello)
                status, body = self.fetch(w, "https://elsewhere.test/")
                self.assertEqual(status, 502)
                self.assertIn("connect: proxy socks5h://127.0.0.1:%d, CONNECT elsewhere.test:443: "
                              "refused by the proxy: host unreachable" % proxy.port, body)
                self.assertEqual(w.stop(), 0)
            self.assertEqual(proxy.seen, [("service.test", 80), ("service.test", 443),
                                          ("elsewhere.test", 443)],
                             "one tunnel each, reused")
            local = "socks5://weft:s3cret@127.0.0.1:%d" % proxy.port
            wrong = "socks5h://weft:wrong@127.0.0.1:%d" % proxy.port
            with Weft(["--hubs", "1"], env={"HTTP_PROXY": local, "HTTPS_PROXY": wrong}) as w:
                w.wait_ready()
                status, body = self.fetch(w, "http://service.test/hello.txt")
                self.assertEqual(status, 502)
                self.assertIn("dns: cannot resolve 'service.test'", body)
                status, body = self.fetch(w, "https://service.test/hello.txt")
                self.assertEqual(status, 502)
                self.assertIn("refused by the proxy: wrong user name or password", body)
                self.assertNotIn("wrong@", body)
                self.assertEqual(w.stop(), 0)
            self.assertEqual(len(proxy.seen), 3, "the proxy was asked for nothing more")
        finally:
            proxy.close()
        r = u.run_weft(["--print-config"], env={"HTTPS_PROXY": "socks5h://u:s3cret@p.example"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("s3cret", r.stdout)
        self.assertRegex(r.stdout, r'(?m)^https_proxy = "socks5h://\*\*\*@p\.example" +'
                                   r'# environment HTTPS_PROXY; user information hidden')

    def test_the_requests_deadline_bounds_outbound_calls(self):
        # Each inbound request has 400 ms; the upstream stalls for 3 s. The fetch, and the five
        # fibers of a fan-out, give up with the request: 504, in time.
        with self.weft("--set", "server.request_timeout=400ms") as w:
            w.wait_ready()
            for route, extra in (("/fetch", ""), ("/fanout", "&n=5")):
                t0 = time.monotonic()
                status, body = self.fetch(w, self.py_url("/stall"), route=route, extra=extra)
                took = time.monotonic() - t0
                self.assertEqual(status, 504, body)
                self.assertLess(took, 1.5, route)
                self.assertGreaterEqual(took, 0.35, route)
            metrics = get(w.admin, "/metrics")[2].decode()
            timed_out = sum(float(v) for v in re.findall(
                r'(?m)^weft_http_requests_timed_out_total\{hub="\d+"\} (\S+)$', metrics))
            self.assertEqual(timed_out, 2.0)
            self.assertEqual(w.stop(), 0)

    def test_a_client_that_hangs_up_during_a_fan_out(self):
        # The handler's fibers write into its frame. When the client hangs up, the handler is
        # cancelled and so are they; the handler's frame goes only once each has ended (it
        # went at once, and a fiber that ran on wrote into freed memory: SIGSEGV). The server
        # answers on, and a drain cut short by a fan-out in flight exits as documented (3).
        with self.weft("--set", "server.drain_timeout=300ms") as w:
            w.wait_ready()
            host, port = split_addr(w.http)
            for _ in range(3):
                c = socket.create_connection((host, port), timeout=5)
                c.sendall(b"GET /fanout?url=%s&n=8 HTTP/1.1\r\nHost: t\r\n\r\n" %
                          self.py_url("/stall").encode())
                time.sleep(0.2)
                c.close()
            u.poll(lambda: metric_sum(get(w.admin, "/metrics")[2].decode(),
                                      "weft_http_requests_abandoned_total") >= 3, 5,
                   what="three abandoned fan-outs")
            self.assertEqual(get(w.http, "/")[0], 200)
            c = socket.create_connection((host, port), timeout=5)
            c.sendall(b"GET /fanout?url=%s&n=8 HTTP/1.1\r\nHost: t\r\n\r\n" %
                      self.py_url("/stall").encode())
            u.poll(lambda: metric_sum(get(w.admin, "/metrics")[2].decode(),
                                      "http_server_active_requests") >= 1, 5,
                   what="the fan-out in flight")
            self.assertEqual(w.stop(), 3, w.stderr()[-2000:])
            c.close()
            # A cancelled handler's end is no error of its own.
            self.assertEqual([line for line in w.stderr().splitlines()
                              if "[error]" in line and "/fanout" in line], [])

    def test_chunked_close_delimited_and_stalled_bodies(self):
        with self.weft("--set", "client.read_timeout=300ms") as w:
            w.wait_ready()
            self.assertEqual(self.fetch(w, self.py_url("/chunked")),
                             (200, "status=200 bytes=1500\n"))
            self.assertEqual(self.fetch(w, self.py_url("/close")), (200, "status=200 bytes=777\n"))
            t0 = time.monotonic()
            status, body = self.fetch(w, self.py_url("/stall"))
            self.assertEqual(status, 504, body)
            self.assertIn("timed_out", body)
            self.assertLess(time.monotonic() - t0, 2.5)
            # Nothing listens there; a name that does not resolve.
            status, body = self.fetch(w, "http://127.0.0.1:%d/" % real_servers.free_port())
            self.assertEqual(status, 502)
            self.assertIn("connect:", body)
            status, body = self.fetch(w, "http://no-such-host.invalid/")
            self.assertEqual(status, 502)
            self.assertIn("dns:", body)
            self.assertEqual(w.stop(), 0)

    def test_a_close_delimited_body_over_tls_needs_close_notify(self):
        # RFC 9112, 9.8: without a close_notify the end of such a body cannot be trusted.
        with self.weft() as w:
            w.wait_ready()
            base = "https://127.0.0.1:%d" % self.tls_close.port
            self.assertEqual(self.fetch(w, base + "/notify"),
                             (200, "status=200 bytes=%d\n" % len(_TlsCloseDelimited.BODY)))
            status, body = self.fetch(w, base + "/bare")
            self.assertEqual(status, 502, body)
            self.assertIn("without close_notify", body)
            # Counted with the status its head gave, and the error.
            metrics = get(w.admin, "/metrics")[2].decode()
            failed = re.findall(
                r'(?m)^http_client_request_duration_seconds_count\{http_request_method="GET",'
                r'http_response_status_code="200",error_type="closed",server_address="127.0.0.1",'
                r'server_port="%d",url_scheme="https",hub="0"\} (\S+)$' % self.tls_close.port,
                metrics)
            self.assertEqual(failed, ["1"], metrics[-3000:])
            self.assertEqual(w.stop(), 0)


class ClientConnectionSeries(unittest.TestCase):
    def test_every_serving_hub_has_its_series_from_the_start(self):
        # They were reported only for as many hubs as the admin runtime has (one) unless
        # nonzero: hub 1's series came and went with its pooled connections.
        with Weft(["--hubs", "3"]) as w:
            w.wait_ready()
            text = get(w.admin, "/metrics")[2].decode()
            for hub in ("0", "1", "2"):
                for state in ("idle", "active"):
                    self.assertRegex(text, r'(?m)^weft_http_client_connections\{hub="%s",'
                                     r'state="%s"\} 0$' % (hub, state))
            self.assertNotIn('weft_http_client_connections{hub="3"', text)
            self.assertEqual(w.stop(), 0)


class DemoRoutes(unittest.TestCase):
    """The demo plugin's routes that let any caller hold a hub or make the server fetch a URL
    of its choosing can be left out (the container's configuration does), and a url that is
    no http(s) URL is the caller's mistake: 400, not 502."""

    HAZARDOUS = ["/block?ms=1", "/spin?ms=1", "/std_sleep?ms=1", "/offload?ms=1",
                 "/fetch?url=http://127.0.0.1:1/", "/fanout?url=http://127.0.0.1:1/&n=1"]

    def test_hazardous_routes_can_be_left_out(self):
        with tempfile.TemporaryDirectory(prefix="weft-demo-test-") as tmp:
            cfg = u.write(os.path.join(tmp, "demo.toml"), '[[plugin]]\npath = "demo"\n'
                          '[plugin.config]\nhazardous_routes = false\n')
            with Weft(["--hubs", "1", "--config", cfg]) as w:
                w.wait_ready()
                for path in self.HAZARDOUS:
                    self.assertEqual(get(w.http, path)[0], 404, path)
                self.assertEqual(get(w.http, "/")[0], 200)
                self.assertEqual(get(w.http, "/sleep?ms=1")[0], 200)
                self.assertEqual(w.stop(), 0)
                self.assertNotIn("hazardous_routes = false where", w.stderr())
            # Listed by its file, named by its name in the message.
            bad = u.write(os.path.join(tmp, "bad.toml"), '[[plugin]]\npath = "%s"\n'
                          '[plugin.config]\nhazardous_routes = "maybe"\n' % u.plugin_path("demo"))
            r = u.run_weft(["--config", bad, "--check-config"])
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("init failed: plugin 'demo' config key 'hazardous_routes': expected a "
                          "boolean", r.stderr)
            typo = u.write(os.path.join(tmp, "typo.toml"), '[[plugin]]\npath = "demo"\n'
                           '[plugin.config]\nhazardous_route = false\n')
            r = u.run_weft(["--config", typo, "--check-config"])
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("did you mean", r.stderr)
        # By default they are served, and the log says what they allow.
        with Weft(["--hubs", "1"]) as w:
            w.wait_ready()
            self.assertEqual(get(w.http, "/block?ms=1")[0], 200)
            for path in ("/fetch?url=ftp://x/", "/fetch?url=", "/fanout?url=&n=2"):
                status, _, body = get(w.http, path)
                self.assertEqual(status, 400, path)
                self.assertTrue(body.startswith(b"bad_url: "), body)
            # The caller's url in it is shown escaped.
            status, _, body = get(w.http, "/fetch?url=%1b%5B2J")
            self.assertEqual(status, 400)
            self.assertTrue(body.endswith(b"URL: \\x1B[2J\n"), body)
            self.assertEqual(get(w.http, "/fetch?url=http://127.0.0.1:1/")[0], 502)
            # What the caller sent is shown escaped, never as raw control bytes.
            status, _, body = get(w.http, "/sleep?ms=5%00%1b")
            self.assertEqual((status, body), (400, b"ms must be a whole number of milliseconds "
                                                   b"from 0 to 30000, got '5\\x00\\x1B'\n"))
            self.assertEqual(w.stop(), 0)
            self.assertIn("hazardous_routes = false where others can reach it", w.stderr())


if __name__ == "__main__":
    u.main()

"""HTTPS on the real `weft` binary, with certificates from a private CA made by the `openssl`
command: curl and Python's ssl as clients; expired and wrong-host certificates refused by the
clients with their reasons; SIGHUP reloading the certificate under load with no failed request;
a bad file at reload kept out; the admin listener on its own certificate; configuration
mistakes refused at startup; handshake failures counted in /metrics and never logged per
connection above debug."""

import http.client
import os
import pty
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import server_test_util as u
import tls_util
from server_test_util import Weft, get


def https_get(addr, path, ca, timeout=10):
    h, port = u.split_addr(addr)
    ctx = ssl.create_default_context(cafile=ca)
    c = http.client.HTTPSConnection(h, port, timeout=timeout, context=ctx)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read(), c.sock.getpeercert()
    finally:
        c.close()


def curl(args):
    return subprocess.run(["curl", "--noproxy", "*", "-sS", "--max-time", "10"] + args,
                          capture_output=True, text=True, timeout=30)


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="weft-tls-test-")
        cls.ca = tls_util.PrivateCa(cls.tmp)
        cls.good = cls.ca.issue("good", ["localhost", "127.0.0.1"])
        cls.renewed = cls.ca.issue("renewed", ["localhost", "127.0.0.1"])
        cls.expired = cls.ca.issue("expired", ["localhost", "127.0.0.1"], expired=True)
        cls.other = cls.ca.issue("other", ["other.example"])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def serving(self, cert, name="serving", extra=()):
        """A copy of `cert` that the server is pointed at (tests replace it)."""
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        pem, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        shutil.copy(cert.cert, pem)
        shutil.copy(cert.key, key)
        w = Weft(["--hubs", "2", "--set", "server.tls_cert=" + pem,
                  "--set", "server.tls_key=" + key] + list(extra))
        return w, pem, key

    def test_curl_and_python_over_https(self):
        w, _, _ = self.serving(self.good)
        with w:
            w.wait_ready()
            self.assertTrue(w.https)
            self.assertRegex(w.stderr(), r"HTTPS with CN=localhost, valid until ")
            r = curl(["--cacert", self.ca.cert, "-w", "%{http_code} %{http_version}\n",
                      "https://%s/" % w.http])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.endswith("200 1.1\n"), r.stdout)
            r = curl(["--cacert", self.ca.cert, "--resolve", "localhost:%s:127.0.0.1" %
                      w.http.rsplit(":", 1)[1], "https://localhost:%s/" % w.http.rsplit(":", 1)[1]])
            self.assertEqual((r.returncode, r.stdout), (0, "Hello, World!"), r.stderr)
            status, body, cert = https_get(w.http, "/sleep?ms=1", self.ca.cert)
            self.assertEqual(status, 200)
            self.assertIn((("commonName", "localhost"),), cert["subject"])
            # Its expiry, for an alert before it comes.
            m = re.search(r'(?m)^weft_tls_certificate_expiration_timestamp_seconds'
                          r'\{listener="server"\} (\S+)$',
                          get(w.admin, "/metrics")[2].decode())
            self.assertIsNotNone(m)
            self.assertEqual(float(m.group(1)), ssl.cert_time_to_seconds(cert["notAfter"]))

    def test_clients_refuse_expired_and_wrong_host_certificates(self):
        for cert, curl_says, py_says in (
                (self.expired, "certificate has expired", "certificate has expired"),
                (self.other, "no alternative certificate subject name matches", "IP address mismatch")):
            w, _, _ = self.serving(cert, name=os.path.basename(cert.cert))
            with w:
                w.wait_ready()
                r = curl(["--cacert", self.ca.cert, "https://%s/" % w.http])
                self.assertEqual(r.returncode, 60, r.stderr)
                self.assertIn(curl_says, r.stderr)
                with self.assertRaises(ssl.SSLCertVerificationError) as e:
                    https_get(w.http, "/", self.ca.cert)
                self.assertIn(py_says, str(e.exception))
                # The client's refusal is a handshake failure on our side: counted, and not a
                # warning in the log.
                u.poll(lambda: re.search(
                    r'weft_tls_handshake_failures_total\{listener="server",reason="protocol"\} '
                    r'[1-9]',
                    get(w.admin, "/metrics")[2].decode()), 5, what="the failure counted")
                self.assertNotRegex(w.stderr(), r"\[(warning|error)\].*(TLS|handshake)")

    def test_plain_http_to_the_tls_port(self):
        log = os.path.join(self.tmp, "plain-http-access.log")
        w, _, _ = self.serving(self.good, extra=["--set", "log.access_log=" + log])
        with w:
            w.wait_ready()
            status, _, body = get(w.http, "/plain?x=1")
            self.assertEqual(status, 400)
            self.assertIn(b"plain HTTP request was sent to an HTTPS port", body)
            text = get(w.admin, "/metrics")[2].decode()
            self.assertIn(
                'weft_tls_handshake_failures_total{listener="server",reason="plain_http"} 1', text)
            self.assertEqual(w.stop(), 0)
        # Logged as nginx logs it: the request line as it came, 400, the answer's body size.
        with open(log) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r'^127\.0\.0\.1 - - \[[^]]+\] '
                         r'"GET /plain\?x=1 HTTP/1\.1" 400 49 "-" "-" [\d.]+ route="" hub=\d$')

    def test_a_connection_closed_between_requests_ends_with_close_notify(self):
        # The idle timeout, the drain and room made at max_connections closed TLS connections
        # without close_notify: clients that insist on it (OpenSSL 3, Python's ssl with
        # suppress_ragged_eofs=False) saw an unexpected end, as if an attacker had cut it.
        ctx = ssl.create_default_context(cafile=self.ca.cert)

        def served(w):
            h, port = u.split_addr(w.http)
            raw = socket.create_connection((h, port), timeout=10)
            t = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
            t.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            u.read_hello(t)
            return t

        def end_of(t):
            try:
                data = t.recv(4096)
            except ssl.SSLEOFError as e:
                return "no close_notify: %s" % e
            return "close_notify" if data == b"" else "more bytes: %r" % data

        w, _, _ = self.serving(self.good, extra=["--set", "server.idle_timeout=1s",
                                                 "--set", "server.max_connections=2",
                                                 "--set", "runtime.hubs=1"])
        with w:
            w.wait_ready()
            # The idle timeout.
            t = served(w)
            self.assertEqual(end_of(t), "close_notify")
            t.close()
            # Room made at max_connections: the idle one goes for a newcomer.
            first, second = served(w), served(w)
            t0 = time.monotonic()
            third = served(w)
            self.assertEqual(end_of(first), "close_notify")
            self.assertLess(time.monotonic() - t0, 0.8)  # before its idle timeout
            for t in (first, second, third):
                t.close()
            # The drain.
            t = served(w)
            w.signal(signal.SIGTERM)
            self.assertEqual(end_of(t), "close_notify")
            t.close()
            self.assertEqual(w.wait(15), 0)

    def test_sighup_reloads_under_load_without_failures(self):
        w, pem, key = self.serving(self.good)
        with w:
            w.wait_ready()
            stop = threading.Event()
            failures, served, subjects = [], [0], set()
            lock = threading.Lock()

            def client(keep_alive):
                ctx = ssl.create_default_context(cafile=self.ca.cert)
                h, port = u.split_addr(w.http)
                conn = None
                while not stop.is_set():
                    try:
                        if conn is None:
                            conn = http.client.HTTPSConnection(h, port, timeout=10, context=ctx)
                        conn.request("GET", "/")
                        r = conn.getresponse()
                        body = r.read()
                        if r.status != 200 or body != b"Hello, World!":
                            raise AssertionError("status %d" % r.status)
                        with lock:
                            served[0] += 1
                            subjects.add(conn.sock.getpeercert()["serialNumber"])
                        if not keep_alive:
                            conn.close()
                            conn = None
                    except Exception as e:  # noqa: BLE001 - every failure counts
                        with lock:
                            failures.append(repr(e))
                        conn = None
                if conn:
                    conn.close()
            threads = [threading.Thread(target=client, args=(i % 2 == 0,)) for i in range(6)]
            for t in threads:
                t.start()
            try:
                for i in range(6):
                    time.sleep(0.25)
                    src = self.renewed if i % 2 == 0 else self.good
                    shutil.copy(src.cert, pem + ".new")
                    shutil.copy(src.key, key + ".new")
                    os.replace(pem + ".new", pem)
                    os.replace(key + ".new", key)
                    mark = len(w.stderr())
                    w.signal(signal.SIGHUP)
                    w.wait_for_log(r"SIGHUP: \[server\] reloaded the TLS certificate", after=mark)
                time.sleep(0.25)
            finally:
                stop.set()
                for t in threads:
                    t.join(30)
            self.assertEqual(failures, [])
            self.assertGreater(served[0], 50)
            self.assertEqual(len(subjects), 2, "both certificates were served")

            # A broken file: logged with the reason, and the certificate in use stays.
            with open(pem, "w") as f:
                f.write("garbage\n")
            mark = len(w.stderr())
            w.signal(signal.SIGHUP)
            m = w.wait_for_log(r"SIGHUP: \[server\] cannot reload .*keeping the ones in use: "
                               r"(.*)", after=mark)
            self.assertIn(pem, m.group(1))
            self.assertEqual(https_get(w.http, "/", self.ca.cert)[0], 200)

    def test_an_expired_certificate_is_warned_about_and_does_not_replace_a_valid_one(self):
        # It was accepted with an info line: at start, under --check-config, and on SIGHUP,
        # where it replaced the valid certificate in use.
        expired_warning = r"\[warning\] \[server\] tls_cert: the certificate in '%s' expired " \
                          r"on Feb  1 00:00:00 2020 GMT"
        r = u.run_weft(["--check-config", "--set", "server.tls_cert=" + self.expired.cert,
                        "--set", "server.tls_key=" + self.expired.key])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, expired_warning % re.escape(self.expired.cert))
        w, pem, key = self.serving(self.expired, name="expired-start")
        with w:
            w.wait_ready()
            self.assertRegex(w.stderr(), expired_warning % re.escape(pem))
        w, pem, key = self.serving(self.good, name="expired-reload")
        with w:
            w.wait_ready()
            self.assertNotRegex(w.stderr(), r"tls_cert: ")
            shutil.copy(self.expired.cert, pem)
            shutil.copy(self.expired.key, key)
            mark = len(w.stderr())
            w.signal(signal.SIGHUP)
            m = w.wait_for_log(r"SIGHUP: \[server\] cannot reload .*keeping the ones in use: "
                               r"(.*)", after=mark)
            self.assertIn("expired on Feb  1 00:00:00 2020 GMT", m.group(1))
            # The valid certificate still serves: a checking client connects.
            self.assertEqual(https_get(w.http, "/", self.ca.cert)[0], 200)
            # A valid one again is taken.
            shutil.copy(self.renewed.cert, pem)
            shutil.copy(self.renewed.key, key)
            mark = len(w.stderr())
            w.signal(signal.SIGHUP)
            w.wait_for_log(r"SIGHUP: \[server\] reloaded the TLS certificate", after=mark)

    def test_admin_listener_on_its_own_certificate(self):
        w = Weft(["--hubs", "1", "--set", "admin.tls_cert=" + self.renewed.cert,
                  "--set", "admin.tls_key=" + self.renewed.key])
        with w:
            m = w.wait_for_log(r"admin https://(\S+);")
            admin = m.group(1)
            status, body, cert = https_get(admin, "/healthz", self.ca.cert)
            self.assertEqual(status, 200)
            status, body, _ = https_get(admin, "/metrics", self.ca.cert)
            # The admin listener's handshakes count too (two so far), and its certificate's
            # expiry is there; the data port speaks no TLS and has no expiry.
            text = body.decode()
            self.assertIn('weft_tls_handshakes_total{listener="admin"} 2', text)
            self.assertIn('weft_tls_handshakes_total{listener="server"} 0', text)
            self.assertRegex(text, r'weft_tls_certificate_expiration_timestamp_seconds'
                                   r'\{listener="admin"\} \d')
            self.assertNotIn('timestamp_seconds{listener="server"}', text)

    def test_configuration_mistakes_are_refused(self):
        r = u.run_weft(["--check-config", "--set", "server.tls_cert=" + self.good.cert])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("[server] tls_key: must be set together with [server] tls_cert "
                      "(flag --set server.tls_cert), or both left empty", r.stderr)
        missing = os.path.join(self.tmp, "nope.pem")
        r = u.run_weft(["--check-config", "--set", "server.tls_cert=" + missing,
                        "--set", "server.tls_key=" + self.good.key])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertRegex(r.stderr, r"\[server\] tls_cert: cannot be read: No such file")
        # Readable but not a certificate / a key of another certificate: refused at start.
        bad = os.path.join(self.tmp, "bad.pem")
        with open(bad, "w") as f:
            f.write("not pem\n")
        for cert, key, says in ((bad, self.good.key, "cannot load the certificate chain from "
                                 "'%s': not a PEM file (no '-----BEGIN CERTIFICATE-----' line" % bad),
                                (self.good.cert, self.other.key, "does not match")):
            # Bad configuration: exit status 2, at the start as in the configuration test.
            w = Weft(["--set", "server.tls_cert=" + cert, "--set", "server.tls_key=" + key])
            with w:
                self.assertEqual(w.wait(20), 2)
                self.assertIn(says, w.stderr())
                self.assertIn("cannot serve HTTPS with [server] tls_cert", w.stderr())
            # The configuration test loads them too, and fails as the start would.
            r = u.run_weft(["--check-config", "--set", "server.tls_cert=" + cert,
                            "--set", "server.tls_key=" + key])
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(says, r.stderr)
            self.assertIn("cannot serve HTTPS with [server] tls_cert (flag --set "
                          "server.tls_cert)", r.stderr)
            self.assertIn("configuration test failed", r.stderr)
        r = u.run_weft(["--check-config", "--set", "admin.tls_cert=" + bad,
                        "--set", "admin.tls_key=" + self.good.key])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("cannot serve admin HTTPS with [admin] tls_cert", r.stderr)
        w = Weft(["--set", "admin.tls_cert=" + bad, "--set", "admin.tls_key=" + self.good.key])
        with w:
            self.assertEqual(w.wait(20), 2)
            self.assertIn("cannot serve admin HTTPS with [admin] tls_cert", w.stderr())

    def test_an_encrypted_key_is_refused_without_a_prompt(self):
        # OpenSSL prompts for a passphrase on the terminal when nobody answers for it: a start
        # from a shell waited there for ever. weft asks for none and says why.
        encrypted = os.path.join(self.tmp, "encrypted.key")
        subprocess.run(["openssl", "pkey", "-in", self.good.key, "-aes256", "-passout",
                        "pass:secret", "-out", encrypted], check=True, capture_output=True)
        args = ["--check-config", "--set", "server.tls_cert=" + self.good.cert,
                "--set", "server.tls_key=" + encrypted]
        status, out = run_on_a_terminal(args)
        self.assertEqual(status, 2, out)
        self.assertNotIn("pass phrase", out)
        self.assertIn("cannot load the private key from '%s': the key is encrypted; give an "
                      "unencrypted PEM key" % encrypted, out)
        # A certificate given as the key says so.
        r = u.run_weft(["--check-config", "--set", "server.tls_cert=" + self.good.cert,
                        "--set", "server.tls_key=" + self.good.cert])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("'%s': it holds a certificate, not a private key" % self.good.cert,
                      r.stderr)
        # Swapped: it was "not a PEM file (no '-----BEGIN ...-----' line)".
        r = u.run_weft(["--check-config", "--set", "server.tls_cert=" + self.good.key,
                        "--set", "server.tls_key=" + self.good.cert])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("cannot load the certificate chain from '%s': it holds a private key, not "
                      "a certificate (are tls_cert and tls_key swapped?)" % self.good.key,
                      r.stderr)


def run_on_a_terminal(args, timeout=20):
    """Runs weft with a pseudo-terminal as its controlling terminal and stdio; returns its exit
    status and all it wrote. Fails the test if it does not end within `timeout`."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: weft, on the terminal
        try:
            os.execve(u.ARGS.weft, [u.ARGS.weft] + list(args), u.clean_env())
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + timeout
    status = None
    while status is None:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(fd)
            raise AssertionError("weft did not end on a terminal: %r" % out)
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                out += os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                pass
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(st)
    try:
        while select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    os.close(fd)
    return status, out.decode(errors="replace")


if __name__ == "__main__":
    u.main()

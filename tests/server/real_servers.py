"""Real servers for tests and benchmarks, each started in a temporary directory on 127.0.0.1 and
stopped (by the PID we started) when its context ends: PostgreSQL (initdb into the directory),
Redis, and a slow HTTP upstream that answers after ?ms=N milliseconds. Standard library only.

    with Postgres() as pg, Redis() as r, SlowUpstream() as up:
        pg.conninfo      # "host=127.0.0.1 port=... dbname=postgres user=postgres sslmode=disable"
        r.port
        up.url("/?ms=200")
"""

import glob
import http.server
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse


def free_port():
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=30.0):
    """Waits until 127.0.0.1:port accepts a connection; fails early if `proc` exits."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError("%s exited (%s) before listening" % (what, proc.returncode))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("%s did not listen on port %d within %.0f s" %
                               (what, port, timeout))
        time.sleep(0.02)


def stop(proc, sig=signal.SIGTERM, timeout=20.0):
    """Stops a process we started: `sig`, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class Postgres:
    """A throwaway PostgreSQL cluster: trust authentication, 127.0.0.1 only, no fsync. As root,
    the cluster runs as the `postgres` user (initdb refuses root)."""

    def __init__(self, max_connections=300):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
        if not bins:
            raise RuntimeError("PostgreSQL is not installed (Debian package postgresql)")
        self.bindir = os.path.dirname(bins[-1])
        self.max_connections = max_connections
        self.port = None
        self.proc = None
        self._tmp = None

    def _owner(self):
        """Popen's arguments that run a program as the cluster's owner: the process itself, not
        a `runuser` in front of it, which would not pass SIGINT (the fast shutdown) on."""
        if os.getuid() == 0:
            return {"user": "postgres", "group": "postgres", "extra_groups": []}
        return {}

    def __enter__(self):
        self._tmp = tempfile.mkdtemp(prefix="weft-postgres-")
        data = self.data = os.path.join(self._tmp, "data")
        os.mkdir(data, 0o700)
        if os.getuid() == 0:
            os.chmod(self._tmp, 0o755)
            pw = pwd.getpwnam("postgres")
            os.chown(data, pw.pw_uid, pw.pw_gid)
        self.log = os.path.join(self._tmp, "postgres.log")
        subprocess.run([os.path.join(self.bindir, "initdb"), "-D", data, "-U", "postgres",
                        "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"],
                       check=True, capture_output=True, timeout=120, **self._owner())
        self.port = free_port()
        log = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [os.path.join(self.bindir, "postgres"), "-D", data, "-p", str(self.port),
             "-k", data, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=%d" % self.max_connections],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            **self._owner())
        log.close()
        try:
            wait_port(self.port, self.proc, "postgres")
            # Listening is not accepting queries yet: ask until it says so.
            deadline = time.monotonic() + 30
            while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                                 timeout=10).returncode != 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("postgres never became ready")
                time.sleep(0.05)
        except BaseException:
            self.__exit__()
            raise
        return self

    @property
    def conninfo(self):
        return ("host=127.0.0.1 port=%d dbname=postgres user=postgres sslmode=disable" %
                self.port)

    def backend_cpu_seconds(self):
        """User+system CPU seconds of the postmaster and its backends (for benchmarks)."""
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        # The postmaster (our child), as its pid file names it.
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        for pid in [postmaster] + children(postmaster):
            try:
                with open("/proc/%d/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12]) + int(fields[13]) +
                          int(fields[14])) / tick
            except (OSError, IndexError):
                pass
        return total

    def __exit__(self, *exc):
        if self.proc is not None:
            stop(self.proc, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
        return False


def children(pid):
    """Direct children of `pid` (the PostgreSQL backends of a postmaster)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry))
        except (OSError, IndexError, ValueError):
            pass
    return out


class Redis:
    """A throwaway redis-server: no persistence, 127.0.0.1 only."""

    def __init__(self):
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server)")
        self.port = None
        self.proc = None
        self._tmp = None

    def __enter__(self):
        self._tmp = tempfile.mkdtemp(prefix="weft-redis-")
        self.port = free_port()
        log = open(os.path.join(self._tmp, "redis.log"), "wb")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self._tmp, "--daemonize", "no"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        try:
            wait_port(self.port, self.proc, "redis-server")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            stop(self.proc)
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
        return False


class SlowUpstream:
    """An HTTP/1.1 server on a thread per connection: GET /?ms=N answers 200 after N ms with a
    small body."""

    BODY = b"upstream says hello\n"

    class _Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            time.sleep(int(q.get("ms", ["0"])[0]) / 1000.0)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(SlowUpstream.BODY)))
            self.end_headers()
            self.wfile.write(SlowUpstream.BODY)

        def log_message(self, *args):
            pass

    class _Server(http.server.ThreadingHTTPServer):
        request_queue_size = 1024  # the listen backlog: a burst of connects must not wait
        daemon_threads = True

    def __enter__(self):
        self.server = self._Server(("127.0.0.1", 0), self._Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        return False

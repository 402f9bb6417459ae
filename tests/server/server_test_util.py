"""Helpers for the server tests: start the real `weft` binary on port 0 in its own process
group, learn its addresses from the "ready" log line, talk HTTP to it, and always end it by its
PID (and process group) when a test is done. Python standard library only.

Every test script takes the same command line, given by tests/server/CMakeLists.txt:
    --weft PATH --source-dir DIR --build-dir DIR [--plugin NAME=PATH]... [unittest args]
"""

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

ARGS = None  # filled in by main()

READY_RE = re.compile(
    r"ready in (?P<ms>\d+) ms: serving (?P<scheme>https?)://(?P<http>\S+) on (?P<hubs>\d+) "
    r"hubs? \((?P<backend>[^)]+)\), admin (?:(?P<admin_scheme>https?)://(?P<admin>\S+)|off);")


def main():
    """Parses our arguments, leaves the rest to unittest."""
    global ARGS
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--weft", required=True)
    p.add_argument("--source-dir", required=True)
    p.add_argument("--build-dir", required=True)
    p.add_argument("--plugin", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--cmake", default="cmake")
    p.add_argument("--cxx", default="")
    p.add_argument("--generator", default="")
    ARGS, rest = p.parse_known_args()
    ARGS.plugins = dict(item.split("=", 1) for item in ARGS.plugin)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


def io_uring_available():
    """Whether this process may create an io_uring (a container's default seccomp profile, as
    in a plain `podman build`, hides it)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params
    fd = libc.syscall(425, 1, params)  # io_uring_setup
    if fd < 0:
        return False
    os.close(fd)
    return True


def backends():
    """The I/O backends a test can run weft on here: both, or epoll alone (said once) where
    io_uring is hidden."""
    global _BACKENDS
    if _BACKENDS is None:
        _BACKENDS = ("io_uring", "epoll") if io_uring_available() else ("epoll",)
        if len(_BACKENDS) == 1:
            print("io_uring is not available here (a seccomp filter?): the io_uring variants "
                  "skip", file=sys.stderr)
    return _BACKENDS


_BACKENDS = None


def plugin_path(name):
    return ARGS.plugins[name]


PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY",
                   "no_proxy")


def clean_env(extra=None):
    """This process's environment without WEFT_* (an unknown WEFT_* variable is a startup
    error, and CTest or a developer's shell may have some) and without the machine's proxy
    variables (weft's client takes them), plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("WEFT_") and k not in PROXY_VARIABLES}
    env.update(extra or {})
    return env


def run_weft(args, env=None, timeout=20, cwd=None, preexec_fn=None):
    """Runs weft to completion (for --help, --print-config, refusals...). Returns the
    CompletedProcess with text stdout and stderr."""
    return subprocess.run([ARGS.weft] + list(args), env=clean_env(env), cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=preexec_fn)


class Weft:
    """A running weft server, in its own process group, logging to files in `workdir`.

    Use as a context manager: on exit the process group is killed if the test did not stop
    the server itself."""

    def __init__(self, args=(), env=None, workdir=None, exe=None, listen=True, cwd=None,
                 preexec_fn=None):
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="weft-server-test-")
            workdir = self._tmp.name
        self.workdir = workdir
        self.stderr_path = os.path.join(workdir, "weft.stderr")
        self.stdout_path = os.path.join(workdir, "weft.stdout")
        argv = [exe or ARGS.weft]
        if listen:
            argv += ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"]
        argv += list(args)
        self.argv = argv
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, env=clean_env(env), cwd=cwd or workdir,
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, start_new_session=True,
                                     preexec_fn=preexec_fn)
        self.pid = self.proc.pid
        self.http = None  # "127.0.0.1:PORT"
        self.admin = None
        self.hubs = None
        self.ready_ms = None  # the server's own figure, from main() to ready
        self.ready_seconds = None  # ours, from spawn to /readyz answering 200

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        if self._tmp is not None:
            self._tmp.cleanup()
        return False

    # -- output --------------------------------------------------------------------------
    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_for_log(self, pattern, timeout=10.0, after=0):
        """Waits until stderr (from character `after` on) matches `pattern`; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.stderr(), after)
            if m:
                return m
            if self.proc.poll() is not None:
                m = rx.search(self.stderr(), after)
                if m:
                    return m
                raise AssertionError("weft exited (%s) before logging %r; stderr:\n%s" %
                                     (self.proc.returncode, pattern, self.stderr()))
            if time.monotonic() > deadline:
                raise AssertionError("no log line matching %r within %.1f s; stderr:\n%s" %
                                     (pattern, timeout, self.stderr()))
            time.sleep(0.002)

    # -- lifecycle -----------------------------------------------------------------------
    def wait_ready(self, timeout=15.0):
        """Waits for the ready log line, then for /readyz to answer 200."""
        m = self.wait_for_log(READY_RE.pattern, timeout)
        self.ready_ms = int(m.group("ms"))
        self.http = m.group("http")
        self.admin = m.group("admin")
        self.hubs = int(m.group("hubs"))
        self.https = m.group("scheme") == "https"
        if self.admin and m.group("admin_scheme") == "http":
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if get(self.admin, "/readyz", timeout=2)[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError("/readyz never answered 200; stderr:\n" + self.stderr())
                time.sleep(0.002)
        self.ready_seconds = time.monotonic() - self.started
        return self

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        """Waits for the exit; returns the exit code. Fails (after killing) on a timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("weft did not exit within %.1f s; stderr:\n%s" %
                                 (timeout, self.stderr()))

    def stop(self, timeout=15.0):
        """SIGTERM, then waits; returns the exit code."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        """SIGKILL to the process group this server leads (it is its own group), then reaps."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        for f in (self._err, self._out):
            if not f.closed:
                f.close()

    def url(self, path):
        return "http://%s%s" % (self.http, path)


# -- HTTP ------------------------------------------------------------------------------------
def split_addr(addr):
    host, port = addr.rsplit(":", 1)
    return host.strip("[]"), int(port)


def get(addr, path, timeout=10.0, method="GET", body=None, headers=None):
    """One request on a fresh connection. Returns (status, headers dict lower-cased, body
    bytes)."""
    host, port = split_addr(addr)
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def read_hello(sock):
    """Reads from `sock` (plain or TLS) until the demo's "Hello, World!" answer has come;
    fails if the connection ends first."""
    got = b""
    while not got.endswith(b"Hello, World!"):
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError("closed before the answer: %r" % got)
        got += chunk


def get_json(addr, path, timeout=10.0):
    status, headers, body = get(addr, path, timeout)
    return status, json.loads(body.decode())


def split_reports(reports):
    """/debug/blocking's reports as (blaming code, blaming the machine). A shared machine can
    starve a hub thread for 100 ms and more (seen in CI under load): the watchdog reports that
    truly, as cause `waiting_for_cpu`; a test that expects no blocking code allows those."""
    machine = [r for r in reports if r.get("cause") == "waiting_for_cpu"]
    code = [r for r in reports if r.get("cause") != "waiting_for_cpu"]
    return code, machine


def settled_blocking(admin):
    """/debug/blocking once every blockage counted has its report there: a blockage is counted
    when the watchdog detects it, and its report follows once symbolized."""
    def settled():
        status, dbg = get_json(admin, "/debug/blocking")
        counted = sum(h["blocking_events"] for h in dbg["hubs"])
        return dbg if counted == len(dbg["reports"]) else None
    return poll(settled, 10, 0.1, "every blockage's report in /debug/blocking")


def brief_reports(reports):
    """The fields of reports a failure message needs."""
    keys = ("hub", "cause", "cpu_share", "cpu_wait_share", "blocked_seconds", "syscall",
            "stack_note", "request")
    return json.dumps([{k: r.get(k) for k in keys} | {"stack": r.get("stack", [])[:4]}
                       for r in reports], indent=1)


def swallow_get(addr, path, got=None, timeout=40.0):
    """A GET that may be cut off (for requests the test holds open while it stops or blocks
    the server); appends the status, or None if no response came, to `got`."""
    try:
        status = get(addr, path, timeout=timeout)[0]
    except (OSError, http.client.HTTPException):
        status = None
    if got is not None:
        got.append(status)


def connect_refused(addr, timeout=2.0):
    """True when a TCP connect to addr is refused (nobody listens)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(split_addr(addr))
        return False
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        # The listener closed while this connection waited in its backlog: not refused yet,
        # but the next try will be (callers poll).
        return False
    finally:
        s.close()


def poll(fn, timeout, interval=0.01, what="condition"):
    """Calls fn() until it returns a truthy value (returned) or `timeout` passes (fails)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("%s not reached within %.1f s" % (what, timeout))
        time.sleep(interval)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path

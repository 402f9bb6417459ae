"""The weft command line through the real binary: --help, --version, configuration precedence
as --print-config shows it (default < file < environment < flag), a table of bad inputs with
their messages and exit code 2, and --check-config on good and bad files."""

import os
import re
import socket
import subprocess
import tempfile
import unittest

import server_test_util as u
from server_test_util import Weft, get, run_weft, write


def source_of(printed, section, key):
    """From --print-config output: (value text, source comment) of `key` in `[section]`."""
    current = None
    for line in printed.splitlines():
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            current = m.group(1)
            continue
        m = re.match(r"^(\w+) = (.*?)\s+# (.*)$", line)
        if m and current == section and m.group(1) == key:
            return m.group(2), m.group(3)
    raise AssertionError("no %s.%s in:\n%s" % (section, key, printed))


class HelpAndVersion(unittest.TestCase):
    def test_help_lists_every_flag(self):
        r = run_weft(["--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        for flag in ["--config", "--listen", "--admin", "--hubs", "--plugin", "--backend",
                     "--log-level", "--log-format", "--max-blocking-time", "--print-config",
                     "--check-config", "--version", "--help"]:
            self.assertIn(flag, r.stdout)
        self.assertIn("SIGTERM", r.stdout)
        self.assertIn("WEFT_MAX_BLOCKING_TIME", r.stdout)

    def test_version_names_the_build_signature(self):
        r = run_weft(["--version"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^weft \d+\.\d+\.\d+ \(weft=\d+\.\d+\.\d+;compiler=.+;"
                                   r"stdlib=.+;logging=spdlog-\d+\.\d+\.\d+;fmt=\d+;"
                                   r"sanitizers=.+\)\n$")


class Precedence(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="weft-cli-test-")
        self.addCleanup(self.tmp.cleanup)
        self.toml = write(os.path.join(self.tmp.name, "weft.toml"), (
            "[server]\n"
            "hubs = 3\n"                  # line 2: file, overridden by env and flag
            "idle_timeout = \"7s\"\n"     # line 3: file, overridden by env
            "max_connections = 123\n"     # line 4: file only
            "[log]\n"
            "level = \"debug\"\n"         # line 6: file, overridden by flag
            "[[plugin]]\n"
            "path = \"demo\"\n"))

    def test_each_value_names_its_source(self):
        r = run_weft(["--config", self.toml, "--print-config", "--hubs", "2",
                      "--log-level", "warn"],
                     env={"WEFT_HUBS": "4", "WEFT_SERVER_IDLE_TIMEOUT": "9s",
                          "WEFT_MAX_BLOCKING_TIME": "0.25"})
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertEqual(source_of(out, "runtime", "hubs"), ("2", "flag --hubs"))
        self.assertEqual(source_of(out, "server", "idle_timeout"),
                         ('"9s"', "environment WEFT_SERVER_IDLE_TIMEOUT"))
        self.assertEqual(source_of(out, "server", "max_connections"),
                         ("123", self.toml + ":4"))
        self.assertEqual(source_of(out, "log", "level"), ('"warn"', "flag --log-level"))
        self.assertEqual(source_of(out, "monitor", "max_blocking_time"),
                         ('"250ms"', "environment WEFT_MAX_BLOCKING_TIME"))
        self.assertEqual(source_of(out, "server", "send_timeout"),
                         ('"30s"', "built-in default"))
        self.assertIn('path = "demo"', out)

    def test_a_later_flag_wins_a_keys_own_or_set(self):
        cases = [(["--hubs", "4", "--set", "runtime.hubs=2"], ("2", "flag --set runtime.hubs")),
                 (["--set", "runtime.hubs=2", "--hubs", "4"], ("4", "flag --hubs")),
                 (["--hubs", "3", "--set", "runtime.hubs=2", "--hubs", "4"], ("4", "flag --hubs")),
                 (["--set", "runtime.hubs=2", "--set", "runtime.hubs=5"],
                  ("5", "flag --set runtime.hubs"))]
        for args, want in cases:
            r = run_weft(args + ["--print-config"])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(source_of(r.stdout, "runtime", "hubs"), want, args)

    def test_a_key_under_its_former_section_still_works_and_says_so(self):
        old = write(os.path.join(self.tmp.name, "old.toml"), "[server]\nhubs = 3\n")
        r = run_weft(["--config", old, "--print-config"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(source_of(r.stdout, "runtime", "hubs"), ("3", old + ":2"))
        self.assertIn("[server] hubs", r.stderr)
        self.assertIn("is now runtime.hubs", r.stderr)

    def test_without_a_file_the_embedded_default_serves_the_demo(self):
        r = run_weft(["--print-config"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(source_of(r.stdout, "server", "listen")[0], '"127.0.0.1:8080"')
        self.assertEqual(source_of(r.stdout, "admin", "listen")[0], '"127.0.0.1:9090"')
        self.assertEqual(source_of(r.stdout, "monitor", "max_blocking_time")[0], '"100ms"')
        self.assertRegex(r.stdout, r'path = "demo"\s+# embedded default.toml:\d+')

    def test_printed_config_reads_back_to_the_same_values(self):
        first = run_weft(["--config", self.toml, "--print-config", "--hubs", "2"])
        self.assertEqual(first.returncode, 0, first.stderr)
        again_path = write(os.path.join(self.tmp.name, "again.toml"), first.stdout)
        again = run_weft(["--config", again_path, "--print-config"])
        self.assertEqual(again.returncode, 0, again.stderr)

        def values(text):
            return [re.sub(r"\s+#.*$", "", line) for line in text.splitlines()
                    if not line.startswith("#")]
        self.assertEqual(values(first.stdout), values(again.stdout))

    def test_set_reaches_any_key(self):
        r = run_weft(["--print-config", "--set", "server.drain_timeout=3s"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(source_of(r.stdout, "server", "drain_timeout"),
                         ('"3s"', "flag --set server.drain_timeout"))


# (arguments, environment, file text or None, expected fragments of stderr)
BAD_INPUTS = [
    (["--hubs", "many"], {}, None,
     ["[runtime] hubs", '"many"', "flag --hubs", "0..1024"]),
    (["--listen", "localhost:80"], {}, None,
     ["[server] listen", "localhost:80", "flag --listen", "numeric"]),
    (["--backend", "kqueue"], {}, None,
     ["[runtime] backend", "kqueue", "auto, io_uring, epoll", "flag --backend"]),
    (["--log-format", "xml"], {}, None, ["[log] format", "text, json", "flag --log-format"]),
    (["--max-blocking-time", "0"], {}, None,
     ["[monitor] max_blocking_time", "between 1ms and 1h", "flag --max-blocking-time"]),
    (["--no-such-flag"], {}, None, ["--no-such-flag", "weft --help"]),
    (["--set", "server.idle_timout=3s"], {}, None,
     ["unknown key", "did you mean 'server.idle_timeout'", "--set"]),
    (["--set", "=5"], {}, None, ["--set '=5': expected SECTION.KEY=VALUE"]),
    (["--set", "access_log=stderr"], {}, None,
     ["unknown key", "did you mean 'log.access_log'", "flag --set access_log"]),
    ([], {"WEFT_HUBS": "-1"}, None, ["[runtime] hubs", "environment WEFT_HUBS", '"-1"']),
    ([], {"WEFT_MONITOR_THREAD_ENABLE": "maybe"}, None,
     ["[monitor] enabled", "environment WEFT_MONITOR_THREAD_ENABLE", "maybe", "true"]),
    ([], {"WEFT_MAX_BLOCKING_TIME": "fast"}, None,
     ["[monitor] max_blocking_time", "environment WEFT_MAX_BLOCKING_TIME", "fast"]),
    ([], {"WEFT_SERVER_IDLE_TIMOUT": "3s"}, None,
     ["did you mean WEFT_SERVER_IDLE_TIMEOUT", "environment WEFT_SERVER_IDLE_TIMOUT"]),
    ([], {}, '[server]\nmax_conections = 5\n',
     ["[server] max_conections", "unknown key", "did you mean 'max_connections'", "bad.toml:2"]),
    ([], {}, '[sever]\nlisten = "127.0.0.1:0"\n',
     ["sever", "did you mean", "server", "bad.toml:1"]),
    ([], {}, '[runtime]\nstack_size = "12XB"\n', ["[runtime] stack_size", "12XB", "bad.toml:2"]),
    ([], {}, '[server\nlisten = "127.0.0.1:0"\n', ["TOML", "bad.toml:1"]),
    ([], {}, '[server]\nlisten = "127.0.0.1:0\n', ["TOML", "bad.toml:2"]),
    ([], {}, '[[plugin]]\nconfig = {}\n', ["plugin", "path", "bad.toml"]),
]


class BadInputs(unittest.TestCase):
    def test_table(self):
        with tempfile.TemporaryDirectory(prefix="weft-cli-test-") as tmp:
            for args, env, text, fragments in BAD_INPUTS:
                argv = list(args)
                if text is not None:
                    argv = ["--config", write(os.path.join(tmp, "bad.toml"), text)] + argv
                # Both --print-config and a real start must refuse before doing anything.
                # (The start's own flags come first, so a bad flag of the table wins.)
                for cmd in (argv + ["--print-config"],
                            ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"] + argv):
                    with self.subTest(args=cmd, env=env, text=text):
                        r = run_weft(cmd, env=env, cwd=tmp)
                        self.assertEqual(r.returncode, 2, "stdout:\n%s\nstderr:\n%s" %
                                         (r.stdout, r.stderr))
                        for frag in fragments:
                            self.assertIn(frag, r.stderr)
                        self.assertNotRegex(r.stderr, r"ready in \d+ ms")

    def test_every_error_is_reported_at_once(self):
        r = run_weft(["--hubs", "x", "--backend", "y", "--print-config"],
                     env={"WEFT_LOG_LEVEL": "loud"})
        self.assertEqual(r.returncode, 2)
        for frag in ["flag --hubs", "flag --backend", "environment WEFT_LOG_LEVEL"]:
            self.assertIn(frag, r.stderr)


class ServerHeader(unittest.TestCase):
    """server.server_name reaches every response; "" drops the header."""

    def served_name(self, args=(), env=None):
        with u.Weft(list(args), env=env) as w:
            w.wait_ready()
            status, headers, _ = u.get(w.http, "/")
            self.assertEqual(status, 200)
            return headers.get("server")

    def test_default_flag_and_environment(self):
        self.assertEqual(self.served_name(), "weft")
        self.assertEqual(self.served_name(["--set", "server.server_name=acme/2.1 (edge)"]),
                         "acme/2.1 (edge)")
        self.assertIsNone(self.served_name(env={"WEFT_SERVER_SERVER_NAME": ""}))

    def test_a_value_that_could_forge_a_header_is_refused(self):
        r = run_weft(["--set", "server.server_name=weft\r\nSet-Cookie: a=b", "--print-config"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("[server] server_name", r.stderr)
        self.assertIn("flag --set server.server_name", r.stderr)
        self.assertIn("visible ASCII", r.stderr)


class BackendFromEnvironment(unittest.TestCase):
    """WEFT_BACKEND is read once, by the settings, with their grammar and precedence: a flag
    beats it, and blanks and case do not matter. The runtime must not read it again."""

    def backend(self, args=(), env=None):
        with u.Weft(list(args), env=env) as w:
            w.wait_ready()
            m = u.READY_RE.search(w.stderr())
            self.assertEqual(w.stop(), 0)
            return m.group("backend")

    def test_a_flag_beats_the_environment(self):
        own_choice = self.backend()
        self.assertEqual(self.backend(["--backend", "epoll"], {"WEFT_BACKEND": "io_uring"}),
                         "epoll")
        # auto is the runtime's own choice, not the variable's.
        self.assertEqual(self.backend(["--backend", "auto"], {"WEFT_BACKEND": "epoll"}),
                         own_choice)

    def test_blanks_and_case_are_the_settings_grammar(self):
        own_choice = self.backend()
        self.assertEqual(self.backend(env={"WEFT_BACKEND": " EPOLL "}), "epoll")
        self.assertEqual(self.backend(env={"WEFT_BACKEND": "AUTO"}), own_choice)


class HubCountSource(unittest.TestCase):
    """The startup line says where the hub count came from, as --print-config does."""

    def hubs_line(self, args=(), env=None):
        with u.Weft(list(args), env=env) as w:
            w.wait_ready()
            self.assertEqual(w.stop(), 0)
            m = re.search(r"\] weft: (\d+ hubs? \(.*\)), backend", w.stderr())
            self.assertTrue(m, w.stderr())
            return m.group(1)

    def test_each_source_is_named(self):
        self.assertEqual(self.hubs_line(["--hubs", "3"]), "3 hubs (flag --hubs)")
        self.assertEqual(self.hubs_line(env={"WEFT_HUBS": "1"}),
                         "1 hub (environment WEFT_HUBS)")
        self.assertRegex(self.hubs_line(), r"^\d+ hubs? \(CPUs available")


class StartErrors(unittest.TestCase):
    def test_port_in_use(self):
        # Whatever the log level: at "critical" or "off" the reason went unsaid (exit 1 and
        # nothing on stderr).
        for flag, level in (("--listen", "info"), ("--admin", "info"), ("--listen", "critical"),
                            ("--admin", "off")):
            with self.subTest(flag=flag, level=level), socket.socket() as busy:
                busy.bind(("127.0.0.1", 0))
                busy.listen(1)
                addr = "127.0.0.1:%d" % busy.getsockname()[1]
                argv = ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", flag, addr,
                        "--log-level", level]
                r = run_weft(argv)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(addr, r.stderr)
                self.assertIn("flag " + flag, r.stderr)
                self.assertIn("address already in use", r.stderr.lower())
                self.assertNotRegex(r.stderr, r"ready in \d+ ms")


    def test_a_second_weft_on_the_same_ports_is_refused(self):
        # Every listener sets SO_REUSEPORT: a second weft started by mistake used to join the
        # first one's ports, log "ready" and take part of the traffic and of the scrapes.
        with Weft(["--hubs", "2"]) as first:
            first.wait_ready()
            for flag, addr in (("--listen", first.http), ("--admin", first.admin)):
                with self.subTest(flag=flag):
                    argv = ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", flag, addr]
                    try:
                        r = run_weft(argv, timeout=10)
                    except subprocess.TimeoutExpired:
                        self.fail("the second weft started on %s (%s)" % (addr, flag))
                    self.assertEqual(r.returncode, 1, r.stderr)
                    self.assertNotRegex(r.stderr, r"ready in \d+ ms")
                    self.assertIn(addr, r.stderr)
                    self.assertIn("address already in use", r.stderr.lower())
                    self.assertIn("in use by pid %d (weft)" % first.pid, r.stderr)
            self.assertEqual(get(first.http, "/")[2], b"Hello, World!")
            self.assertEqual(first.stop(), 0)


class CheckConfig(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="weft-cli-test-")
        self.addCleanup(self.tmp.cleanup)

    def path(self, name, text):
        return write(os.path.join(self.tmp.name, name), text)

    def test_good_file(self):
        good = self.path("good.toml", '[server]\nlisten = "127.0.0.1:0"\n'
                                      '[[plugin]]\npath = "demo"\n')
        r = run_weft(["--check-config", "--config", good])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("good.toml is ok (1 plugin)", r.stdout)
        self.assertNotIn("no plugin", r.stderr)

    def test_a_file_without_plugins_is_ok_but_said_to_serve_only_404s(self):
        # A configuration of one's own that forgot its [[plugin]] tables started "ready" and
        # answered every request with 404, saying only "plugins: none".
        bare = self.path("bare.toml", '[server]\nlisten = "127.0.0.1:0"\n')
        r = run_weft(["--check-config", "--config", bare])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("bare.toml is ok (0 plugins)", r.stdout)
        self.assertIn("weft: warning: no plugin is loaded: every request gets 404 (add a "
                      "[[plugin]] table, or --plugin NAME)", r.stderr)
        with Weft(["--config", bare]) as w:
            w.wait_ready()
            w.wait_for_log(r"\[warning\] no plugin is loaded: every request gets 404")
            self.assertEqual(w.stop(), 0)

    def test_weft_config_in_the_environment_is_said_to_be_ignored(self):
        # Users guess it; the file is named by --config only, and the guess passed unseen.
        good = self.path("good.toml", '[server]\nlisten = "127.0.0.1:0"\n')
        r = run_weft(["--check-config"], env={"WEFT_CONFIG": good})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("environment variable WEFT_CONFIG is ignored: the configuration file is "
                      "named by --config (-c)", r.stderr)

    def test_embedded_default(self):
        r = run_weft(["-t"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("is ok", r.stdout)

    def test_embedded_default_is_quiet_on_loopback(self):
        r = run_weft(["-t"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("other hosts", r.stderr)
        self.assertNotIn("tls_cert", r.stderr)

    def test_settings_that_expose_more_than_meant_are_warned_about(self):
        # Nothing is bound under -t: the addresses are only looked at.
        r = run_weft(["-t", "--listen", "0.0.0.0:8080"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("serving the embedded default configuration on 0.0.0.0:8080 (flag "
                      "--listen), where other hosts can reach it", r.stderr)
        r = run_weft(["-t"], env={"WEFT_ADMIN_LISTEN": "0.0.0.0:9090"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("[admin] listen 0.0.0.0:9090 (environment WEFT_ADMIN_LISTEN) is reachable "
                      "from other hosts and debug_endpoints is on", r.stderr)
        r = run_weft(["-t"], env={"WEFT_ADMIN_LISTEN": "0.0.0.0:9090",
                                  "WEFT_ADMIN_DEBUG_ENDPOINTS": "false"})
        self.assertNotIn("debug_endpoints is on", r.stderr)
        # Another plugin than the demo's: nothing to warn about.
        r = run_weft(["-t", "--listen", "0.0.0.0:8080", "--plugin", u.plugin_path("calm")])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("embedded default", r.stderr)
        # A file of one's own on every address is what it says.
        own = self.path("own.toml", '[server]\nlisten = "0.0.0.0:8080"\n'
                                    '[[plugin]]\npath = "demo"\n')
        r = run_weft(["-t", "--config", own])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("embedded default", r.stderr)
        # An unfilled secret turns HTTPS off: said.
        r = run_weft(["-t"], env={"WEFT_SERVER_TLS_CERT": "", "WEFT_SERVER_TLS_KEY": ""})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('[server] tls_cert is "" (environment WEFT_SERVER_TLS_CERT): the server '
                      "serves plain HTTP, without TLS", r.stderr)

    def test_the_level_name_the_logs_print_is_taken(self):
        r = run_weft(["--print-config", "--log-level", "warning"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r'(?m)^level = "warn" +# flag --log-level$')

    def test_bad_value(self):
        bad = self.path("bad.toml", '[admin]\ndebug_endpoints = "sometimes"\n')
        r = run_weft(["--check-config", "--config", bad])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("[admin] debug_endpoints", r.stderr)
        self.assertIn("bad.toml:2", r.stderr)
        self.assertNotIn("is ok", r.stdout)

    def test_missing_file(self):
        r = run_weft(["--check-config", "--config", os.path.join(self.tmp.name, "no.toml")])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no.toml", r.stderr)
        self.assertIn("No such file", r.stderr)

    def test_an_empty_config_file_name_is_refused(self):
        # `weft -c "$CONF"` with CONF unset: not the embedded default.
        for flag in ("-c", "--config"):
            r = run_weft(["--check-config", flag, ""])
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("--config: the file name is empty", r.stderr)
            self.assertNotIn("embedded default configuration is ok", r.stderr)

    def test_missing_plugin(self):
        cfg = self.path("p.toml", '[[plugin]]\npath = "%s"\n' %
                        os.path.join(self.tmp.name, "libnothere.so"))
        r = run_weft(["--check-config", "--config", cfg])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("libnothere.so", r.stderr)
        self.assertIn("No such file", r.stderr)
        self.assertIn("test failed", r.stderr)

    def test_unwritable_access_log(self):
        u.write(os.path.join(self.tmp.name, "logs"), "a file where a directory should be\n")
        path = os.path.join(self.tmp.name, "logs", "access.log")
        r = run_weft(["--check-config", "--set", "log.access_log=" + path])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(path, r.stderr)
        self.assertIn("flag --set log.access_log", r.stderr)

    def test_a_ca_file_without_certificates(self):
        # Accepted at start, it failed every HTTPS call a plugin made.
        path = u.write(os.path.join(self.tmp.name, "ca.pem"), "root:x:0:0:root:/root:/bin/sh\n")
        r = run_weft(["--check-config", "--set", "client.ca_file=" + path])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("[client] ca_file (flag --set client.ca_file): cannot load CA file '%s': "
                      "no certificate" % path, r.stderr)
        with u.Weft(["--set", "client.ca_file=" + path]) as w:
            self.assertEqual(w.wait(15), 2)

    def test_unwritable_reports_file(self):
        u.write(os.path.join(self.tmp.name, "reports"), "a file where a directory should be\n")
        path = os.path.join(self.tmp.name, "reports", "blocking.jsonl")
        r = run_weft(["--check-config", "--set", "monitor.reports_file=" + path])
        self.assertEqual(r.returncode, 2, r.stderr)  # bad configuration, as --help says
        self.assertIn(path, r.stderr)
        self.assertIn("flag --set monitor.reports_file", r.stderr)
        # The real start says the same.
        with u.Weft(["--set", "monitor.reports_file=" + path]) as w:
            self.assertEqual(w.wait(15), 2)
            self.assertIn("[monitor] reports_file", w.stderr())
            self.assertIn("flag --set monitor.reports_file", w.stderr())
        # With the watchdog off nothing writes it: neither the test nor the start opens it.
        off = ["--set", "monitor.reports_file=" + path, "--set", "monitor.enabled=false"]
        r = run_weft(["--check-config"] + off)
        self.assertEqual(r.returncode, 0, r.stderr)
        with u.Weft(off) as w:
            w.wait_ready()
            self.assertEqual(w.stop(), 0)

    def test_plugin_config_is_checked_by_the_plugin(self):
        # The hello plugin (the template, built in-tree) rejects an unknown key in its table.
        cfg = self.path("p.toml", '[[plugin]]\npath = "%s"\n[plugin.config]\ngreting = "Hi"\n'
                        % u.plugin_path("hello"))
        r = run_weft(["--check-config", "--config", cfg])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("greting", r.stderr)
        self.assertIn("did you mean", r.stderr)
        self.assertIn("p.toml:4", r.stderr)

    def test_route_collision_is_found(self):
        r = run_weft(["--check-config", "--plugin", u.plugin_path("clash_a"),
                      "--plugin", u.plugin_path("clash_b")])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already registered by plugin 'clash_a'", r.stderr)


if __name__ == "__main__":
    u.main()

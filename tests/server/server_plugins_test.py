"""Every refusal of the plugin loader through the real binary: the server exits non-zero, never
becomes ready, and its message names the file and the reason. Then the plugins that do load:
the bundled demo by name and the template (built in-tree) by path, with its config table."""

import os
import re
import shutil
import stat
import tempfile
import unittest

import server_test_util as u
from server_test_util import Weft, get, run_weft, write


class Refusals(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="weft-plugin-test-")
        self.addCleanup(self.tmp.cleanup)

    def refuse(self, args, fragments, config=None):
        """Starts weft with `args`; it must exit non-zero before serving, saying `fragments`."""
        argv = ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"] + list(args)
        if config is not None:
            argv += ["--config", write(os.path.join(self.tmp.name, "weft.toml"), config)]
        r = run_weft(argv, cwd=self.tmp.name)
        self.assertEqual(r.returncode, 2, "exit status of a refused plugin:\n" + r.stderr)
        self.assertNotRegex(r.stderr, r"ready in \d+ ms")
        for frag in fragments:
            self.assertIn(frag, r.stderr)
        return r.stderr

    def test_missing_file(self):
        path = os.path.join(self.tmp.name, "libgone.so")
        err = self.refuse(["--plugin", path],
                          [path, "cannot open", "No such file or directory",
                           "(listed by flag --plugin)"])
        self.assertNotIn("embedded default configuration", err)

    def test_missing_relative_path_says_where_it_was_looked_for(self):
        # A relative path is resolved against the working directory (here the temp dir), not
        # against the configuration file: say so, with the full path that was tried.
        cwd = os.path.realpath(self.tmp.name)
        self.refuse(["--plugin", "build/libhello.so"],
                    ["plugin 'build/libhello.so'", "No such file or directory",
                     "resolved against the working directory, " + cwd,
                     os.path.join(cwd, "build", "libhello.so")])

    def test_missing_bundled_name(self):
        err = self.refuse(["--plugin", "nosuch"],
                          ["plugin 'nosuch'", "libweft_nosuch.so", "No such file or directory",
                           "bundled plugins are: demo"])
        self.assertNotIn("plugin 'nosuch' (nosuch)", err)

    def test_directory(self):
        d = os.path.join(self.tmp.name, "plugins.so")
        os.mkdir(d)
        self.refuse(["--plugin", d], [d, "not a regular file"])

    def test_unreadable_file(self):
        if os.geteuid() == 0:
            self.skipTest("root reads files whatever their mode")
        path = write(os.path.join(self.tmp.name, "libsecret.so"), "")
        os.chmod(path, 0)
        self.refuse(["--plugin", path], [path])

    def test_a_plugin_file_cut_short(self):
        # A copy cut short: dlopen() would map segments past the file's end and the process
        # would die of SIGBUS as it cleared them. Refused, with the sizes.
        with open(u.plugin_path("calm"), "rb") as f:
            head = f.read(3000)
        path = os.path.join(self.tmp.name, "libcut.so")
        with open(path, "wb") as f:
            f.write(head)
        self.refuse(["--plugin", path],
                    [path, "truncated or damaged: its loadable segments end at byte",
                     "the file has 3000 bytes"])

    def test_text_file_named_like_a_shared_object(self):
        path = write(os.path.join(self.tmp.name, "libnotes.so"),
                     "These are notes, not an ELF file.\n")
        self.refuse(["--plugin", path], [path, "not a loadable shared object"])

    def test_shared_object_without_entry_point(self):
        path = u.plugin_path("not_a_plugin")
        self.refuse(["--plugin", path],
                    [path, "not a Weft plugin", "weft_plugin_descriptor", "WEFT_PLUGIN"])

    def test_a_name_that_is_not_a_word(self):
        # It would name a logger, a metric label, log lines: letters, digits, _ - . only.
        path = u.plugin_path("bad_name")
        self.refuse(["--plugin", path],
                    [path, "its name 'bad name/x' is not allowed",
                     "up to 64 letters, digits, '_', '-' or '.'"])

    def test_abi_mismatch(self):
        path = u.plugin_path("wrong_abi")
        # The test plugin says it is one ABI ahead of this weft's (the header's number).
        with open(os.path.join(u.ARGS.source_dir, "server/include/weft/plugin.hpp")) as f:
            abi = int(re.search(r"#define WEFT_PLUGIN_ABI_VERSION (\d+)u", f.read()).group(1))
        self.refuse(["--plugin", path],
                    [path, "plugin ABI %d" % (abi + 1), "ABI %d" % abi, "rebuild"])

    def test_build_signature_mismatch(self):
        path = u.plugin_path("wrong_signature")
        err = self.refuse(["--plugin", path],
                          [path, "build signature mismatch", "weft=0.0.1;compiler=clang 99.0.0",
                           "rebuild"])
        # ...and this server's own signature, so the reader sees what differs.
        version = run_weft(["--version"]).stdout
        own = re.search(r"\((weft=[^)]*)\)", version).group(1)
        self.assertIn(own, err)

    def test_init_throws(self):
        path = u.plugin_path("throwing")
        self.refuse(["--plugin", path],
                    ["plugin 'throwing'", path, "init failed",
                     "cannot reach the orders database at 127.0.0.1:1"])

    def test_init_throws_a_non_standard_exception(self):
        path = u.plugin_path("throwing")
        self.refuse([], ["plugin 'throwing'", path, "init failed", "non-standard exception",
                         "(listed by %s:2)" % os.path.join(self.tmp.name, "weft.toml")],
                    config='[[plugin]]\npath = "%s"\n[plugin.config]\nthrow = "int"\n' % path)

    def test_a_crash_in_init_names_the_plugin(self):
        path = u.plugin_path("throwing")
        cfg = write(os.path.join(self.tmp.name, "weft.toml"),
                    '[[plugin]]\npath = "%s"\n[plugin.config]\nthrow = "segv"\n' % path)
        r = run_weft(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--config", cfg],
                     cwd=self.tmp.name)
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r"weft: (fatal )?SIGSEGV .*, while initializing plugin "
                                   r"'throwing' \(%s\)" % re.escape(path))

    def test_two_plugins_claim_one_route(self):
        a, b = u.plugin_path("clash_a"), u.plugin_path("clash_b")
        self.refuse(["--plugin", a, "--plugin", b],
                    ["plugin 'clash_b'", b, "GET /items/{name}",
                     "already registered by plugin 'clash_a'", a])

    def test_collision_swallowed_by_the_plugin_is_still_refused(self):
        a, b = u.plugin_path("clash_a"), u.plugin_path("clash_b")
        self.refuse([], ["plugin 'clash_b'", "GET /items/{name}",
                         "already registered by plugin 'clash_a'"],
                    config=('[[plugin]]\npath = "%s"\n'
                            '[[plugin]]\npath = "%s"\n[plugin.config]\nswallow_collision = true\n'
                            % (a, b)))

    def test_a_plugin_built_with_a_sanitizer_this_weft_lacks(self):
        # Loaded, its sanitizer's runtime would abort the process with its own message
        # ("ASan runtime does not come first") and status 1: refused before, in weft's words.
        if "asan" not in u.ARGS.plugins:
            self.skipTest("a sanitizer build: no plugin with a sanitizer it lacks")
        path = u.plugin_path("asan")
        err = self.refuse(["--plugin", path],
                          [path, "built with AddressSanitizer (it needs libasan.so",
                           "which this weft was not built with", "weft --version"])
        self.assertNotIn("ASan runtime", err)
        err = self.refuse(["--check-config", "--plugin", path], ["built with AddressSanitizer"])

    def test_one_plugin_listed_twice(self):
        demo = u.plugin_path("demo")
        self.refuse(["--plugin", demo, "--plugin", demo],
                    ["plugin 'demo'", demo, "is listed twice"])
        # The same file by another path: the same, not two plugins sharing a name.
        other = os.path.join(os.path.dirname(demo), ".", os.path.basename(demo))
        err = self.refuse(["--plugin", demo, "--plugin", other],
                          ["plugin 'demo'", "is listed twice: it is the file already loaded as "
                           + demo])
        self.assertNotIn("share", err)

    def test_two_plugins_share_a_name(self):
        # Metrics, stall budgets and reports go by the name: the second is refused before its
        # init runs (its routes would collide too; the name is what the message says).
        a, again = u.plugin_path("clash_a"), u.plugin_path("clash_a_again")
        err = self.refuse(["--plugin", a, "--plugin", again],
                          ["plugin 'clash_a'", again, "has the name of the plugin already "
                           "loaded from " + a, "may not share one"])
        self.assertNotIn("already registered", err)

    def test_first_refusal_stops_before_later_plugins(self):
        err = self.refuse(["--plugin", u.plugin_path("wrong_abi"), "--plugin",
                           u.plugin_path("hello")], ["wrong_abi"])
        self.assertNotIn("hello plugin ready", err)


class Loads(unittest.TestCase):
    def test_bundled_demo_by_name_and_template_by_path_with_its_table(self):
        with tempfile.TemporaryDirectory(prefix="weft-plugin-test-") as tmp:
            hello = u.plugin_path("hello")
            cfg = write(os.path.join(tmp, "weft.toml"),
                        '[[plugin]]\npath = "demo"\n'
                        '[[plugin]]\npath = "%s"\n[plugin.config]\ngreeting = "Howdy"\n'
                        'tick_interval = "50ms"\n' % hello)
            with Weft(["--config", cfg, "--hubs", "2"], workdir=tmp) as w:
                w.wait_ready()
                self.assertRegex(w.stderr(), r"plugins: demo [\d.]+ \(10 routes\), "
                                             r"hello 1\.0 \(2 routes\)")
                self.assertEqual(get(w.http, "/")[2], b"Hello, World!")
                self.assertEqual(get(w.http, "/hello/ada")[2], b"Howdy, ada!\n")
                self.assertEqual(get(w.http, "/hello")[2], b"Howdy, World!\n")
                self.assertIn("[plugin.hello] [info] hello plugin ready: greeting 'Howdy'",
                              w.stderr())

                def scrape():
                    return get(w.admin, "/metrics")[2].decode()
                self.assertRegex(scrape(), r"(?m)^hello_greetings_total 2$")
                # The background fiber ticks every 50 ms.
                u.poll(lambda: re.search(r"(?m)^hello_ticks_total [3-9]\d*$", scrape()), 10,
                       what="hello_ticks_total >= 3")
                self.assertEqual(w.stop(), 0)
                self.assertIn("hello plugin shutting down after 2 greetings", w.stderr())

    def test_a_file_name_without_a_directory_loads_that_file(self):
        # "libhello.so" is the file in the working directory, which the loader checked, not a
        # namesake that dlopen() would find on the library path.
        with tempfile.TemporaryDirectory(prefix="weft-plugin-test-") as tmp:
            here, elsewhere = os.path.join(tmp, "here"), os.path.join(tmp, "elsewhere")
            os.mkdir(here)
            os.mkdir(elsewhere)
            shutil.copy(u.plugin_path("hello"), os.path.join(here, "libhello.so"))
            shutil.copy(u.plugin_path("calm"), os.path.join(elsewhere, "libhello.so"))
            with Weft(["--plugin", "libhello.so", "--hubs", "1"], workdir=tmp, cwd=here,
                      env={"LD_LIBRARY_PATH": elsewhere}) as w:
                w.wait_ready()
                self.assertRegex(w.stderr(), r"plugins: hello 1\.0 \(2 routes\)")
                self.assertEqual(w.stop(), 0)

    def test_a_handler_that_throws_is_logged_with_its_plugin(self):
        # The client gets a 500; the log line names the request, the route and the plugin
        # that registered it, and the server goes on answering.
        with tempfile.TemporaryDirectory(prefix="weft-plugin-test-") as tmp:
            with Weft(["--plugin", "demo", "--plugin", u.plugin_path("calm"), "--hubs", "1"],
                      workdir=tmp) as w:
                w.wait_ready()
                self.assertEqual(get(w.http, "/calm/throw")[0], 500)
                self.assertEqual(get(w.http, "/calm")[0], 200)
                w.wait_for_log(r"handler for GET /calm/throw \(route /calm/throw of plugin "
                               r"'calm'\) threw: calm handler failed")
                self.assertEqual(w.stop(), 0)

    def test_bad_plugin_table_is_refused_with_the_plugins_message(self):
        with tempfile.TemporaryDirectory(prefix="weft-plugin-test-") as tmp:
            cfg = write(os.path.join(tmp, "weft.toml"),
                        '[[plugin]]\npath = "%s"\n[plugin.config]\ntick_interval = "soon"\n'
                        % u.plugin_path("hello"))
            r = run_weft(["--config", cfg, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("plugin 'hello'", r.stderr)
            self.assertIn("tick_interval", r.stderr)
            self.assertIn('"soon"', r.stderr)
            self.assertIn("weft.toml:4", r.stderr)


if __name__ == "__main__":
    u.main()

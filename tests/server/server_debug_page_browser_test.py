"""The live debug page in a real browser: starts weft (demo plugin, 2 hubs), then runs
tests/js/debug_page_browser.mjs, which drives Debian's headless chromium with npm's
playwright-core (scripts/install-deps.sh test installs both; no browser is downloaded). The
screenshots are kept in the build tree: tests/server/debug_page.png and debug_page_dark.png."""

import os
import shutil
import subprocess
import unittest

import server_test_util as u
from server_test_util import Weft


class Browser(unittest.TestCase):
    def test_page_live_in_chromium(self):
        js = os.path.join(u.ARGS.source_dir, "tests", "js")
        node = shutil.which("node")
        self.assertTrue(node, "node not found: run scripts/install-deps.sh test")
        self.assertTrue(os.path.isdir(os.path.join(js, "node_modules", "playwright-core")),
                        "tests/js/node_modules missing: run scripts/install-deps.sh test")
        self.assertTrue(os.path.exists("/usr/bin/chromium"),
                        "chromium missing: run scripts/install-deps.sh test")
        out = os.path.join(u.ARGS.build_dir, "tests", "server")
        # A stall budget the test exceeds on purpose, to see the quarantine on the page.
        with Weft(["--plugin", u.plugin_path("demo"), "--hubs", "2",
                   "--set", "stall.budget=0.5s"]) as w:
            w.wait_ready()
            r = subprocess.run([node, os.path.join(js, "debug_page_browser.mjs"),
                                "--admin", w.admin, "--http", w.http, "--out", out],
                               cwd=js, capture_output=True, text=True, timeout=120)
            print(r.stdout)
            self.assertEqual(r.returncode, 0, "browser test failed:\n%s\n%s" %
                             (r.stdout, r.stderr))
        self.assertTrue(os.path.getsize(os.path.join(out, "debug_page.png")) > 10000)


if __name__ == "__main__":
    u.main()

"""The demo's /ws/echo against npm's `ws` under Node (ws:// and wss://) and Chromium's own
WebSocket from a page (headless Debian chromium, driven by playwright-core): runs
tests/js/websocket_clients.mjs against a weft with a plain and a TLS listener (two servers, one
certificate from a private CA made by the openssl command)."""

import os
import shutil
import subprocess
import tempfile
import unittest

import server_test_util as u
import tls_util
from server_test_util import Weft


class Clients(unittest.TestCase):
    def test_node_ws_and_chromium(self):
        js = os.path.join(u.ARGS.source_dir, "tests", "js")
        node = shutil.which("node")
        self.assertTrue(node, "node not found: run scripts/install-deps.sh test")
        for pkg in ("ws", "playwright-core"):
            self.assertTrue(os.path.isdir(os.path.join(js, "node_modules", pkg)),
                            "tests/js/node_modules/%s missing: run scripts/install-deps.sh test"
                            % pkg)
        self.assertTrue(os.path.exists("/usr/bin/chromium"),
                        "chromium missing: run scripts/install-deps.sh test")
        tmp = tempfile.mkdtemp(prefix="weft-ws-clients-")
        try:
            ca = tls_util.PrivateCa(tmp)
            cert = ca.issue("server", ["localhost", "127.0.0.1"])
            with Weft(["--hubs", "2"]) as plain, \
                    Weft(["--hubs", "1", "--set", "server.tls_cert=" + cert.cert,
                          "--set", "server.tls_key=" + cert.key]) as tls:
                plain.wait_ready()
                tls.wait_ready()
                r = subprocess.run([node, os.path.join(js, "websocket_clients.mjs"),
                                    "--http", plain.http, "--https", tls.http, "--ca", ca.cert],
                                   cwd=js, capture_output=True, text=True, timeout=120)
                print(r.stdout)
                self.assertEqual(r.returncode, 0, "WebSocket clients failed:\n%s\n%s" %
                                 (r.stdout, r.stderr))
                self.assertIn("all WebSocket client checks passed", r.stdout)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    u.main()

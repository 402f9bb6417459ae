"""The watchdog through the real binary (issue 4's server-level tests): the admin listener runs
on its own thread, so /metrics, /healthz and /debug/blocking answer while every worker hub is
blocked; and the blockage is reported, one report per hub. A plugin that subscribed with
Context::on_blocked hears of a blockage in another plugin's handler."""

import json
import re
import threading
import time
import unittest

import server_test_util as u
from server_test_util import Weft, get, get_json, swallow_get

# Long enough that the first hub stays blocked while requests look for the second (on a loaded
# machine that can take seconds); the test kills the server, so it never waits for the end.
BLOCK_MS = 15000


def blocked_hubs(w):
    status, body = get_json(w.admin, "/healthz", timeout=2)
    return {h["hub"] for h in body["hubs"] if h["blocked"]}


class AdminDuringBlockage(unittest.TestCase):
    def test_metrics_answer_while_every_hub_is_blocked(self):
        with Weft(["--hubs", "2"]) as w:
            w.wait_ready()
            # The kernel spreads connections over the hubs' listeners by hash, so send blocking
            # requests one at a time until the watchdog sees both hubs blocked.
            threads, blocked = [], set()
            for _ in range(16):
                t = threading.Thread(target=swallow_get,
                                     args=(w.http, "/block?ms=%d" % BLOCK_MS))
                t.start()
                threads.append(t)
                deadline = time.monotonic() + 0.6
                while time.monotonic() < deadline and len(blocked) < 2:
                    blocked = blocked_hubs(w)
                    time.sleep(0.02)
                if len(blocked) == 2:
                    break
            self.assertEqual(blocked, {0, 1}, "could not block both hubs")

            t = time.monotonic()
            status, headers, body = get(w.admin, "/metrics", timeout=2)
            scrape_s = time.monotonic() - t
            s2, dbg = get_json(w.admin, "/debug/blocking", timeout=2)
            still = blocked_hubs(w)
            print("scrape during a blockage of every hub took %.1f ms" % (scrape_s * 1000))
            # Both hubs were blocked before and after the scrape: it was served meanwhile.
            self.assertEqual(still, {0, 1}, "a hub ran again before the scrape ended")
            self.assertEqual(status, 200)
            self.assertLess(scrape_s, 1.0)
            text = body.decode()
            for hub in ("0", "1"):
                m = re.search(r'(?m)^weft_hub_blocking_events_total\{hub="%s"\} (\S+)$' % hub,
                              text)
                self.assertTrue(m and float(m.group(1)) >= 1, "hub %s: %s" % (hub, m))
                # The blockage in progress, which the counters show only once it ends.
                m = re.search(r'(?m)^weft_hub_blocked_seconds\{hub="%s"\} (\S+)$' % hub, text)
                self.assertTrue(m and float(m.group(1)) >= 0.1, "hub %s: %s" % (hub, m))
            self.assertEqual(s2, 200)
            self.assertEqual({h["hub"] for h in dbg["hubs"] if h["blocked_now"]}, {0, 1})

            # One report per blocked hub (each follows its detection once symbolized).
            def reported():
                b = get_json(w.admin, "/debug/blocking", timeout=2)[1]
                hubs = {r["hub"] for r in b["reports"]
                        if r.get("request", {}).get("route") == "/block"}
                return hubs if hubs == {0, 1} else None
            u.poll(reported, 10, what="a /block report for each hub")

            # Requests that queued behind a blocked hub would hold a drain for BLOCK_MS each;
            # this test is not about draining, so end the server by its process group.
            w.kill()
            for t in threads:
                t.join(30)


class ReadinessDuringBlockage(unittest.TestCase):
    def test_readyz_fails_while_a_hub_is_held_and_recovers(self):
        # /readyz stayed 200 while the only hub was held for 600 s: the load balancer kept
        # sending connections nobody served (/healthz said 503, but only past 60 s).
        with Weft(["--hubs", "1"]) as w:
            w.wait_ready()
            t = threading.Thread(target=swallow_get, args=(w.http, "/block?ms=5000"))
            t.start()
            u.poll(lambda: blocked_hubs(w) == {0}, 5, what="the hub blocked")
            self.assertEqual(get(w.admin, "/readyz", timeout=2)[0], 200, "not at once")
            status, _, body = u.poll(
                lambda: (lambda r: r if r[0] == 503 else None)(get(w.admin, "/readyz", timeout=2)),
                6, what="/readyz 503 while the hub is held")
            self.assertRegex(body.decode(), r'"reason":"hub 0 blocked for [3-9]\.\d+ s"')
            t.join(15)
            u.poll(lambda: get(w.admin, "/readyz", timeout=2)[0] == 200, 5,
                   what="/readyz 200 again once the hub is free")
            self.assertEqual(w.stop(), 0)


class PluginsHearOfBlockages(unittest.TestCase):
    def test_a_plugin_subscribed_with_on_blocked_gets_the_report(self):
        with Weft(["--hubs", "2", "--plugin", "demo",
                   "--plugin", u.plugin_path("blocked_listener")]) as w:
            w.wait_ready()
            status, seen = get_json(w.http, "/blocked-seen")
            self.assertEqual(status, 200)
            self.assertNotIn("/block", seen["routes"])

            status, _, _ = get(w.http, "/block?ms=300")
            self.assertEqual(status, 200)

            # The report reaches the plugin once the reporter has symbolized it.
            def heard():
                s = get_json(w.http, "/blocked-seen", timeout=5)[1]
                return s if "/block" in s["routes"] else None
            seen = u.poll(heard, 10, what="the plugin's on_blocked callback for /block")
            block = seen["routes"]["/block"]
            self.assertEqual(block["reports"], 1, seen)  # one report per blockage
            self.assertEqual(block["allowed"], 0)
            self.assertGreaterEqual(block["last_blocked_seconds"], 0.1)  # the default threshold
            self.assertGreater(block["last_stack_frames"], 0)
            # The very report /debug/blocking shows.
            dbg = get_json(w.admin, "/debug/blocking")[1]
            reports = [r for r in dbg["reports"] if r.get("request", {}).get("route") == "/block"]
            self.assertEqual(len(reports), 1, dbg)
            # It names the plugin that registered the route, as every output of it does.
            self.assertEqual(reports[0]["request"].get("plugin"), "demo", reports[0])
            self.assertIn("plugin=demo", w.stderr())

            # Shutdown ends the subscription before the hooks run, and exits cleanly.
            self.assertEqual(w.stop(), 0)
            self.assertNotIn("on_blocked callback failed", w.stderr())


if __name__ == "__main__":
    u.main()

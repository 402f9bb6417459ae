"""No false alarm under load (issue 4): wrk drives `/` of the real binary for 10 s at the
default 0.1 s blocking threshold, and the watchdog reports nothing: no weft.monitor report in
the log, an empty /debug/blocking, weft_hub_blocking_events_total 0 on every hub. Runs alone
(RUN_SERIAL): other tests competing for the CPUs could starve a hub for real."""

import re
import shutil
import subprocess
import unittest

import server_test_util as u
from server_test_util import Weft, get, get_json

DURATION_S = 10


class NoReportUnderLoad(unittest.TestCase):
    def test_wrk_for_10s_reports_nothing(self):
        wrk = shutil.which("wrk")
        if wrk is None:
            self.skipTest("wrk not installed (Debian package wrk)")
        with Weft() as w:  # embedded default: demo plugin, watchdog on at 0.1 s
            w.wait_ready()
            status, cfg = get_json(w.admin, "/debug/config")
            self.assertEqual(cfg["monitor"]["max_blocking_time"], 0.1)
            self.assertTrue(cfg["monitor"]["enabled"])
            r = subprocess.run([wrk, "-t", "2", "-c", "32", "-d", "%ds" % DURATION_S,
                                "--timeout", "2s", "http://%s/" % w.http],
                               capture_output=True, text=True, timeout=DURATION_S + 60)
            print(r.stdout)
            self.assertEqual(r.returncode, 0, r.stderr)
            m = re.search(r"(\d+) requests in", r.stdout)
            self.assertTrue(m and int(m.group(1)) > 10 * DURATION_S, r.stdout)
            self.assertNotIn("Non-2xx", r.stdout)

            status, dbg = get_json(w.admin, "/debug/blocking")
            metrics = get(w.admin, "/metrics")[2].decode()
            self.assertEqual(w.stop(), 0)
            log = w.stderr()

        monitor_lines = [l for l in log.splitlines() if "[weft.monitor]" in l]
        self.assertEqual(monitor_lines, [], "the watchdog reported under plain load")
        self.assertEqual(dbg["reports"], [])
        self.assertTrue(all(h["blocking_events"] == 0 for h in dbg["hubs"]), dbg["hubs"])
        events = re.findall(r'(?m)^weft_hub_blocking_events_total\{hub="\d+"\} (\S+)$', metrics)
        self.assertTrue(events)
        self.assertTrue(all(float(v) == 0 for v in events), events)
        # The load was real: the hubs ran many fiber slices.
        slices = sum(float(v) for v in re.findall(
            r'(?m)^weft_hub_run_duration_seconds_count\{hub="\d+"\} (\S+)$', metrics))
        self.assertGreater(slices, 1000)


if __name__ == "__main__":
    u.main()

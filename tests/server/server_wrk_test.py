"""No false alarm under load (issue 4): wrk drives `/` of the real binary for 10 s at the
default 0.1 s blocking threshold, and the watchdog blames no code: no report in the log or in
/debug/blocking but those of a hub the machine starved (below), and no more
weft_hub_blocking_events_total than those. Runs alone (RUN_SERIAL): other tests competing for
the CPUs could starve a hub for real.

A hub can still be starved by the machine: on a shared virtual machine a hub thread sometimes
waits ~100 ms, runnable, for a CPU (seen in CI and here, with 0 % CPU time over the report).
Such a report is true, and it names the machine (cause `waiting_for_cpu`); it is allowed, and
only it: a report of any other cause fails the test."""

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

            dbg = u.settled_blocking(w.admin)
            metrics = get(w.admin, "/metrics")[2].decode()
            self.assertEqual(w.stop(), 0)
            log = w.stderr()

        reports = dbg["reports"]
        code, starved = u.split_reports(reports)
        self.assertEqual(code, [], "the watchdog blamed code under plain load:\n" +
                         u.brief_reports(code))
        if starved:
            print("hubs starved of CPU by the machine:", u.brief_reports(starved))
        # The log has those reports (and any made between the look and the stop), each one a
        # starved hub's, with their closing lines, and nothing else of the watchdog's.
        monitor_lines = [l for l in log.splitlines() if "[weft.monitor]" in l]
        opened = [l for l in monitor_lines if "appears to be blocked" in l]
        closed = [l for l in monitor_lines if "runs again" in l]
        self.assertGreaterEqual(len(opened), len(reports), monitor_lines)
        self.assertEqual(len(opened) + len(closed), len(monitor_lines), monitor_lines)
        self.assertEqual(log.count("Waiting for a CPU: the thread was runnable"), len(opened), log)
        events = re.findall(r'(?m)^weft_hub_blocking_events_total\{hub="\d+"\} (\S+)$', metrics)
        self.assertTrue(events)
        # (Read after /debug/blocking: a blockage detected in between counts here only.)
        self.assertGreaterEqual(sum(float(v) for v in events), len(reports), events)
        # The load was real: the hubs ran many fiber slices.
        slices = sum(float(v) for v in re.findall(
            r'(?m)^weft_hub_run_duration_seconds_count\{hub="\d+"\} (\S+)$', metrics))
        self.assertGreater(slices, 1000)


if __name__ == "__main__":
    u.main()

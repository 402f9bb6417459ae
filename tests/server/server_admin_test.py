"""The admin listener of the real binary: /healthz, /readyz, /metrics (promtool-clean, the hub
families, request durations labelled by route template), /debug/* as JSON, and
`[admin] debug_endpoints = false`."""

import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import unittest

import server_test_util as u
from server_test_util import Weft, get, get_json, write

HUB_FAMILIES = [
    ("weft_hub_run_duration_seconds", "histogram"),
    ("weft_hub_schedule_delay_seconds", "histogram"),
    ("weft_hub_lag_seconds", "histogram"),
    ("weft_hub_busy_seconds_total", "counter"),
    ("weft_hub_idle_seconds_total", "counter"),
    ("weft_hub_blocking_events_total", "counter"),
    ("weft_hub_blocking_seconds_total", "counter"),
    ("weft_hub_blocking_allowed_events_total", "counter"),
    ("weft_hub_blocking_allowed_seconds_total", "counter"),
    ("weft_hub_blocking_reports_dropped_total", "counter"),
    ("weft_hub_fibers", "gauge"),
    ("weft_hub_blocking_threshold_seconds", "gauge"),
    ("weft_build_info", "gauge"),
    ("process_cpu_seconds_total", "counter"),
    ("process_resident_memory_bytes", "gauge"),
    ("process_open_fds", "gauge"),
    ("process_start_time_seconds", "gauge"),
    ("http_server_request_duration_seconds", "histogram"),
    ("http_server_active_requests", "gauge"),
    ("weft_patched_calls_total", "counter"),
    ("weft_patched_call_waits_total", "counter"),
    ("weft_offload_threads", "gauge"),
    ("weft_offload_max_threads", "gauge"),
    ("weft_offload_busy_threads", "gauge"),
    ("weft_offload_queue_length", "gauge"),
    ("weft_offload_tasks_started_total", "counter"),
    ("weft_offload_tasks_withdrawn_total", "counter"),
    ("weft_offload_queue_wait_seconds", "histogram"),
    ("weft_resolver_threads", "gauge"),
    ("weft_resolver_max_threads", "gauge"),
    ("weft_resolver_busy_threads", "gauge"),
    ("weft_resolver_queue_length", "gauge"),
    ("weft_resolver_tasks_started_total", "counter"),
    ("weft_resolver_tasks_withdrawn_total", "counter"),
    ("weft_resolver_queue_wait_seconds", "histogram"),
    ("weft_http_connections", "gauge"),
    ("weft_http_connections_limit", "gauge"),
    ("weft_http_connections_reclaimed_total", "counter"),
    ("weft_http_connections_accepted_total", "counter"),
    ("weft_http_accept_errors_total", "counter"),
    ("weft_http_request_body_bytes", "gauge"),
]


def families(text):
    """{name: type} from the # TYPE lines of a text exposition."""
    return dict(re.findall(r"(?m)^# TYPE (\S+) (\S+)$", text))


def samples(text, name):
    """[(labels dict, value)] of every sample line of metric `name` (label values may hold
    braces: route templates do)."""
    out = []
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, value = line.rsplit(" ", 1)
        if head == name:
            out.append(({}, float(value)))
        elif head.startswith(name + "{") and head.endswith("}"):
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', head[len(name) + 1:-1]))
            out.append((labels, float(value)))
    return out


def sample(text, name, **labels):
    """The value of the one sample `name` whose labels include `labels`; None if none."""
    found = [v for lab, v in samples(text, name)
             if all(lab.get(k) == want for k, want in labels.items())]
    if len(found) > 1:
        raise AssertionError("%d samples of %s%r" % (len(found), name, labels))
    return found[0] if found else None


def promtool(text):
    """`promtool check metrics` on the text; returns (exit code, output)."""
    exe = shutil.which("promtool")
    if exe is None:
        raise unittest.SkipTest("promtool not installed (Debian package prometheus)")
    r = subprocess.run([exe, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=30)
    return r.returncode, r.stdout + r.stderr


class Admin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = Weft(["--hubs", "2", "--plugin", "demo", "--plugin", u.plugin_path("hello")])
        cls.w.wait_ready()

    @classmethod
    def tearDownClass(cls):
        code = cls.w.stop()
        cls.w.__exit__(None, None, None)
        assert code == 0, "weft exited %d" % code

    def test_healthz_reports_each_hub(self):
        # Another test blocks a hub on purpose; the watchdog clears "blocked" within a period.
        def calm():
            status, body = get_json(self.w.admin, "/healthz")
            return (status, body) if not any(h["blocked"] for h in body["hubs"]) else None
        status, body = u.poll(calm, 2, what="no hub blocked")
        self.assertEqual(status, 200)
        self.assertEqual(body["status"], "ok")
        self.assertIn(body["backend"], ("io_uring", "epoll"))
        self.assertEqual([h["hub"] for h in body["hubs"]], [0, 1])
        for h in body["hubs"]:
            self.assertIn(h["state"], ("idle", "running"))
            self.assertIs(h["blocked"], False)
            self.assertGreaterEqual(h["fibers"], 1)  # its accept fiber at least

    def test_readyz(self):
        status, headers, body = get(self.w.admin, "/readyz")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"ready": True})
        self.assertTrue(headers["content-type"].startswith("application/json"))

    def test_metrics_pass_promtool_and_have_every_family(self):
        for path in ["/", "/sleep?ms=3", "/hello/alice", "/hello/bob", "/nowhere",
                     "/std_sleep?ms=3", "/offload?ms=1",
                     # A name to look up: on a resolver thread, not the offload pool.
                     f"/fetch?url=http://localhost:{u.split_addr(self.w.http)[1]}/"]:
            get(self.w.http, path)
        get(self.w.http, "/echo", method="POST", body=b"x")
        # A request is recorded once its response is handed to the kernel, which the client may
        # see first: scrape until the last one shows.
        def scraped():
            r = get(self.w.admin, "/metrics")
            return r if re.search(r'http_server_request_duration_seconds_count\{[^}]*'
                                  r'http_request_method="POST"[^}]*http_route="/echo"', r[2].decode()) \
                else None
        status, headers, body = u.poll(scraped, 5, what="POST /echo in the metrics")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        text = body.decode()
        code, out = promtool(text)
        self.assertEqual(code, 0, out)

        have = families(text)
        for name, kind in HUB_FAMILIES:
            self.assertEqual(have.get(name), kind, name)
        for hub in ("0", "1"):
            self.assertIsNotNone(
                sample(text, "weft_hub_run_duration_seconds_bucket", hub=hub, le="+Inf"))
            self.assertIsNotNone(sample(text, "weft_hub_lag_seconds_bucket", hub=hub, le="5e-06"))
            self.assertEqual(sample(text, "weft_hub_blocking_threshold_seconds", hub=hub), 0.1)

        # Request durations by route template, summed over hubs; never a raw path.
        def count(route, method="GET", code="200"):
            return sum(v for lab, v in samples(text, "http_server_request_duration_seconds_count")
                       if (lab.get("http_route"), lab.get("http_request_method"),
                           lab.get("http_response_status_code")) == (route, method, code))
        self.assertGreaterEqual(count("/"), 1)
        self.assertGreaterEqual(count("/sleep"), 1)
        self.assertGreaterEqual(count("/hello/{name}"), 2)
        self.assertGreaterEqual(count("/echo", method="POST"), 1)
        self.assertGreaterEqual(count("", code="404"), 1)
        self.assertNotIn("alice", text)
        self.assertNotIn("ms=3", text)
        self.assertNotIn("/nowhere", text)

        # std::this_thread::sleep_for went through the patched sleep and parked its fiber.
        sleeps = sum(v for lab, v in samples(text, "weft_patched_call_waits_total")
                     if lab.get("call") in ("nanosleep", "clock_nanosleep"))
        self.assertGreaterEqual(sleeps, 1)
        self.assertGreaterEqual(sample(text, "weft_offload_tasks_started_total"), 1)
        self.assertGreaterEqual(sample(text, "weft_offload_queue_wait_seconds_count"), 1)
        self.assertGreaterEqual(sample(text, "weft_resolver_tasks_started_total"), 1)
        self.assertEqual(sample(text, "weft_resolver_max_threads"), 4)

        # The template's own counters are in the same registry.
        self.assertRegex(text, r"(?m)^hello_greetings_total [2-9]")
        self.assertIn("# TYPE hello_ticks_total counter", text)

    def test_request_metrics_are_summed_over_hubs_unless_asked(self):
        # A series per hub multiplied the request metrics by the cores (a 64-core machine: tens
        # of thousands of series per pod). They are summed over the hubs unless
        # monitor.request_metrics_by_hub asks for the hub label.
        def requests_and_scrape(w, n):
            for _ in range(n):  # fresh connections: the kernel spreads them over both hubs
                self.assertEqual(get(w.http, "/")[0], 200)
            return u.poll(lambda: (lambda t: t if sum(
                v for _, v in samples(t, "http_server_request_duration_seconds_count")) >= n
                else None)(get(w.admin, "/metrics")[2].decode()), 5, what="the requests counted")

        text = requests_and_scrape(self.w, 40)
        counts = samples(text, "http_server_request_duration_seconds_count")
        self.assertTrue(counts)
        for labels, _ in counts + samples(text, "http_server_active_requests"):
            self.assertNotIn("hub", labels)
        # One series per method, status and route: GET / 200 is one line.
        self.assertEqual(len([1 for lab, _ in counts if (lab["http_route"], lab[
            "http_response_status_code"], lab["http_request_method"]) == ("/", "200", "GET")]), 1)
        self.assertEqual(len(samples(text, "http_server_active_requests")),
                         len({lab["http_request_method"] for lab, _ in
                              samples(text, "http_server_active_requests")}))

        with Weft(["--hubs", "2", "--set", "monitor.request_metrics_by_hub=true"]) as w:
            w.wait_ready()
            text = requests_and_scrape(w, 40)
            hubs = {lab.get("hub") for lab, _ in
                    samples(text, "http_server_request_duration_seconds_count")}
            self.assertEqual(hubs, {"0", "1"})
            self.assertEqual({lab.get("hub") for lab, _ in
                              samples(text, "http_server_active_requests")}, {"0", "1"})
            code, out = promtool(text)
            self.assertEqual(code, 0, out)
            self.assertEqual(w.stop(), 0)

    def test_openmetrics_on_request(self):
        status, headers, body = get(self.w.admin, "/metrics", headers={
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"})
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("application/openmetrics-text"))
        self.assertTrue(body.endswith(b"# EOF\n"))

    def test_metrics_gzipped_for_a_client_that_takes_it(self):
        # Prometheus sends Accept-Encoding: gzip; the text is a tenth of its size gzipped.
        status, plain_headers, plain = get(self.w.admin, "/metrics")
        self.assertEqual(status, 200)
        self.assertNotIn("content-encoding", plain_headers)
        status, headers, body = get(self.w.admin, "/metrics",
                                    headers={"Accept-Encoding": "br;q=1.0, gzip;q=0.8"})
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("content-encoding"), "gzip")
        self.assertEqual(headers.get("vary"), "Accept-Encoding")
        text = gzip.decompress(body).decode()
        self.assertIn("# TYPE weft_hub_blocking_events_total counter", text)
        self.assertLess(len(body), len(plain) // 3)
        # Refused by q=0, or not named: as it is.
        for ae in ("gzip;q=0, identity", "identity", "br", "*;q=0"):
            status, headers, body = get(self.w.admin, "/metrics",
                                        headers={"Accept-Encoding": ae})
            self.assertEqual(status, 200)
            self.assertNotIn("content-encoding", headers, ae)
            self.assertIn(b"# TYPE weft_hub_blocking_events_total counter", body, ae)
        status, headers, _ = get(self.w.admin, "/metrics", headers={"Accept-Encoding": "*"})
        self.assertEqual(headers.get("content-encoding"), "gzip")

    def test_debug_blocking_is_json_and_sees_a_blockage(self):
        status, body = get_json(self.w.admin, "/debug/blocking")
        self.assertEqual(status, 200)
        self.assertEqual(len(body["hubs"]), 2)
        before = sum(h["blocking_events"] for h in body["hubs"])
        self.assertEqual(get(self.w.http, "/block?ms=300")[0], 200)

        def reported():
            s, b = get_json(self.w.admin, "/debug/blocking")
            ours = [r for r in b["reports"] if r.get("request", {}).get("route") == "/block"]
            return (b, ours) if ours else None
        # The count moves at detection; the report follows once its stack is symbolized.
        b, ours = u.poll(reported, 10, what="the /block report in /debug/blocking")
        self.assertGreater(sum(h["blocking_events"] for h in b["hubs"]), before)
        self.assertEqual(ours[0]["fiber"]["name"], "http-connection")
        self.assertEqual(ours[0]["kind"], "blocked")
        # /block sleeps with a raw system call: the report names the plugin it came from and
        # says that patching covers nanosleep only through libc's function.
        sc = ours[0]["syscall"]
        self.assertEqual(sc["name"], "nanosleep")
        self.assertTrue(sc["patchable"])
        self.assertTrue(sc["patching_on"])
        self.assertEqual(sc["caller"]["module"], "libweft_demo.so", sc)
        self.assertIn("did not go through libc's patched function", sc["advice"])
        self.assertIn("weft::sleep_for", sc["advice"])
        self.assertEqual(ours[0]["advice"], sc["advice"])  # also at the top, for any cause

    def test_debug_fibers_is_json(self):
        status, headers, raw = get(self.w.admin, "/debug/fibers")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("application/json"))
        body = json.loads(raw)
        self.assertEqual([h["hub"] for h in body["hubs"]], [0, 1])
        names = [f["name"] for h in body["hubs"] for f in h["fibers"]]
        self.assertEqual(names.count("http-accept"), 2)
        self.assertIn("hello-ticker", names)
        accept = next(f for h in body["hubs"] for f in h["fibers"] if f["name"] == "http-accept")
        self.assertEqual(accept["state"], "parked")
        self.assertRegex(accept["spawned_at"], r"\.cpp:\d+$")
        self.assertTrue(any(t["hub"] == 0 for t in body["threads"]))
        # The gevent-style text, as SIGUSR1 logs it, on request.
        status, headers, text = get(self.w.admin, "/debug/fibers?format=text")
        self.assertEqual(status, 200)
        self.assertIn(b"http-accept", text)
        # Another format is refused, not answered as JSON.
        status, _, text = get(self.w.admin, "/debug/fibers?format=xml")
        self.assertEqual((status, text), (400, b"format must be json or text, got 'xml'\n"))
        status, _, text = get(self.w.admin, "/debug/fibers?format=%1b")
        self.assertEqual((status, text), (400, b"format must be json or text, got '\\x1B'\n"))
        # So are a profile's numbers: escaped, 64 bytes at most.
        for path in ("/debug/pprof/profile", "/debug/pprof/hubblock"):
            status, _, text = get(self.w.admin, path + "?seconds=%1b%5b31m%00%0d%0aX:" + "9" * 100)
            self.assertEqual(status, 400)
            self.assertEqual(text, b"seconds must be a whole number from 1 to " +
                             (b"300" if path.endswith("profile") else b"3600") +
                             b", got '\\x1B[31m\\x00\\x0D\\x0AX:" + b"9" * 54 + b"'\n")

    def test_debug_index_lists_the_debug_endpoints(self):
        for index in ("/debug/", "/debug"):
            status, headers, body = get(self.w.admin, index)
            self.assertEqual(status, 200, index)
            self.assertTrue(headers["content-type"].startswith("text/html"))
            links = re.findall(r'href="(/debug/[^"]*)"', body.decode())
            self.assertEqual(sorted(set(links)), ["/debug/blocking", "/debug/config",
                                                  "/debug/fibers", "/debug/fibers?format=text",
                                                  "/debug/pprof/", "/debug/state"])
            for link in links:
                self.assertEqual(get(self.w.admin, link)[0], 200, link)

    def test_debug_config_is_json_with_sources(self):
        status, body = get_json(self.w.admin, "/debug/config")
        self.assertEqual(status, 200)
        self.assertEqual(body["server"]["listen"], "127.0.0.1:0")
        self.assertEqual(body["runtime"]["hubs"], 2)
        self.assertEqual([p["path"] for p in body["plugins"]], ["demo", u.plugin_path("hello")])
        self.assertEqual(body["sources"]["runtime.hubs"], "flag --hubs")
        # Numbers for programs, and the values as --print-config writes them for people (the
        # live page shows these: "0" and "10" said nothing of "auto" and seconds).
        self.assertEqual(body["runtime"]["stack_size"], 0)
        self.assertEqual(body["shown"]["runtime.stack_size"], '"auto"')
        self.assertEqual(body["server"]["header_timeout"], 10)
        self.assertEqual(body["shown"]["server.header_timeout"], '"10s"')
        self.assertEqual(body["shown"]["runtime.hubs"], "2")

    def test_admin_routes_only(self):
        # The admin listener serves admin routes, not the plugins' routes, and vice versa.
        self.assertEqual(get(self.w.admin, "/")[0], 404)
        self.assertEqual(get(self.w.http, "/metrics")[0], 404)


class ManyFibers(unittest.TestCase):
    def test_debug_fibers_lists_at_most_a_thousand_per_hub(self):
        # 1,100 requests in flight on one hub: the listing stops at 1,000 and counts the rest.
        with Weft(["--hubs", "1", "--plugin", "demo"]) as w:
            w.wait_ready()
            host, port = u.split_addr(w.http)
            socks = []
            try:
                for _ in range(1100):
                    s = socket.create_connection((host, port))
                    s.sendall(b"GET /sleep?ms=5000 HTTP/1.1\r\nHost: t\r\n\r\n")
                    socks.append(s)
                def hub():
                    (h,) = json.loads(get(w.admin, "/debug/fibers")[2])["hubs"]
                    return h
                # Each request has its connection's fiber (and one watching for a hang-up).
                u.poll(lambda: len(hub()["fibers"]) + hub()["omitted"] >= 1100, 10,
                       what="every request's fiber counted")
                h = hub()
                self.assertEqual(len(h["fibers"]), 1000)
                self.assertGreater(h["omitted"], 0)
                text = get(w.admin, "/debug/fibers?format=text")[2].decode()
                self.assertRegex(text, r"\.\.\. and \d+ more fibers")
            finally:
                for s in socks:
                    s.close()
            self.assertEqual(w.stop(), 0)


class DebugEndpointsOff(unittest.TestCase):
    def test_debug_off_is_404_and_the_rest_still_answers(self):
        with tempfile.TemporaryDirectory(prefix="weft-admin-test-") as tmp:
            cfg = write(os.path.join(tmp, "weft.toml"),
                        '[admin]\ndebug_endpoints = false\n[[plugin]]\npath = "demo"\n')
            with Weft(["--config", cfg, "--hubs", "1"], workdir=tmp) as w:
                w.wait_ready()
                for path in ("/debug/blocking", "/debug/fibers", "/debug/config",
                             "/debug/events", "/debug/state", "/debug/pprof/hubblock",
                             "/debug/pprof/profile?seconds=1"):
                    self.assertEqual(get(w.admin, path)[0], 404, path)
                for path in ("/metrics", "/healthz", "/readyz"):
                    self.assertEqual(get(w.admin, path)[0], 200, path)
                self.assertEqual(w.stop(), 0)

    def test_the_container_config_hides_them(self):
        # The image and the Kubernetes ConfigMap bind admin on every interface: /debug/* (fibers,
        # requests in flight, the configuration) is off there; probes and /metrics answer.
        cfg = os.path.join(u.ARGS.source_dir, "deploy", "container", "weft.toml")
        with Weft(["--config", cfg, "--hubs", "1", "--log-format", "text"]) as w:
            w.wait_ready()
            for path in ("/debug/", "/debug/blocking", "/debug/fibers", "/debug/config"):
                self.assertEqual(get(w.admin, path)[0], 404, path)
            for path in ("/metrics", "/healthz", "/readyz"):
                self.assertEqual(get(w.admin, path)[0], 200, path)
            # Nor the demo routes that let any client hold a hub or make the server fetch a
            # URL of its choosing; the others answer.
            for path in ("/block?ms=1", "/spin?ms=1", "/fetch?url=http://127.0.0.1:1/",
                         "/fanout?url=http://127.0.0.1:1/&n=1"):
                self.assertEqual(get(w.http, path)[0], 404, path)
            self.assertEqual(get(w.http, "/")[0], 200)
            self.assertEqual(w.stop(), 0)

    def test_admin_disabled(self):
        with Weft(["--hubs", "1", "--set", "admin.enabled=false"]) as w:
            w.wait_ready()
            self.assertIsNone(w.admin)
            self.assertEqual(get(w.http, "/")[2], b"Hello, World!")
            self.assertEqual(w.stop(), 0)


if __name__ == "__main__":
    u.main()

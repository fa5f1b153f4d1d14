"""The dashboard server of nta-run, from outside: the JSON API, the push
channel, /metrics (checked with Debian's promtool), and the security rules:
token off loopback, wrong tokens, foreign Host and Origin, path traversal,
malformed and oversized requests, a busy port. Uses only the standard
library's HTTP client and raw sockets, never nta's code."""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

PIPELINE = os.path.join(h.ROOT, "tests", "browser", "dashboard.lua")
TOKEN = "s3cret-token-for-tests"


class Server:
    """nta-run with the dashboard on a free port, its stderr collected."""

    def __init__(self, *args):
        self.p = subprocess.Popen([h.NTA_RUN] + list(args) + [PIPELINE], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = []
        self.port = None
        deadline = time.time() + 20
        while self.port is None:
            line = self.p.stderr.readline()
            if not line or time.time() > deadline:
                raise AssertionError("nta-run printed no address:\n" + "".join(self.log))
            self.log.append(line)
            m = re.search(r"dashboard at http://[^:]+:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        for line in self.p.stderr:
            self.log.append(line)

    def request(self, method, path, headers=None, body=None, host="127.0.0.1"):
        c = http.client.HTTPConnection(host, self.port, timeout=10)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def raw(self, data, read=65536):
        """Sends bytes as they are; returns what came back (maybe nothing)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            out = b""
            try:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server already closed a request it refused
            while len(out) < read:
                try:
                    chunk = s.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                out += chunk
            return out
        finally:
            s.close()

    def stop(self):
        self.p.terminate()
        rc = self.p.wait(30)
        self.reader.join(10)
        log = "".join(self.log)
        h.assert_clean_log(log)
        assert rc == 0, "nta-run exited %d:\n%s" % (rc, log[-3000:])
        return log


def status_of(raw):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(m.group(1)) if m else None


def wait_for(fn, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("condition not met within %d s" % timeout)


class LoopbackServerTest(unittest.TestCase):
    """Bound to 127.0.0.1 without a token: the default."""

    @classmethod
    def setUpClass(cls):
        cls.s = Server("--http", "127.0.0.1:0")

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()

    def get_json(self, path):
        st, hd, body = self.s.request("GET", path)
        self.assertEqual(st, 200, body)
        self.assertTrue(hd["content-type"].startswith("application/json"))
        return json.loads(body)

    def test_page_and_its_files(self):
        for path, ctype in [("/", "text/html"), ("/app.js", "text/javascript"),
                            ("/style.css", "text/css"),
                            ("/vendor/uplot/uPlot.iife.min.js", "text/javascript"),
                            ("/vendor/uplot/uPlot.min.css", "text/css")]:
            st, hd, body = self.s.request("GET", path)
            self.assertEqual(st, 200, path)
            self.assertTrue(hd["content-type"].startswith(ctype), (path, hd))
            self.assertGreater(len(body), 100, path)
            self.assertEqual(hd["x-content-type-options"], "nosniff")

    def test_no_directory_listing_and_nothing_but_page_files(self):
        for path in ["/vendor/", "/vendor/uplot/", "/node_modules/", "/node_modules/uplot/",
                     "/package.json", "/package-lock.json", "/node_modules/uplot/package.json",
                     "/vendor/uplot/package.json", "/web/index.html", "/.git/config"]:
            st, _, body = self.s.request("GET", path)
            self.assertEqual(st, 404, path)
            self.assertNotIn(b"uplot", body.lower(), path)

    def test_path_traversal_refused(self):
        paths = [b"/../../../../etc/passwd", b"/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                 b"/vendor/uplot/..%2f..%2f..%2fpackage.json",
                 b"/vendor/uplot/%2e%2e%2f%2e%2e%2fpackage.json",
                 b"/..%2f..%2f..%2fetc%2fpasswd", b"/..%5c..%5cetc%5cpasswd",
                 b"/%252e%252e/%252e%252e/etc/passwd", b"//etc/passwd",
                 b"/vendor/uplot/../../../README.md",
                 b"/.%2e/.%2e/etc/passwd"]
        for p in paths:
            raw = self.s.raw(b"GET " + p + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            st = status_of(raw)
            self.assertIsNotNone(st, p)
            self.assertTrue(400 <= st < 500, (p, raw[:200]))
            self.assertNotIn(b"root:", raw, p)
            self.assertNotIn(b'"name"', raw, p)

    def test_status_windows_alerts_rules(self):
        st = wait_for(lambda: (lambda s: s if s.get("records_in") else None)(
            self.get_json("/api/status")))
        self.assertEqual(st["type"], "status")
        self.assertEqual(st["mode"], "local")
        self.assertIn("traffic", [w["name"] for w in st["windows"]])
        w = wait_for(lambda: self.get_json("/api/windows?name=traffic")["results"])
        self.assertTrue(all(r["window"] == "traffic" for r in w))
        self.assertTrue(all(r["closed_at_us"] > 0 for r in w))
        last = w[-1]["end"]
        self.assertEqual(self.get_json("/api/windows?name=traffic&since=%d" % last)["results"],
                         [])
        later = self.get_json("/api/windows?since=%d" % (last - 1))["results"]
        self.assertTrue(later and all(r["end"] >= last for r in later))
        self.assertEqual(self.get_json("/api/windows?name=no_such_window")["results"], [])
        self.assertIn("alerts", self.get_json("/api/alerts?since=0"))
        rules = self.get_json("/api/rules")
        self.assertIn("engine", rules)
        self.assertIn("last_reload", rules)

    def test_reload(self):
        st, _, body = self.s.request("POST", "/api/reload")
        if not self.get_json("/api/rules")["engine"]:
            self.assertEqual(st, 503)
            self.assertIn("no rules engine", json.loads(body)["error"])
        else:
            self.assertIn(st, (200, 422))
            self.assertIn("ok", json.loads(body))
        st, hd, _ = self.s.request("GET", "/api/reload")
        self.assertEqual(st, 405)

    def test_foreign_host_and_origin_refused(self):
        # DNS rebinding: a foreign name resolving to 127.0.0.1.
        st, _, _ = self.s.request("GET", "/api/status", {"Host": "evil.example:80"})
        self.assertEqual(st, 403)
        own = "http://127.0.0.1:%d" % self.s.port
        st, _, _ = self.s.request("GET", "/api/status", {"Origin": "http://evil.example"})
        self.assertEqual(st, 403)
        st, _, _ = self.s.request("POST", "/api/reload", {"Origin": "http://evil.example"})
        self.assertEqual(st, 403)
        st, _, _ = self.s.request("GET", "/api/events", {"Origin": "http://evil.example"})
        self.assertEqual(st, 403)
        st, _, _ = self.s.request("GET", "/api/status", {"Origin": own})
        self.assertEqual(st, 200)

    def test_malformed_and_oversized_requests(self):
        cases = [
            b"GARBAGE\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET / HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
            b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
            b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"POST /api/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000\r\n\r\nxx",
            b"POST /api/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n",
            b"GET /api/windows?since=abc HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"GET /api/windows?name=" + b"x" * 500 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"GET /api/windows?limit=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"PUT /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
            b"DELETE / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            b"GET /api/status HTTP/1.1\r\n\r\n",  # no Host
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),  # TLS hello
            os.urandom(3000),
        ]
        for req in cases:
            raw = self.s.raw(req)
            st = status_of(raw)
            # Either a 4xx answer, or civetweb closing a connection it could
            # not parse at all: never a 2xx, never a crash.
            self.assertTrue(st is None or 400 <= st < 500, (req[:60], raw[:200]))
        for req in cases[3:12]:
            self.assertIsNotNone(status_of(self.s.raw(req)), req[:60])
        self.assertEqual(self.s.request("GET", "/api/status")[0], 200)
        self.assertIsNone(self.s.p.poll(), "nta-run died")

    def test_push_stream_replays_history_then_goes_live(self):
        wait_for(lambda: self.get_json("/api/windows?name=traffic")["results"])
        c = http.client.HTTPConnection("127.0.0.1", self.s.port, timeout=10)
        c.request("GET", "/api/events")
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.getheader("Content-Type").startswith("text/event-stream"))
        events, ids, ev = {}, [], {}
        deadline = time.time() + 10
        while time.time() < deadline and not (events.get("status", 0) >= 2 and
                                               events.get("window")):
            line = r.fp.readline().decode().rstrip("\n")
            if line.startswith("id: "):
                ev["id"] = int(line[4:])
            elif line.startswith("event: "):
                ev["event"] = line[7:]
            elif line.startswith("data: "):
                ev["data"] = json.loads(line[6:])
            elif line == "" and "event" in ev:
                events[ev["event"]] = events.get(ev["event"], 0) + 1
                ids.append(ev["id"])
                if ev["event"] == "window":
                    self.assertGreater(ev["data"]["closed_at_us"], 0)
                ev = {}
        c.close()
        self.assertGreaterEqual(events.get("status", 0), 2, events)
        self.assertTrue(events.get("window"), events)
        self.assertEqual(ids, sorted(ids))

    def test_metrics_pass_promtool(self):
        wait_for(lambda: self.get_json("/api/windows?name=traffic")["results"])
        st, hd, body = self.s.request("GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(hd["content-type"].startswith("text/plain; version=0.0.4"))
        text = body.decode()
        for name in ["nta_records_in_total{topic=", "nta_records_out_total{topic=",
                     "nta_bad_records_total{reason=\"bad_json\"}",
                     "nta_late_records_total{window=\"traffic\"}",
                     "nta_window_results_total{window=\"traffic\"}", "nta_reloads_total{outcome=",
                     "nta_processing_latency_seconds_bucket{le=\"+Inf\"}",
                     "nta_push_latency_seconds_count", "nta_detection_latency_seconds"]:
            self.assertIn(name, text)
        p = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class TokenServerTest(unittest.TestCase):
    """Bound to every interface: the token is required."""

    @classmethod
    def setUpClass(cls):
        cls.tokfile = tempfile.NamedTemporaryFile("w", suffix=".token", delete=False)
        cls.tokfile.write("  %s  \n" % TOKEN)
        cls.tokfile.close()
        cls.s = Server("--http", "0.0.0.0:0", "--http-token-file", cls.tokfile.name)

    @classmethod
    def tearDownClass(cls):
        cls.s.stop()
        os.unlink(cls.tokfile.name)

    def test_token_required_on_every_api_push_metrics_and_reload_request(self):
        for method, path in [("GET", "/api/status"), ("GET", "/api/windows"),
                             ("GET", "/api/alerts"), ("GET", "/api/rules"),
                             ("GET", "/api/events"), ("GET", "/metrics"),
                             ("POST", "/api/reload")]:
            st, hd, _ = self.s.request(method, path)
            self.assertEqual(st, 401, path)
            self.assertIn("bearer", hd.get("www-authenticate", "").lower())
            for bad in [{"Authorization": "Bearer wrong-token-123"},
                        {"Authorization": "Bearer " + TOKEN + "x"},
                        {"Authorization": "Bearer " + TOKEN[:-1]},
                        {"Authorization": "Basic " + TOKEN}]:
                self.assertEqual(self.s.request(method, path, bad)[0], 401, (path, bad))
            self.assertEqual(self.s.request(method, path + "?token=wrong-token-123")[0], 401)

    def test_right_token_accepted(self):
        auth = {"Authorization": "Bearer " + TOKEN}
        self.assertEqual(self.s.request("GET", "/api/status", auth)[0], 200)
        self.assertEqual(self.s.request("GET", "/metrics", auth)[0], 200)
        # Any Host is fine once the token is checked (a real host name).
        self.assertEqual(self.s.request("GET", "/api/status",
                                        dict(auth, Host="nta.example:8080"))[0], 200)
        st, _, _ = self.s.request("POST", "/api/reload", auth)
        self.assertIn(st, (200, 422, 503))
        # EventSource can not set headers: ?token= instead.
        c = http.client.HTTPConnection("127.0.0.1", self.s.port, timeout=10)
        c.request("GET", "/api/events?token=" + TOKEN)
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.fp.readline(), b"retry: 2000\n")
        c.close()

    def test_page_itself_needs_no_token(self):
        # The page must load to ask for the token; it holds no data.
        self.assertEqual(self.s.request("GET", "/")[0], 200)
        self.assertEqual(self.s.request("GET", "/app.js")[0], 200)


class CommandLineTest(unittest.TestCase):

    def run_nta(self, *args, env=None, stdin=""):
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([h.NTA_RUN] + list(args), input=stdin, capture_output=True,
                              text=True, timeout=60, env=e)

    def stdin_script(self):
        return h.pipeline_script([{"name": "t", "size_ms": 1000, "slide_ms": 1000, "key": [],
                                   "aggs": [("sum", "bytes")]}], {}, "processed-data")

    RECORDS = "".join('{"ts":%d,"src_ip":"10.0.0.1","dst_ip":"10.0.0.2","bytes":10}\n'
                      % (1700000000000 + i * 100) for i in range(30))

    def test_off_loopback_needs_a_token(self):
        p = self.run_nta("--http", "0.0.0.0:0", self.stdin_script())
        self.assertEqual(p.returncode, 2)
        self.assertIn("not a loopback address", p.stderr)
        p = self.run_nta("--http", "[::]:0", "--http-token", "short", self.stdin_script())
        self.assertEqual(p.returncode, 2)
        self.assertIn("at least 8", p.stderr)

    def test_bad_address_and_options(self):
        for args in (["--http", "nonsense"], ["--http", "127.0.0.1:99999"],
                     ["--http", "127.0.0.1"], ["--http-history", "soon"],
                     ["--http-token-file", "/nonexistent/token"]):
            p = self.run_nta(*(args + [self.stdin_script()]))
            self.assertEqual(p.returncode, 2, args)
            self.assertIn("nta-run:", p.stderr)

    def test_busy_port_is_logged_and_the_pipeline_runs_on(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            p = self.run_nta("--http", "127.0.0.1:%d" % port, self.stdin_script(),
                             stdin=self.RECORDS)
        finally:
            s.close()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("cannot listen on 127.0.0.1:%d" % port, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 3)
        h.assert_clean_log(p.stderr)

    def test_env_turns_it_off_or_moves_it(self):
        p = self.run_nta(self.stdin_script(), env={"NTA_HTTP": "off"}, stdin=self.RECORDS)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("dashboard", p.stderr)
        p = self.run_nta(self.stdin_script(), env={"NTA_HTTP": "127.0.0.1:0"},
                         stdin=self.RECORDS)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("dashboard at http://127.0.0.1:", p.stderr)
        p = self.run_nta("--no-http", self.stdin_script(), env={"NTA_HTTP": "127.0.0.1:0"},
                         stdin=self.RECORDS)
        self.assertNotIn("dashboard", p.stderr)


if __name__ == "__main__":
    unittest.main()

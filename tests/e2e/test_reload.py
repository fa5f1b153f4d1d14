"""Reloading rules with SIGHUP while the pipeline runs: all or nothing, state
kept, bad rule code contained (errors, endless loops, unbounded memory)."""
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import nta_batch  # noqa: E402

PIPELINE = """
input { generator = { "%(gen)s", "rate=%(rate)d", "start=%(start)d"%(count)s }, lateness = "0s" }
rules "rules"
window "t" { size = "1s", sum = "bytes" }
window "by_proto" { key = "proto", size = "2s", slide = "1s", sum = "bytes" }
window "top" { size = "1s", topk = { field = "src_ip", by = "bytes", k = 3 },
               quantiles = { field = "bytes", q = { 0.5 } } }
-- A filter on several fields: the same declaration must give the same window.
window "tcp" { size = "1s", where = { proto = 6, tcp_flags = { 2, 27 }, dst_port = { 443, 80 } },
               distinct = "dst_port" }
window "proto_top" { key = "proto", size = "1s", topk = { field = "dst_ip", by = "bytes", k = 2 } }
"""

BUSY = """
rule "busy" { window = "t", value = "count", above = %s, raise_after = 1, clear_after = 1,
              cooldown = "0s", message = "{value} records" }
"""


class Running:
    """nta-run in the background with its stdout lines in a queue."""

    def __init__(self, tmp, rate=2000, count=None, start=None, extra=()):
        with open(os.path.join(tmp, "pipeline.lua"), "w") as f:
            f.write(PIPELINE % {"gen": h.GEN, "rate": rate,
                                "start": start or int(time.time() * 1000),
                                "count": ', "count=%d"' % count if count else ""})
        self.p = subprocess.Popen([h.NTA_RUN] + list(extra) + [os.path.join(tmp, "pipeline.lua")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.all = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            o = json.loads(line)
            self.all.append(o)
            self.lines.put(o)

    def wait_for(self, pred, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                o = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if pred(o):
                return o
        raise AssertionError("nothing matched within %d s" % timeout)

    def reload(self):
        self.p.send_signal(signal.SIGHUP)
        return self.wait_for(lambda o: o["type"] == "reload")

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        _, err = self.p.communicate(timeout=60)
        self.stderr = err
        return self.p.returncode


class ReloadTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        os.mkdir(os.path.join(self.tmp, "rules"))
        self.write_rule("busy.lua", BUSY % "1e9")

    def tearDown(self):
        # A failed assertion must not leave a pipeline running.
        r = getattr(self, "run_", None)
        if r is not None and r.p.poll() is None:
            r.p.kill()
            r.p.communicate()
        shutil.rmtree(self.tmp)

    def write_rule(self, name, text):
        with open(os.path.join(self.tmp, "rules", name), "w") as f:
            f.write(text)

    def start(self, **kw):
        self.run_ = Running(self.tmp, **kw)
        self.run_.wait_for(lambda o: o["type"] == "window")
        return self.run_

    def finish(self):
        self.assertEqual(self.run_.stop(), 0, self.run_.stderr)
        h.assert_clean_log(self.run_.stderr)

    def test_good_reload_takes_effect_on_the_next_window(self):
        r = self.start()
        r.wait_for(lambda o: o["type"] == "window" and o["window"] == "top")
        self.write_rule("busy.lua", BUSY % "10")
        # Dry-run on the latest "top" result, whose sketches are gone by then.
        self.write_rule("top.lua", 'rule "top" { window = "top", when = function(w)\n'
                                   '  local t = w.topk_bytes_src_ip\n'
                                   '  return #t > 0 and t[1].share > 2 or w.p50_bytes < 0 end }\n')
        rec = r.reload()
        self.assertTrue(rec["ok"], rec)
        self.assertEqual(rec["generation"], 2)
        self.assertEqual(rec["rules"], 2)
        self.assertEqual(rec["restarted_windows"], [])
        a = r.wait_for(lambda o: o["type"] == "alert" and o["rule"] == "busy")
        self.assertEqual(a["state"], "raised")
        self.assertGreaterEqual(a["end"], rec["time"] - 2000)
        self.finish()
        self.assertIn("reloads 1 ok 0 failed", r.stderr)

    def test_each_rule_on_a_keyed_window(self):
        # Items are keyed by the window's key and the item; the dry run must
        # hand when() such an item, or this rule fails on w.key.dst_ip.
        r = self.start()
        r.wait_for(lambda o: o["type"] == "window" and o["window"] == "proto_top")
        self.write_rule("each.lua",
                        'rule "each" { window = "proto_top", each = "topk_bytes_dst_ip",\n'
                        '  value = "value", above = 0, severity = "info",\n'
                        '  raise_after = 1, clear_after = 1, cooldown = "0s",\n'
                        '  when = function(w) return #w.key.dst_ip > 0 and w.key.proto ~= nil end,\n'
                        '  message = "{proto} {dst_ip}" }\n')
        rec = r.reload()
        self.assertTrue(rec["ok"], rec)
        tops = {}
        a = r.wait_for(lambda o: o["type"] == "alert" and o["rule"] == "each")
        self.assertEqual(sorted(a["key"]), ["dst_ip", "proto"])
        self.assertEqual(a["message"], "%s %s" % (a["key"]["proto"], a["key"]["dst_ip"]))
        # The alerted item is one of its window's listed top destinations.
        for o in r.all:
            if o["type"] == "window" and o["window"] == "proto_top":
                tops[(o["end"], o["key"]["proto"])] = [t["key"] for t in o["topk_bytes_dst_ip"]]
        self.assertIn(a["key"]["dst_ip"], tops[(a["end"], a["key"]["proto"])])
        self.finish()

    def assert_refused(self, text, *needles, extra=()):
        r = self.start(extra=extra)
        self.write_rule("bad.lua", text)
        rec = r.reload()
        self.assertFalse(rec["ok"], rec)
        for n in needles:
            self.assertIn(n, rec["error"])
        # The old rules still run: the process is up and results keep coming.
        r.wait_for(lambda o: o["type"] == "window" and o["end"] > rec["time"])
        self.finish()
        self.assertIn("reloads 0 ok 1 failed", r.stderr)
        return rec

    def test_syntax_error_is_refused_with_file_and_line(self):
        self.assert_refused('rule "x" {\n  window = "t",\n  value = count"\n}\n', "bad.lua:3:")

    def test_runtime_error_in_top_level_is_refused(self):
        self.assert_refused('local t = nil\nprint(t.x)\n', "bad.lua:2:")

    def test_unknown_window_is_refused(self):
        self.assert_refused('rule "x" { window = "nope", value = "count", above = 1 }\n',
                            "bad.lua:1:", "window 'nope'")

    def test_rule_failing_on_every_call_is_refused_by_the_dry_run(self):
        self.assert_refused('rule "x" { window = "t", when = function(w) return w.nope.x end }\n',
                            "rule 'x'", "dry", "bad.lua:1")

    def test_endless_loop_is_refused_within_the_budget(self):
        rec = self.assert_refused(
            'rule "x" { window = "t", when = function(w) while true do end end }\n',
            "time budget exceeded")
        self.assertIn("rule 'x'", rec["error"])

    def test_unbounded_allocation_is_refused(self):
        self.assert_refused(
            'rule "x" { window = "t", when = function(w)\n'
            '  local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(1e6) .. i end end }\n',
            "memory limit", extra=["--rule-memory", "16"])

    def test_sandbox_has_no_io_os_or_ffi(self):
        for code in ('io.open("/etc/passwd")', 'os.exit(1)', 'require("ffi")',
                     'loadstring("return 1")', 'debug.getinfo(1)', 'package.loaded.x = 1'):
            with self.subTest(code=code):
                r = Running(self.tmp)
                r.wait_for(lambda o: o["type"] == "window")
                self.write_rule("bad.lua", code + "\n")
                rec = r.reload()
                self.assertFalse(rec["ok"], code)
                self.assertEqual(r.stop(), 0)
                os.remove(os.path.join(self.tmp, "rules", "bad.lua"))

    def test_bad_rules_at_start_are_quarantined_and_others_keep_working(self):
        self.write_rule("busy.lua", BUSY % "10")
        self.write_rule("bad.lua",
                        'rule "fails" { window = "t", when = function(w) error("always") end }\n'
                        'rule "loops" { window = "t", when = function(w) while true do end end }\n')
        r = Running(self.tmp, extra=["--rule-budget", "50"])
        # busy keeps raising and clearing while fails and loops are quarantined.
        r.wait_for(lambda o: o["type"] == "alert" and o["rule"] == "busy")
        t0 = time.time()
        last = r.wait_for(lambda o: o["type"] == "window" and o["window"] == "t")
        for _ in range(3):
            nxt = r.wait_for(lambda o: o["type"] == "window" and o["window"] == "t")
            # A stalled pipeline would show as windows arriving late.
            self.assertLessEqual(nxt["end"] - last["end"], 1000)
            last = nxt
        self.assertLess(time.time() - t0, 10)
        self.assertEqual(r.stop(), 0)
        self.assertIn("rule 'fails'", r.stderr)
        self.assertIn("quarantined", r.stderr)
        self.assertIn("rule 'loops'", r.stderr)
        self.assertIn("time budget exceeded", r.stderr)
        self.assertRegex(r.stderr, r"rule fails: .* 3 errors \(quarantined\)")
        self.assertRegex(r.stderr, r"rule loops: .* 1 errors \(quarantined\)")
        self.assertRegex(r.stderr, r"rule busy: .* [1-9]\d* raised")

    def test_fifty_reloads_lose_and_repeat_nothing(self):
        start = 1700000000000
        count = 100000
        r = Running(self.tmp, rate=10000, count=count, start=start)
        reloads = 0
        while r.p.poll() is None and reloads < 50:
            time.sleep(0.1)
            r.p.send_signal(signal.SIGHUP)
            reloads += 1
        self.assertEqual(r.p.wait(120), 0)
        self.assertEqual(reloads, 50, "the run ended before 50 reloads")
        time.sleep(0.5)
        ok = [o for o in r.all if o["type"] == "reload" and o["ok"]]
        self.assertGreaterEqual(len(ok), 40)
        got = [o for o in r.all if o["type"] == "window" and o["window"] in ("t", "by_proto")]
        gen = subprocess.run([h.NTA_RUN, "--fast", h.GEN, "rate=10000", "count=%d" % count,
                              "start=%d" % start], capture_output=True, text=True, check=True)
        records = [h.record_from_json(l) for l in gen.stdout.splitlines()]
        specs = [{"name": "t", "size_ms": 1000, "slide_ms": 1000, "key": [],
                  "aggs": [("sum", "bytes")]},
                 {"name": "by_proto", "size_ms": 2000, "slide_ms": 1000, "key": ["proto"],
                  "aggs": [("sum", "bytes")]}]
        nta_batch.assert_equal(nta_batch.compute(records, specs), got)


if __name__ == "__main__":
    unittest.main(verbosity=2)

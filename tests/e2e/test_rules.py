"""The shipped rules (rules/*.lua) on the detection pipeline (scripts/detect.lua),
fed by the generator with one anomaly injected at a known time into realistic
background: each alert must fire with the right key within two slides of the
injection and clear after it ends; background alone raises nothing."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

START = 1700000000000  # aligned to every window of detect.lua
DETECT = os.path.join(h.ROOT, "scripts", "detect.lua")
INJECT_AT, INJECT_FOR = 200, 40  # seconds: after the baselines' 2-minute warm-up


def run_detect(*args, duration=360, rate=2000):
    p = subprocess.run([h.NTA_RUN, "--fast", DETECT, "rate=%d" % rate,
                        "duration=%d" % duration, "start=%d" % START, "seed=3"] + list(args),
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    h.assert_clean_log(p.stderr)
    return [o for o in map(json.loads, p.stdout.splitlines()) if o["type"] == "alert"]


class ShippedRulesTest(unittest.TestCase):

    def check(self, kind, rule, key, slide_ms=10000, size_ms=10000, clear_after=2):
        alerts = run_detect("inject=%s@%d+%d" % (kind, INJECT_AT, INJECT_FOR))
        mine = [a for a in alerts if a["rule"] == rule and a["key"] == key]
        raised = [a for a in mine if a["state"] == "raised"]
        cleared = [a for a in mine if a["state"] == "cleared"]
        self.assertEqual(len(raised), 1, "%s: raised %s\nall alerts: %s" % (rule, raised, alerts))
        t0, t1 = START + INJECT_AT * 1000, START + (INJECT_AT + INJECT_FOR) * 1000
        self.assertGreater(raised[0]["end"], t0)
        self.assertLessEqual(raised[0]["end"], t0 + 2 * slide_ms,
                             "%s raised too late: %s" % (rule, raised[0]))
        self.assertLess(raised[0]["start"], t1)
        self.assertEqual(len(cleared), 1, "%s never cleared: %s" % (rule, mine))
        self.assertGreater(cleared[0]["end"], t1)
        self.assertLessEqual(cleared[0]["end"], t1 + size_ms + (clear_after + 1) * slide_ms)
        for a in raised:
            self.assertIn(a["severity"], ("warning", "critical"))
            self.assertTrue(a["message"])
            self.assertEqual(a["first_seen"], a["start"])
        return raised[0]

    def test_vertical_port_scan(self):
        a = self.check("portscan", "port_scan_vertical",
                       {"src_ip": "203.0.113.66", "dst_ip": "10.0.1.10"}, size_ms=30000)
        self.assertIn("203.0.113.66 probed", a["message"])
        self.assertEqual(a["threshold"], 100)

    def test_horizontal_scan(self):
        self.check("hscan", "port_scan_horizontal", {"src_ip": "203.0.113.67", "dst_port": "22"},
                   size_ms=30000)

    def test_syn_flood(self):
        self.check("flood", "syn_flood", {"dst_ip": "10.0.0.5"})

    def test_amplification(self):
        self.check("amplification", "amplification", {"dst_ip": "10.0.0.5"})

    def test_traffic_spike(self):
        a = self.check("spike", "traffic_spike", {})
        self.assertGreater(a["value"], 4)

    def test_traffic_drop(self):
        a = self.check("drop", "traffic_drop", {})
        self.assertLess(a["value"], 0.3)

    def test_exfiltration(self):
        self.check("exfil", "exfiltration", {"src_ip": "10.0.2.20", "dst_ip": "198.51.100.77"},
                   size_ms=60000, clear_after=3)

    def test_heavy_hitter(self):
        a = self.check("heavy", "heavy_hitter", {"src_ip": "10.0.3.7"})
        self.assertGreater(a["value"], 0.8)

    def test_background_alone_raises_nothing(self):
        # 30 minutes of event time, no anomaly.
        alerts = run_detect(duration=1800, rate=1000)
        loud = [a for a in alerts if a["severity"] in ("warning", "critical")]
        self.assertEqual(loud, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""Top-k and quantile window results of nta-run (stdin pipeline, no Kafka)
against an exact computation in Python over the same records, within the
bounds nta states:

  topk: each reported item has true <= value <= true + error, error <= total/m
        (m = the summary's counters), share = value / total; a true top-k
        item heavier than the (k+1)-th by more than total/m is reported.
  quantiles: the value of rank floor(q * (n - 1)) (0-based) of the sorted
        values, within 1% (DDSketch, alpha = 0.01).

Windows and keys come from nta_batch (no aggregates: the count only)."""
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import nta_batch  # noqa: E402

START = 1700000000000
ALPHA = 0.01

# name -> (window options in Lua, spec for nta_batch, topk (field, by, k, m), quantiles)
WINDOWS = {
    "talkers": ('size = "10s", topk = { field = "src_ip", by = "bytes", k = 10 }, '
                'quantiles = { field = "bytes", q = { 0.5, 0.9, 0.95, 0.99, 0.999 } }',
                {"size_ms": 10000, "slide_ms": 10000, "key": []},
                ("src_ip", "bytes", 10, 64), ("bytes", [0.5, 0.9, 0.95, 0.99, 0.999])),
    "dst_sliding": ('size = "20s", slide = "5s", '
                    'topk = { field = "dst_ip", by = "packets", k = 5, capacity = 16 }, '
                    'quantiles = { field = "packets" }',
                    {"size_ms": 20000, "slide_ms": 5000, "key": []},
                    ("dst_ip", "packets", 5, 16), ("packets", [0.5, 0.95, 0.99])),
    "ports_by_proto": ('key = "proto", size = "10s", '
                       'topk = { field = "dst_port", by = "count", k = 3, capacity = 8 }',
                       {"size_ms": 10000, "slide_ms": 10000, "key": ["proto"]},
                       ("dst_port", "count", 3, 8), None),
}


def quantile_name(q, field):
    bp = round(q * 10000)
    pct, frac = divmod(bp, 100)
    if frac == 0:
        return "p%d_%s" % (pct, field)
    if frac % 10 == 0:
        return "p%d_%d_%s" % (pct, frac // 10, field)
    return "p%d_%02d_%s" % (pct, frac, field)


def members(records, spec, res):
    key_fields = spec["key"]
    return [r for r in records
            if res["start"] <= r["ts"] < res["end"]
            and all(nta_batch.field_text(r, f) == res["key"][f] for f in key_fields)]


class SketchResultsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        data = h.run_nta(["--fast", h.GEN, "rate=2000", "count=80000", "start=%d" % START,
                          "inject=heavy@10+10,portscan@22+5"]).stdout
        cls.records = [h.record_from_json(l) for l in data.splitlines()]
        lines = ['input { lateness = "1h", format = "json" }']
        for name, (opts, _, _, _) in WINDOWS.items():
            lines.append('window "%s" { %s }' % (name, opts))
        f = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        f.write("\n".join(lines) + "\n")
        f.close()
        p = subprocess.run([h.NTA_RUN, f.name], input=data, capture_output=True, text=True,
                           timeout=300)
        os.unlink(f.name)
        assert p.returncode == 0, p.stderr
        h.assert_clean_log(p.stderr)
        cls.results = [json.loads(l) for l in p.stdout.splitlines()]

    def check_topk(self, res, recs, topk):
        field, by, k, m = topk
        items = res["topk_%s_%s" % (by, field)]
        exact = {}
        for r in recs:
            w = 1 if by == "count" else r[by]
            if w > 0:
                key = nta_batch.field_text(r, field)
                exact[key] = exact.get(key, 0) + w
        total = sum(exact.values())
        self.assertLessEqual(len(items), k)
        self.assertEqual(len(items), min(k, len(exact)))
        values = [it["value"] for it in items]
        self.assertEqual(values, sorted(values, reverse=True))
        for it in items:
            true = exact.get(it["key"])
            self.assertIsNotNone(true, "%s was never seen" % it["key"])
            self.assertLessEqual(true, it["value"], it)
            self.assertLessEqual(it["value"], true + it["error"], it)
            self.assertLessEqual(it["error"] * m, total, it)
            self.assertTrue(math.isclose(it["share"], it["value"] / total, rel_tol=1e-12), it)
        ranked = sorted(exact.values(), reverse=True)
        nxt = ranked[k] if len(ranked) > k else 0
        reported = {it["key"] for it in items}
        for key, w in exact.items():
            if w > nxt + total / m:
                self.assertIn(key, reported, "true top-%d item %s (%d of %d) missing from %s"
                              % (k, key, w, total, res["window"]))

    def check_quantiles(self, res, recs, quantiles):
        field, qs = quantiles
        vals = sorted(r[field] for r in recs)
        for q in qs:
            x = vals[int(math.floor(q * (len(vals) - 1)))]
            est = res[quantile_name(q, field)]
            self.assertLessEqual(abs(est - x), ALPHA * x * (1 + 1e-9),
                                 "%s %s q=%g: %r, exact %d" % (res["window"], res["key"], q,
                                                               est, x))

    def test_every_result_within_bounds(self):
        for name, (_, spec, topk, quantiles) in WINDOWS.items():
            spec = dict(spec, name=name, aggs=[])
            expected = nta_batch.compute(self.records, [spec])
            got = [r for r in self.results if r["window"] == name]
            ident = lambda r: (r["start"], tuple(sorted(r["key"].items())))  # noqa: E731
            self.assertEqual(sorted(map(ident, expected)), sorted(map(ident, got)), name)
            counts = {ident(r): r["count"] for r in expected}
            self.assertGreater(len(got), 3)
            for res in got:
                self.assertEqual(res["count"], counts[ident(res)])
                recs = members(self.records, spec, res)
                self.assertEqual(len(recs), res["count"])
                self.check_topk(res, recs, topk)
                if quantiles:
                    self.check_quantiles(res, recs, quantiles)

    def test_injected_heavy_hitter_leads(self):
        # The generator's "heavy" anomaly (10 s to 20 s) adds bulk flows of
        # 1-10 MB from 10.0.3.7: in the window it covers, it leads the talkers.
        during = [r for r in self.results
                  if r["window"] == "talkers" and r["start"] == START + 10000]
        self.assertEqual(len(during), 1)
        self.assertEqual(during[0]["topk_bytes_src_ip"][0]["key"], "10.0.3.7")


class SketchOptionErrorsTest(unittest.TestCase):

    def assert_script_error(self, window_opts, *needles):
        f = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        f.write('input { format = "json" }\n\nwindow "w" { size = "10s", %s }\n' % window_opts)
        f.close()
        p = subprocess.run([h.NTA_RUN, f.name], input="", capture_output=True, text=True,
                           timeout=30)
        os.unlink(f.name)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(os.path.basename(f.name) + ":3:", p.stderr)
        for n in needles:
            self.assertIn(n, p.stderr)
        h.assert_clean_log(p.stderr)

    def test_bad_options(self):
        self.assert_script_error('topk = "src_ip"', "topk must be a table")
        self.assert_script_error('topk = { "src_ip" }', "option names must be strings")
        self.assert_script_error('topk = { field = "src_ip", by = "flows" }', "'by' must be")
        self.assert_script_error('topk = { field = "src_ip", k = 101 }', "'k' must be")
        self.assert_script_error('topk = { field = "src_ip", k = 2.5 }', "'k' must be")
        self.assert_script_error('topk = { field = "nope" }', "unknown field 'nope'")
        self.assert_script_error('topk = { by = "bytes" }', "'field' is required")
        self.assert_script_error('topk = { field = "src_ip", capacity = 4 }', "capacity")
        self.assert_script_error('topk = { field = "src_ip", kk = 3 }', "unknown option 'kk'")
        self.assert_script_error('quantiles = { field = "src_ip" }', "address")
        self.assert_script_error('quantiles = { field = "bytes", q = { 0.5, 1.5 } }',
                                 "quantile 1.5")
        self.assert_script_error('quantiles = { field = "bytes", q = { 0.5, 0.5 } }', "twice")
        self.assert_script_error('quantiles = { field = "bytes", q = { 0.12345 } }',
                                 "at most 4 decimals")
        self.assert_script_error('quantiles = { field = "bytes", q = {} }', "1 to 8")
        self.assert_script_error('quantiles = { field = "bytes", q = "p99" }', "q must be")


if __name__ == "__main__":
    unittest.main()

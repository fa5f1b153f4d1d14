"""Unit tests of nta_batch, on small cases computed by hand.

Run from the repo root: /usr/bin/python3 -m unittest tests/e2e/test_nta_batch.py
"""

import copy
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nta_batch  # noqa: E402


def rec(ts, src="10.0.0.1", dst="10.0.0.2", sport=40000, dport=443, proto=6, nbytes=100,
        packets=1, flags=27):
    return {"ts": ts, "src_ip": src, "dst_ip": dst, "src_port": sport, "dst_port": dport,
            "proto": proto, "bytes": nbytes, "packets": packets, "tcp_flags": flags}


def by_ident(results):
    return {(r["window"], r["start"], tuple(sorted(r["key"].items()))): r for r in results}


class TimeFormat(unittest.TestCase):
    def test_rfc3339(self):
        self.assertEqual(nta_batch.rfc3339_ms(1700000000000), "2023-11-14T22:13:20.000Z")
        self.assertEqual(nta_batch.rfc3339_ms(1700000000007), "2023-11-14T22:13:20.007Z")
        self.assertEqual(nta_batch.rfc3339_ms(0), "1970-01-01T00:00:00.000Z")
        self.assertEqual(nta_batch.rfc3339_ms(-10), "1969-12-31T23:59:59.990Z")

    def test_address_text(self):
        self.assertEqual(nta_batch.address_text("::ffff:10.0.0.1"), "10.0.0.1")
        self.assertEqual(nta_batch.address_text("2001:DB8:0:0:1:0:0:1"), "2001:db8::1:0:0:1")


class WindowStarts(unittest.TestCase):
    def test_tumbling(self):
        self.assertEqual(nta_batch.window_starts(0, 10, 10), [0])
        self.assertEqual(nta_batch.window_starts(9, 10, 10), [0])
        self.assertEqual(nta_batch.window_starts(10, 10, 10), [10])

    def test_sliding_not_multiple(self):
        # size 25, slide 10: ts 27 is in [20,45) and [10,35), not [0,25).
        self.assertEqual(nta_batch.window_starts(27, 25, 10), [20, 10])
        # ts 5 is in [0,25) and [-10,15), not [-20,5).
        self.assertEqual(nta_batch.window_starts(5, 25, 10), [0, -10])
        # ts 20: [20,45), [10,35), [0,25).
        self.assertEqual(nta_batch.window_starts(20, 25, 10), [20, 10, 0])

    def test_negative(self):
        self.assertEqual(nta_batch.window_starts(-1, 10, 10), [-10])
        self.assertEqual(nta_batch.window_starts(-10, 10, 10), [-10])
        self.assertEqual(nta_batch.window_starts(-11, 10, 10), [-20])
        self.assertEqual(nta_batch.window_starts(-1, 20, 10), [-10, -20])


class Compute(unittest.TestCase):
    def test_tumbling_keyed(self):
        spec = {"name": "t", "size_ms": 10000, "slide_ms": 10000, "key": ["src_ip"],
                "aggs": [("sum", "bytes"), ("min", "bytes"), ("max", "bytes"), ("mean", "bytes"),
                         ("distinct", "dst_port")]}
        recs = [rec(1000, nbytes=100, dport=443), rec(5000, nbytes=300, dport=80),
                rec(9999, nbytes=200, dport=443), rec(10000, nbytes=7),
                rec(2000, src="10.0.0.9", nbytes=50)]
        out = nta_batch.compute(recs, [spec])
        self.assertEqual(len(out), 3)
        self.assertEqual(out[0], {
            "type": "window", "window": "t", "start": 0, "end": 10000,
            "start_time": "1970-01-01T00:00:00.000Z", "end_time": "1970-01-01T00:00:10.000Z",
            "key": {"src_ip": "10.0.0.1"}, "count": 3, "sum_bytes": 600, "min_bytes": 100,
            "max_bytes": 300, "mean_bytes": 200.0, "distinct_dst_port": 2})
        got = by_ident(out)
        r9 = got[("t", 0, (("src_ip", "10.0.0.9"),))]
        self.assertEqual((r9["count"], r9["sum_bytes"], r9["distinct_dst_port"]), (1, 50, 1))
        r2 = got[("t", 10000, (("src_ip", "10.0.0.1"),))]
        self.assertEqual((r2["end"], r2["count"], r2["sum_bytes"]), (20000, 1, 7))
        self.assertIsInstance(r2["mean_bytes"], float)

    def test_sliding_not_multiple(self):
        # size 25, slide 10. ts 5 -> [-10,15), [0,25); ts 20 -> [0,25), [10,35),
        # [20,45); ts 27 -> [10,35), [20,45).
        spec = {"name": "s", "size_ms": 25, "slide_ms": 10, "key": [],
                "aggs": [("sum", "bytes")]}
        recs = [rec(5, nbytes=1), rec(20, nbytes=10), rec(27, nbytes=100)]
        out = nta_batch.compute(recs, [spec])
        got = {(r["start"], r["end"]): (r["count"], r["sum_bytes"]) for r in out}
        self.assertEqual(got, {(-10, 15): (1, 1), (0, 25): (2, 11), (10, 35): (2, 110),
                               (20, 45): (2, 110)})
        self.assertEqual([r["end"] for r in out], [15, 25, 35, 45])
        self.assertTrue(all(r["key"] == {} for r in out))

    def test_negative_ts(self):
        spec = {"name": "n", "size_ms": 1000, "slide_ms": 1000, "key": [], "aggs": []}
        out = nta_batch.compute([rec(-1), rec(-1000), rec(-1001), rec(0)], [spec])
        got = {r["start"]: r["count"] for r in out}
        self.assertEqual(got, {-2000: 1, -1000: 2, 0: 1})
        first = out[0]
        self.assertEqual(first["start_time"], "1969-12-31T23:59:58.000Z")
        self.assertEqual(first["end_time"], "1969-12-31T23:59:59.000Z")

    def test_two_field_key(self):
        spec = {"name": "k2", "size_ms": 60000, "slide_ms": 60000, "key": ["src_ip", "dst_port"],
                "aggs": [("sum", "packets"), ("distinct", "dst_ip")]}
        recs = [rec(1, dport=443, packets=2, dst="1.1.1.1"), rec(2, dport=443, packets=3, dst="1.1.1.2"),
                rec(3, dport=53, packets=1), rec(4, src="::ffff:10.0.0.1", dport=443, packets=5,
                                                 dst="1.1.1.1")]
        out = nta_batch.compute(recs, [spec])
        got = by_ident(out)
        r443 = got[("k2", 0, (("dst_port", "443"), ("src_ip", "10.0.0.1")))]
        self.assertEqual(r443["key"], {"src_ip": "10.0.0.1", "dst_port": "443"})
        self.assertEqual((r443["count"], r443["sum_packets"], r443["distinct_dst_ip"]), (3, 10, 2))
        r53 = got[("k2", 0, (("dst_port", "53"), ("src_ip", "10.0.0.1")))]
        self.assertEqual((r53["count"], r53["sum_packets"]), (1, 1))
        self.assertEqual(len(out), 2)

    def test_unkeyed_multiple_specs(self):
        specs = [{"name": "a", "size_ms": 10, "slide_ms": 10, "key": [], "aggs": [("max", "proto")]},
                 {"name": "b", "size_ms": 20, "slide_ms": 20, "key": ["proto"],
                  "aggs": [("sum", "bytes")]}]
        recs = [rec(1, proto=6, nbytes=5), rec(12, proto=17, nbytes=6)]
        out = nta_batch.compute(recs, specs)
        self.assertEqual([(r["window"], r["start"]) for r in out],
                         [("a", 0), ("a", 10), ("b", 0), ("b", 0)])
        self.assertEqual(out[0]["key"], {})
        self.assertEqual(out[1]["max_proto"], 17)
        self.assertEqual({r["key"]["proto"]: r["sum_bytes"] for r in out[2:]}, {"6": 5, "17": 6})

    def test_bad_spec(self):
        with self.assertRaises(ValueError):
            nta_batch.compute([rec(1)], [{"name": "x", "size_ms": 0, "slide_ms": 1}])
        with self.assertRaises(ValueError):
            nta_batch.compute([rec(1)], [{"name": "x", "size_ms": 1, "slide_ms": 1,
                                          "aggs": [("sum", "src_ip")]}])
        with self.assertRaises(ValueError):
            nta_batch.compute([rec(1)], [{"name": "x", "size_ms": 1, "slide_ms": 1,
                                          "key": ["src_ip", "dst_ip", "proto"]}])


class LateFilter(unittest.TestCase):
    def test_tumbling(self):
        # size 10, lateness 5. Watermark after each record: -4, 7, 7, 15, 15.
        # E before each: -inf, -10, 0, 0, 10, 10 -> ts 9 (last) is late.
        spec = {"name": "t", "size_ms": 10, "slide_ms": 10, "key": [], "aggs": []}
        recs = [rec(1), rec(12), rec(3), rec(20), rec(14), rec(9)]
        acc, late = nta_batch.late_filter(recs, [spec], 5)
        self.assertEqual([r["ts"] for r in acc["t"]], [1, 12, 3, 20, 14])
        self.assertEqual(late, {"t": 1})
        out = nta_batch.expected(recs, [spec], lateness_ms=5)
        self.assertEqual({r["start"]: r["count"] for r in out}, {0: 2, 10: 2, 20: 1})
        self.assertEqual({r["start"]: r["count"] for r in nta_batch.expected(recs, [spec])},
                         {0: 3, 10: 2, 20: 1})

    def test_per_spec(self):
        # Watermark 24 (ts 24, lateness 0) when ts 17 arrives: tumbling 10 has
        # E = 20 (late); size 15 slide 10 has E = 15 (accepted, in [10,25)).
        specs = [{"name": "tum", "size_ms": 10, "slide_ms": 10, "key": [], "aggs": []},
                 {"name": "sl", "size_ms": 15, "slide_ms": 10, "key": [], "aggs": []}]
        recs = [rec(24), rec(17), rec(14)]
        acc, late = nta_batch.late_filter(recs, specs, 0)
        self.assertEqual([r["ts"] for r in acc["tum"]], [24])
        self.assertEqual([r["ts"] for r in acc["sl"]], [24, 17])
        self.assertEqual(late, {"tum": 2, "sl": 1})

    def test_watermark_not_lowered_by_late(self):
        # A late record does not move the watermark back; equal ts is not late.
        spec = {"name": "t", "size_ms": 10, "slide_ms": 10, "key": [], "aggs": []}
        recs = [rec(30), rec(5), rec(30), rec(29), rec(19)]
        acc, late = nta_batch.late_filter(recs, [spec], 0)
        self.assertEqual([r["ts"] for r in acc["t"]], [30, 30])
        self.assertEqual(late["t"], 3)

    def test_negative_watermark(self):
        spec = {"name": "t", "size_ms": 10, "slide_ms": 10, "key": [], "aggs": []}
        # watermark -11 after ts -1 (lateness 10): E = -20, so -20 is kept, -21 late.
        acc, late = nta_batch.late_filter([rec(-1), rec(-20), rec(-21)], [spec], 10)
        self.assertEqual([r["ts"] for r in acc["t"]], [-1, -20])
        self.assertEqual(late["t"], 1)


class Compare(unittest.TestCase):
    def setUp(self):
        spec = {"name": "w", "size_ms": 10, "slide_ms": 10, "key": ["src_ip"],
                "aggs": [("sum", "bytes"), ("mean", "bytes"), ("distinct", "dst_port")]}
        recs = [rec(1, dport=p, nbytes=p) for p in range(1, 201)] + [rec(12, src="10.0.0.3", nbytes=3)]
        self.expected = nta_batch.compute(recs, [spec])

    def test_identical(self):
        rep = nta_batch.compare(self.expected, copy.deepcopy(list(reversed(self.expected))))
        self.assertTrue(rep.ok, str(rep))
        self.assertEqual(rep.n_matched, 2)
        nta_batch.assert_equal(self.expected, copy.deepcopy(self.expected))

    def test_missing_unexpected_duplicate(self):
        actual = copy.deepcopy(self.expected[:1])
        extra = copy.deepcopy(self.expected[0])
        extra["key"] = {"src_ip": "10.9.9.9"}
        actual += [extra, copy.deepcopy(extra)]
        rep = nta_batch.compare(self.expected, actual)
        self.assertFalse(rep.ok)
        self.assertEqual(len(rep.missing), 1)
        self.assertEqual(len(rep.unexpected), 1)
        self.assertEqual(len(rep.duplicates), 1)
        text = str(rep)
        self.assertIn("missing: w start=10 key={src_ip=10.0.0.3}", text)
        self.assertIn("unexpected: w start=0 key={src_ip=10.9.9.9}", text)
        self.assertIn("duplicate in actual (2 times)", text)

    def test_exact_fields(self):
        actual = copy.deepcopy(self.expected)
        actual[0]["sum_bytes"] += 1
        actual[1]["count"] = "1"
        actual[1]["end_time"] = "1970-01-01T00:00:00.020"
        rep = nta_batch.compare(self.expected, actual)
        self.assertEqual(len(rep.mismatches), 3, str(rep))
        with self.assertRaises(AssertionError) as cm:
            nta_batch.assert_equal(self.expected, actual)
        self.assertIn("sum_bytes expected 20100, got 20101", str(cm.exception))

    def test_mean_tolerance(self):
        actual = copy.deepcopy(self.expected)
        actual[0]["mean_bytes"] *= 1 + 1e-12
        self.assertTrue(nta_batch.compare(self.expected, actual).ok)
        actual[0]["mean_bytes"] *= 1 + 1e-6
        self.assertFalse(nta_batch.compare(self.expected, actual).ok)

    def test_distinct_tolerance(self):
        actual = copy.deepcopy(self.expected)
        actual[0]["distinct_dst_port"] = 205  # 2.5% off 200
        rep = nta_batch.compare(self.expected, actual)
        self.assertTrue(rep.ok, str(rep))
        self.assertAlmostEqual(rep.worst_distinct_rel_err, 0.025)
        self.assertIn("expected 200, got 205", rep.worst_distinct_where)
        actual[0]["distinct_dst_port"] = 190  # 5% off
        self.assertFalse(nta_batch.compare(self.expected, actual).ok)
        self.assertTrue(nta_batch.compare(self.expected, actual, distinct_rel_tol=0.06).ok)

    def test_fields(self):
        actual = copy.deepcopy(self.expected)
        actual[0]["note"] = "x"
        del actual[1]["mean_bytes"]
        rep = nta_batch.compare(self.expected, actual)
        self.assertEqual(len(rep.mismatches), 2, str(rep))
        self.assertIn("unexpected field note", str(rep))
        self.assertIn("field mean_bytes missing", str(rep))
        del actual[1]
        self.assertTrue(nta_batch.compare(self.expected[:1], actual, ignore_fields=("note",)).ok)

    def test_first_ten_differences(self):
        actual = []
        expected = []
        for i in range(15):
            r = copy.deepcopy(self.expected[0])
            r["start"] = i * 10
            expected.append(r)
        with self.assertRaises(AssertionError) as cm:
            nta_batch.assert_equal(expected, actual)
        msg = str(cm.exception)
        self.assertEqual(msg.count("missing:"), 10)
        self.assertIn("and 5 more", msg)


if __name__ == "__main__":
    unittest.main()

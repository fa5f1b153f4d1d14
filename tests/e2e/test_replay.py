"""nta-run --replay over the real captures and flow logs in the shared data
directory, without Kafka: window results against nta_batch over records read
by the independent readers of traffic_ref.py; the data README's facts about
each file; bad and cut files; pacing; the command line."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import nta_batch  # noqa: E402
import traffic_ref as ref  # noqa: E402

# Traffic per second, fan-out per source, fan-in per destination (sliding),
# TCP flag mix, services: between them every field of every record counts.
SPECS = [
    {"name": "traffic", "size_ms": 1000, "slide_ms": 1000, "key": [],
     "aggs": [("sum", "bytes"), ("sum", "packets")]},
    {"name": "fanout", "size_ms": 10000, "slide_ms": 10000, "key": ["src_ip"],
     "aggs": [("distinct", "dst_port"), ("sum", "bytes")]},
    {"name": "fanin", "size_ms": 10000, "slide_ms": 5000, "key": ["dst_ip"],
     "aggs": [("distinct", "src_ip"), ("sum", "packets")]},
    {"name": "flags", "size_ms": 10000, "slide_ms": 10000, "key": ["tcp_flags"],
     "aggs": [("sum", "packets")]},
    {"name": "services", "size_ms": 60000, "slide_ms": 60000, "key": ["proto", "dst_port"],
     "aggs": [("sum", "bytes"), ("distinct", "src_port")]},
]

# Exactness needs windows that close on event time alone.
EXACT = {"lateness": '"1h"', "idle_timeout": '"1h"'}

DAY = 86400000


def replay(path, specs, *args, check=True, extra_input=None):
    """Results and the completed process of a flat-out replay of path."""
    opts = dict(EXACT)
    opts.update(extra_input or {})
    script = h.pipeline_script(specs, opts, "processed-data")
    try:
        p = subprocess.run([h.NTA_RUN, "--replay", path, "--as-fast-as-possible"] + list(args) +
                           [script], capture_output=True, text=True, timeout=300)
    finally:
        os.unlink(script)
    if check and p.returncode != 0:
        raise AssertionError("nta-run exited %d:\n%s" % (p.returncode, p.stderr[-3000:]))
    return [json.loads(l) for l in p.stdout.splitlines()], p


def one(results, window, **key):
    got = [r for r in results if r["window"] == window and r["key"] == key]
    assert len(got) == 1, "%d results for %s %s" % (len(got), window, key)
    return got[0]


class ReplayMatchesBatchTest(unittest.TestCase):
    """Every shared file, read by nta and by the reference reader."""

    def check(self, path, records, *args):
        got, p = replay(path, SPECS, *args)
        h.assert_clean_log(p.stderr)
        self.assertGreater(len(records), 0)
        self.assertIn(", %d records" % len(records), p.stderr)
        nta_batch.assert_equal(nta_batch.compute(records, SPECS), got)

    def test_masscan_packets(self):
        packets, truncated = ref.read_pcap(ref.MASSCAN)
        self.assertFalse(truncated)
        self.check(ref.MASSCAN, packets, "--packets")

    def test_masscan_flows(self):
        packets, _ = ref.read_pcap(ref.MASSCAN)
        self.check(ref.MASSCAN, ref.build_flows(packets), "--flows")

    def test_synflood_packets(self):
        packets, _ = ref.read_pcap(ref.SYNFLOOD)
        self.check(ref.SYNFLOOD, packets)

    def test_synflood_flows_short_timeouts(self):
        # Timeouts shorter than the capture, so idle and active expiry both
        # happen mid-file (the defaults would only flush at the end).
        packets, _ = ref.read_pcap(ref.SYNFLOOD)
        self.check(ref.SYNFLOOD, ref.build_flows(packets, active_ms=5000, idle_ms=2000),
                   "--flows", "--flow-active-timeout", "5s", "--flow-idle-timeout", "2s")

    def test_zeek_json(self):
        self.check(ref.ZEEK, ref.read_zeek_json(ref.ZEEK))

    def test_cic_portscan(self):
        self.check(ref.CIC_SCAN, ref.read_cic(ref.CIC_SCAN))

    def test_cic_benign(self):
        self.check(ref.CIC_BENIGN, ref.read_cic(ref.CIC_BENIGN))


class DataReadmeFactsTest(unittest.TestCase):
    """What ../shared/data/README.md says each file holds, seen in nta's
    windows (one window spanning each whole file)."""

    def test_masscan_one_source_1001_ports(self):
        specs = [
            {"name": "syn", "size_ms": DAY, "slide_ms": DAY, "key": ["src_ip"],
             "aggs": [("distinct", "dst_port"), ("distinct", "dst_ip")], "where": {"tcp_flags": [2]}},
            {"name": "rst", "size_ms": DAY, "slide_ms": DAY, "key": [],
             "aggs": [("distinct", "src_ip")], "where": {"tcp_flags": [4]}},
            {"name": "span", "size_ms": 1000, "slide_ms": 1000, "key": [], "aggs": []},
        ]
        got, _ = replay(ref.MASSCAN, specs)
        syn = [r for r in got if r["window"] == "syn"]
        self.assertEqual(len(syn), 1, "one scanning source")
        self.assertEqual(syn[0]["count"], 1001)
        self.assertLessEqual(abs(syn[0]["distinct_dst_port"] - 1001), 1001 * 0.02)
        self.assertEqual(syn[0]["distinct_dst_ip"], 1)
        self.assertEqual(one(got, "rst")["count"], 4)
        seconds = sorted(r["start"] for r in got if r["window"] == "span")
        self.assertLessEqual((seconds[-1] - seconds[0]) / 1000, 10)

    def test_synflood_distinct_sources(self):
        specs = [{"name": "victim", "size_ms": DAY, "slide_ms": DAY, "key": ["dst_ip", "dst_port"],
                  "aggs": [("distinct", "src_ip")], "where": {"tcp_flags": [2]}},
                 {"name": "span", "size_ms": 100, "slide_ms": 100, "key": [], "aggs": []}]
        got, _ = replay(ref.SYNFLOOD, specs)
        v = one(got, "victim", dst_ip="10.10.10.10", dst_port="25565")
        self.assertEqual(v["count"], 37841)
        self.assertLessEqual(abs(v["distinct_src_ip"] - 37623), 37623 * 0.05)
        starts = sorted(r["start"] for r in got if r["window"] == "span")
        self.assertAlmostEqual((starts[-1] - starts[0]) / 1000, 23.7, delta=0.2)

    def test_zeek_top_scanner(self):
        records = ref.read_zeek_json(ref.ZEEK)
        specs = [{"name": "hosts", "size_ms": DAY, "slide_ms": DAY, "key": ["src_ip"],
                  "aggs": [("distinct", "dst_ip")]}]
        got, _ = replay(ref.ZEEK, specs)
        top = max(got, key=lambda r: r["distinct_dst_ip"])
        self.assertEqual(top["key"]["src_ip"], "172.16.1.11")
        exact = len(set(r["dst_ip"] for r in records if r["src_ip"] == "172.16.1.11"))
        self.assertGreaterEqual(exact, 182)
        self.assertLessEqual(abs(top["distinct_dst_ip"] - exact), exact * 0.02)
        self.assertEqual(sum(r["count"] for r in got), 4504)

    def test_cic_portscan_pair(self):
        specs = [{"name": "pair", "size_ms": DAY, "slide_ms": DAY, "key": ["src_ip", "dst_ip"],
                  "aggs": [("distinct", "dst_port")]}]
        got, p = replay(ref.CIC_SCAN, specs)
        self.assertIn("sorted by time", p.stderr)
        pair = one(got, "pair", src_ip="172.16.0.1", dst_ip="192.168.10.50")
        self.assertEqual(pair["count"], 2500)
        self.assertLessEqual(abs(pair["distinct_dst_port"] - 917), 917 * 0.02)


class BadFilesTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="nta-replay-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def cut(self, src, nbytes, name):
        path = os.path.join(self.dir, name)
        with open(src, "rb") as f, open(path, "wb") as g:
            g.write(f.read(nbytes))
        return path

    def test_cut_capture_processes_what_was_read(self):
        path = self.cut(ref.SYNFLOOD, 1000000, "cut.pcap")
        packets, truncated = ref.read_pcap(path)
        self.assertTrue(truncated)
        got, p = replay(path, SPECS, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr, r"cut\.pcap: packet %d \(byte offset \d+\): truncated" %
                         (len(packets) + 1))
        h.assert_clean_log(p.stderr)
        nta_batch.assert_equal(nta_batch.compute(packets, SPECS), got)

    def test_cut_capture_in_flow_mode(self):
        path = self.cut(ref.MASSCAN, 40000, "cut.pcap")
        packets, _ = ref.read_pcap(path)
        got, p = replay(path, SPECS, "--flows", check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        nta_batch.assert_equal(nta_batch.compute(ref.build_flows(packets), SPECS), got)

    def test_cut_zeek_log(self):
        with open(ref.ZEEK) as f:
            text = f.read()
        cut_at = text.index("\n", 200000) + 60  # inside a line
        path = self.cut(ref.ZEEK, cut_at, "cut.log")
        whole_lines = text[:cut_at].count("\n")
        # The reference reads the complete lines only.
        tmp = os.path.join(self.dir, "whole.log")
        with open(tmp, "w") as g:
            g.write(text[:text.rindex("\n", 0, cut_at) + 1])
        got, p = replay(path, SPECS, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("cut.log: line %d: not a JSON object" % (whole_lines + 1), p.stderr)
        nta_batch.assert_equal(nta_batch.compute(ref.read_zeek_json(tmp), SPECS), got)

    def test_bad_cic_row(self):
        with open(ref.CIC_SCAN) as f:
            lines = f.read().splitlines()
        cells = lines[101].split(",")
        self.assertEqual(cells[2], "172.16.0.1")  # Src IP
        cells[2] = "172.16.0.999"
        lines[101] = ",".join(cells)
        path = os.path.join(self.dir, "bad.csv")
        with open(path, "w") as g:
            g.write("\n".join(lines) + "\n")
        got, p = replay(path, SPECS, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("bad.csv: line 102: bad Src IP or Dst IP", p.stderr)
        # Sorted replay: the 100 rows before the bad one are still processed.
        self.assertEqual(sum(r["count"] for r in got if r["window"] == "traffic"), 100)

    def test_not_a_traffic_file(self):
        path = os.path.join(self.dir, "notes.txt")
        with open(path, "w") as g:
            g.write("hello\n")
        for args, want in (([], "not pcap/pcapng"),
                           (["--replay-format", "pcap"], "not a readable pcap")):
            _, p = replay(path, SPECS, *args, check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn(path, p.stderr)
            self.assertIn(want, p.stderr)
        _, p = replay(os.path.join(self.dir, "missing.pcap"), SPECS, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("missing.pcap: No such file", p.stderr)


class PacingTest(unittest.TestCase):

    def write_records(self, gaps_ms):
        f = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
        ts = 1700000000000
        for g in gaps_ms:
            ts += g
            f.write(json.dumps({"ts": ts, "src_ip": "10.0.0.1", "dst_ip": "10.0.0.2",
                                "bytes": 100}) + "\n")
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def timed(self, *args):
        script = h.pipeline_script(SPECS[:1], EXACT, "processed-data")
        self.addCleanup(os.unlink, script)
        t = time.monotonic()
        p = subprocess.run([h.NTA_RUN] + list(args) + [script], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return time.monotonic() - t, [json.loads(l) for l in p.stdout.splitlines()]

    def test_original_timing_and_speed(self):
        path = self.write_records([0, 600, 600, 600])  # 1.8 s of event time
        slow, got1 = self.timed("--replay", path)
        fast, got2 = self.timed("--replay", path, "--speed", "6")
        flat, got3 = self.timed("--replay", path, "--as-fast-as-possible")
        self.assertGreaterEqual(slow, 1.8)
        self.assertLess(slow, 4)
        self.assertGreaterEqual(fast, 0.3)
        self.assertLess(fast, slow - 1.0)
        self.assertLess(flat, slow - 1.0)
        self.assertEqual(got1, got2)
        self.assertEqual(got1, got3)

    def test_idle_close_follows_replay_time(self):
        # Two bursts 3 s apart (event time) replayed 3x faster, with a 1.5 s
        # idle timeout: event time must not run ahead of the file, so no
        # record of the second burst is late even though the first burst's
        # window closes during the gap.
        path = self.write_records([0, 10, 10, 3000, 10, 10])
        script = h.pipeline_script(SPECS[:1], {"lateness": '"0s"', "idle_timeout": '"1500ms"'},
                                   "processed-data")
        self.addCleanup(os.unlink, script)
        p = subprocess.run([h.NTA_RUN, "--replay", path, "--speed", "3", script],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(" 0 late", p.stderr)
        self.assertEqual(sum(json.loads(l)["count"] for l in p.stdout.splitlines()), 6)


class CommandLineTest(unittest.TestCase):

    def run_args(self, *args):
        return subprocess.run([h.NTA_RUN] + list(args), capture_output=True, text=True,
                              timeout=60)

    def test_usage_errors(self):
        script = h.pipeline_script(SPECS[:1], EXACT, "processed-data")
        self.addCleanup(os.unlink, script)
        cases = [
            (["--replay", ref.MASSCAN, "--replay-format", "netflow", script], "--replay-format"),
            (["--replay", ref.MASSCAN, "--speed", "0", script], "--speed"),
            (["--replay", ref.MASSCAN, "--flow-idle-timeout", "soon", script], "flow-idle"),
            (["--replay", ref.MASSCAN, "--max-flows", "0", script], "--max-flows"),
            (["--replay", ref.MASSCAN, "--publish", "t", script], "--publish needs"),
            (["--publish", "t", "-b", "127.0.0.1:1"], "--publish needs"),
            (["-b", "127.0.0.1:1", "--replay", ref.MASSCAN, script], "-b goes with --publish"),
            (["--replay", ref.MASSCAN, h.GEN], "needs a pipeline script"),
        ]
        for args, want in cases:
            p = self.run_args(*args)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(want, p.stderr)

    def test_help_lists_replay_options(self):
        out = self.run_args("--help").stdout
        for opt in ("--replay FILE", "--replay-format", "--flows", "--packets", "--speed",
                    "--as-fast-as-possible", "--sort", "--no-sort", "--publish TOPIC",
                    "--flow-active-timeout", "--flow-idle-timeout", "--max-flows"):
            self.assertIn(opt, out)

    def test_no_sort_leaves_disorder_to_lateness(self):
        # The CIC sample is shuffled over hours: streamed with a small
        # lateness most of it is late; sorted (the default) none is.
        specs = SPECS[:1]
        got, p = replay(ref.CIC_SCAN, specs, "--no-sort",
                        extra_input={"lateness": '"5s"'})
        late = int(p.stderr.split(" late,")[0].rsplit(" ", 1)[-1])
        self.assertGreater(late, 1000)
        got, p = replay(ref.CIC_SCAN, specs, extra_input={"lateness": '"5s"'})
        self.assertIn(" 0 late", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

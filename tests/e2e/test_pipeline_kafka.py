"""End to end against the real broker: records -> network-traffic-like topic
-> nta-run -> output topic, read back with an independent client and compared
record for record with the batch computation in nta_batch.py.

Each test uses its own topics, so the tests share one broker (started by the
ctest fixture) without seeing each other's data.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import nta_batch  # noqa: E402

START = 1700000000000  # fixed event time: the generator is deterministic from it


class PipelineKafkaTest(unittest.TestCase):

    def topics(self, partitions=3):
        name = h.unique(self._testMethodName)
        t = {"in": name + "-in", "out": name + "-out", "dlq": name + "-dlq",
             "late": name + "-late"}
        h.create_topics((t["in"], partitions), (t["out"], 1), (t["dlq"], 1), (t["late"], 1))
        return t

    def run_pipeline(self, t, specs, fmt="auto", lateness="1h", extra_args=(), extra_input=None,
                     group=None):
        opts = {"topic": h.lua_str(t["in"]), "format": h.lua_str(fmt),
                "lateness": h.lua_str(lateness), "dlq": h.lua_str(t["dlq"]),
                "late_topic": h.lua_str(t["late"]),
                # Exactness needs a watermark driven by event time alone.
                "idle_timeout": '"1h"'}
        opts.update(extra_input or {})
        script = h.pipeline_script(specs, opts, t["out"])
        p = h.run_nta(["-b", h.brokers(), "-g", group or h.unique("nta"), "--from", "beginning",
                       "--until-end"] + list(extra_args) + [script])
        h.assert_clean_log(p.stderr)
        return p

    def check_equal(self, expected, actual):
        nta_batch.assert_equal(expected, actual)
        self.assertGreater(len(expected), 0)

    def test_json_records_match_batch(self):
        t = self.topics()
        h.generate(t["in"], "rate=2000", "count=60000", "start=%d" % START, "format=json",
                   "inject=portscan@5+10,flood@15+5")
        self.run_pipeline(t, h.STANDARD_SPECS)
        records = [h.record_from_json(m["value"]) for m in h.consume_all(t["in"])]
        self.assertEqual(len(records), 60000)
        self.check_equal(nta_batch.compute(records, h.STANDARD_SPECS), h.results(t["out"]))
        self.assertEqual(h.consume_all(t["dlq"]), [])

    def test_transactional_input_reaches_its_end(self):
        """Input written in transactions ends each partition with a commit
        marker, so the high watermark stays one past the last record: the
        run must still see every partition's end and finish (--until-end),
        with every record aggregated."""
        from confluent_kafka import Producer

        t = self.topics()
        lines = h.run_nta(["--fast", h.GEN, "rate=2000", "count=20000",
                           "start=%d" % START]).stdout.splitlines()
        p = Producer({"bootstrap.servers": h.brokers(), "transactional.id": h.unique("txn"),
                      "linger.ms": 5})
        p.init_transactions(30)
        for part in range(3):
            p.begin_transaction()
            for line in lines[part::3]:
                p.produce(t["in"], value=line, partition=part)
                p.poll(0)
            p.commit_transaction(60)
        started = time.monotonic()
        proc = self.run_pipeline(t, h.STANDARD_SPECS)
        self.assertLess(time.monotonic() - started, 60)
        self.assertIn("nta: 20000 records in, 20000 aggregated", proc.stderr)
        records = [h.record_from_json(l) for l in lines]
        self.check_equal(nta_batch.compute(records, h.STANDARD_SPECS), h.results(t["out"]))

    def test_idle_commits_are_skipped(self):
        """With an hour of lateness no window closes before the end of the
        input, so no offset moves once each partition's first one is
        committed, and nothing is produced: the run commits those first
        offsets and then once at the end, however short the commit
        interval, and that last commit holds every result and the input's
        end offsets."""
        from confluent_kafka import Consumer, TopicPartition

        t = self.topics()
        h.generate(t["in"], "rate=2000", "count=100000", "start=%d" % START, "format=json")
        group = h.unique("idle")
        p = self.run_pipeline(t, h.STANDARD_SPECS, extra_args=["--commit-interval", "10"],
                              group=group)
        m = re.search(r"transactions: (\d+) committed", p.stderr)
        self.assertIsNotNone(m, p.stderr)
        self.assertLessEqual(int(m.group(1)), 4, p.stderr)
        records = [h.record_from_json(v["value"]) for v in h.consume_all(t["in"])]
        self.check_equal(nta_batch.compute(records, h.STANDARD_SPECS), h.results(t["out"]))
        c = Consumer({"bootstrap.servers": h.brokers(), "group.id": group})
        try:
            parts = [TopicPartition(t["in"], i) for i in range(3)]
            committed = c.committed(parts, timeout=30)
            for tp in committed:
                _, hi = c.get_watermark_offsets(TopicPartition(t["in"], tp.partition),
                                                timeout=30)
                self.assertEqual(tp.offset, hi)
        finally:
            c.close()

    def test_csv_records_take_the_message_time(self):
        t = self.topics()
        h.generate(t["in"], "rate=1000", "count=20000", "start=%d" % START, "format=csv")
        self.run_pipeline(t, h.STANDARD_SPECS, fmt="csv")
        records = [h.record_from_csv(m["value"], m["ts"]) for m in h.consume_all(t["in"])]
        self.assertEqual(len(records), 20000)
        self.check_equal(nta_batch.compute(records, h.STANDARD_SPECS), h.results(t["out"]))

    def test_csv_with_header_and_columns(self):
        t = self.topics(partitions=1)
        rows = [b"ts,src_ip,dst_ip,dst_port,bytes"]
        records = []
        for i in range(3000):
            r = {"ts": START + i * 7, "src_ip": "10.0.%d.%d" % (i % 3, i % 50),
                 "dst_ip": "192.0.2.%d" % (i % 20), "src_port": 0, "dst_port": 1000 + i % 37,
                 "proto": 0, "bytes": 100 + i, "packets": 1, "tcp_flags": 0}
            records.append(r)
            rows.append(("%d,%s,%s,%d,%d" % (r["ts"], r["src_ip"], r["dst_ip"], r["dst_port"],
                                             r["bytes"])).encode())
        h.produce(t["in"], [(None, row, START) for row in rows])
        self.run_pipeline(t, h.STANDARD_SPECS, fmt="csv")
        self.check_equal(nta_batch.compute(records, h.STANDARD_SPECS), h.results(t["out"]))

    def test_goflow2_records(self):
        t = self.topics()
        h.generate(t["in"], "rate=1000", "count=20000", "start=%d" % START, "format=goflow2")
        self.run_pipeline(t, h.STANDARD_SPECS, fmt="goflow2")
        records = [h.record_from_goflow2(m["value"]) for m in h.consume_all(t["in"])]
        self.check_equal(nta_batch.compute(records, h.STANDARD_SPECS), h.results(t["out"]))

    def test_goflow2_sampling_rate_scales_counters(self):
        t = self.topics(partitions=1)
        msgs, records = [], []
        for i in range(500):
            o = {"type": "SFLOW_5", "time_received_ns": (START + i * 50) * 1000000,
                 "sampling_rate": 1 + i % 4, "src_addr": "10.1.0.%d" % (i % 9),
                 "dst_addr": "10.2.0.1", "bytes": 100 + i, "packets": 1 + i % 3, "proto": 17,
                 "src_port": 53, "dst_port": 40000 + i, "etype": 2048}
            msgs.append((None, json.dumps(o).encode(), None))
            records.append(h.record_from_goflow2(json.dumps(o)))
        h.produce(t["in"], msgs)
        self.run_pipeline(t, h.STANDARD_SPECS, fmt="auto")
        self.check_equal(nta_batch.compute(records, h.STANDARD_SPECS), h.results(t["out"]))

    def test_late_records_are_counted_and_forwarded(self):
        t = self.topics(partitions=1)
        specs = [s for s in h.STANDARD_SPECS if s["name"] in ("traffic", "fanout", "pairs")]
        lateness = 2000
        records = []
        # In time order, with every 50th record sent 15 s back in time: some
        # fall into windows already emitted, some only behind the watermark.
        for i in range(4000):
            ts = START + i * 20
            if i % 50 == 49:
                ts -= 15000
            records.append({"ts": ts, "src_ip": "10.0.0.%d" % (i % 7),
                            "dst_ip": "10.9.0.%d" % (i % 5), "src_port": 40000,
                            "dst_port": i % 300, "proto": 6, "bytes": 60 + i % 1000,
                            "packets": 1, "tcp_flags": 2})
        h.produce(t["in"], [(None, json.dumps(r).encode(), None) for r in records])
        p = self.run_pipeline(t, specs, lateness="%dms" % lateness)
        accepted, late = nta_batch.late_filter(records, specs, lateness)
        expected = []
        for s in specs:
            expected += nta_batch.compute(accepted[s["name"]], [s])
        self.check_equal(expected, h.results(t["out"]))
        self.assertGreater(sum(late.values()), 0)
        for s in specs:
            self.assertIn("window %s:" % s["name"], p.stderr)
            self.assertIn(", %d late," % late[s["name"]],
                          [l for l in p.stderr.splitlines() if "window %s:" % s["name"] in l][0])
        # One copy per record that was late for at least one window.
        late_ts = set()
        for s in specs:
            got = set(r["ts"] for r in accepted[s["name"]])
            late_ts |= set(r["ts"] for r in records) - got
        forwarded = h.consume_all(t["late"])
        self.assertEqual(len(forwarded), len(late_ts))
        self.assertTrue(all("nta-late" in m["headers"] for m in forwarded))

    def test_malformed_records_go_to_the_dlq(self):
        t = self.topics(partitions=2)
        bad = [b"", b"{", b"[1,2,3]", b'{"src_ip":"10.0.0.1"}', b'{"src_ip":"300.1.1.1",'
               b'"dst_ip":"10.0.0.2","ts":1700000000000}', b"not,a,record,at,all,really",
               b'{"src_ip":"10.0.0.1","dst_ip":"10.0.0.2","bytes":-5,"ts":1700000000000}',
               b'{"src_ip":"10.0.0.1","dst_ip":"10.0.0.2","ts":"yesterday"}',
               b"\xff\xfe\x00garbage"]
        good = []
        msgs = []
        for i in range(3000):
            r = {"ts": START + i * 10, "src_ip": "10.0.1.%d" % (i % 11),
                 "dst_ip": "10.0.2.%d" % (i % 13), "src_port": 5000, "dst_port": 80,
                 "proto": 6, "bytes": 500 + i, "packets": 2, "tcp_flags": 27}
            good.append(r)
            msgs.append((b"k%d" % (i % 2), json.dumps(r).encode(), None))
            if i % 100 == 0:
                msgs.append((b"k%d" % (i % 2), bad[(i // 100) % len(bad)], None))
        nbad = len(msgs) - len(good)
        h.produce(t["in"], msgs)
        p = self.run_pipeline(t, h.STANDARD_SPECS, fmt="json")
        dlq = h.consume_all(t["dlq"])
        self.assertEqual(len(dlq), nbad)
        self.assertTrue(all(m["headers"].get("nta-error") for m in dlq))
        self.assertEqual(sorted(m["value"] or b"" for m in dlq),
                         sorted(v for _, v, _ in msgs if v in bad))
        self.assertIn("%d bad" % nbad, p.stderr)
        self.check_equal(nta_batch.compute(good, h.STANDARD_SPECS), h.results(t["out"]))

    def test_consumer_restart_loses_no_window(self):
        t = self.topics()
        group = h.unique("restart")
        script = h.pipeline_script(h.STANDARD_SPECS, {
            "topic": h.lua_str(t["in"]), "lateness": '"1h"', "idle_timeout": '"1h"'}, t["out"])
        h.generate(t["in"], "rate=1000", "count=30000", "start=%d" % START)
        # First run: stopped (SIGTERM) while windows are open.
        p = subprocess.Popen([h.NTA_RUN, "-b", h.brokers(), "-g", group, script],
                             stderr=subprocess.PIPE, text=True)
        time.sleep(6)
        p.send_signal(signal.SIGTERM)
        _, err1 = p.communicate(timeout=120)
        self.assertEqual(p.returncode, 0, err1)
        h.assert_clean_log(err1)
        first = h.results(t["out"])
        # More input arrives while it is down; the second run resumes from the
        # committed offsets and drains.
        h.generate(t["in"], "rate=1000", "count=30000", "start=%d" % (START + 30000),
                   "seed=2")
        p2 = h.run_nta(["-b", h.brokers(), "-g", group, "--until-end", script])
        h.assert_clean_log(p2.stderr)
        records = [h.record_from_json(m["value"]) for m in h.consume_all(t["in"])]
        self.assertEqual(len(records), 60000)
        got = h.results(t["out"])
        self.assertGreater(len(got), len(first))
        self.check_equal(nta_batch.compute(records, h.STANDARD_SPECS), got)


if __name__ == "__main__":
    unittest.main(verbosity=2)

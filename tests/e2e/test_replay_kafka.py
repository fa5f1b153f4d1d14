"""Replay into Kafka against the real broker: a file published with
nta-run --publish, then consumed by a pipeline, gives exactly the window
results of the same file replayed straight into the pipeline; the published
messages are keyed by source, stamped with the record time, and paced."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import traffic_ref as ref  # noqa: E402
from test_replay import EXACT, SPECS, replay  # noqa: E402


def by_identity(results):
    return sorted(results, key=lambda r: (r["window"], r["start"], sorted(r["key"].items())))


class ReplayKafkaTest(unittest.TestCase):

    def topics(self):
        name = h.unique(self._testMethodName)
        t = {"in": name + "-in", "out": name + "-out"}
        h.create_topics((t["in"], 3), (t["out"], 1))
        return t

    def publish(self, path, topic, *args):
        p = h.run_nta(["-b", h.brokers(), "--replay", path, "--publish", topic] + list(args))
        h.assert_clean_log(p.stderr)
        return p

    def pipeline(self, t):
        opts = dict(EXACT, topic=h.lua_str(t["in"]))
        script = h.pipeline_script(SPECS, opts, t["out"])
        p = h.run_nta(["-b", h.brokers(), "-g", h.unique("nta"), "--from", "beginning",
                       "--until-end", script])
        os.unlink(script)
        h.assert_clean_log(p.stderr)
        return h.results(t["out"])

    def check_same_as_direct(self, path, *args):
        t = self.topics()
        self.publish(path, t["in"], "--as-fast-as-possible", *args)
        direct, _ = replay(path, SPECS, *args)
        self.assertGreater(len(direct), 0)
        self.assertEqual(by_identity(self.pipeline(t)), by_identity(direct))
        return t

    def test_capture_through_kafka_equals_direct(self):
        t = self.check_same_as_direct(ref.SYNFLOOD, "--flows", "--flow-idle-timeout", "2s")
        msgs = h.consume_all(t["in"])
        packets, _ = ref.read_pcap(ref.SYNFLOOD)
        flows = ref.build_flows(packets, idle_ms=2000)
        self.assertEqual(len(msgs), len(flows))
        for m in msgs:
            v = json.loads(m["value"])
            self.assertEqual(m["key"].decode(), v["src_ip"])
            self.assertEqual(m["ts"], v["ts"])

    def test_flow_log_through_kafka_equals_direct(self):
        self.check_same_as_direct(ref.ZEEK)

    def test_publish_paced(self):
        t = self.topics()
        packets, _ = ref.read_pcap(ref.MASSCAN)
        span_s = (packets[-1]["us"] - packets[0]["us"]) / 1e6
        start = time.monotonic()
        p = self.publish(ref.MASSCAN, t["in"], "--speed", "5")
        took = time.monotonic() - start
        self.assertGreaterEqual(took, span_s / 5)
        self.assertLess(took, span_s / 5 + 10)
        self.assertIn("published %d records" % len(packets), p.stderr)
        self.assertEqual(len(h.consume_all(t["in"])), len(packets))

    def test_publish_of_a_cut_file_fails_after_sending_what_was_read(self):
        t = self.topics()
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), h.unique("cut") + ".pcap")
        with open(ref.MASSCAN, "rb") as f, open(path, "wb") as g:
            g.write(f.read(30000))
        self.addCleanup(os.unlink, path)
        packets, truncated = ref.read_pcap(path)
        self.assertTrue(truncated)
        p = h.run_nta(["-b", h.brokers(), "--replay", path, "--publish", t["in"],
                       "--as-fast-as-possible"], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("packet %d" % (len(packets) + 1), p.stderr)
        self.assertEqual(len(h.consume_all(t["in"])), len(packets))


if __name__ == "__main__":
    unittest.main(verbosity=2)

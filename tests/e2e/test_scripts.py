"""nta-run driven by small Lua scripts, without Kafka: the in-process sources
(stdin, an embedded generator), script errors, on_window, and the command line.
Expected window results come from nta_batch.py, never from nta itself."""
import ipaddress
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import nta_batch  # noqa: E402

START = 1700000000000


def write_script(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    f.write(text)
    f.close()
    return f.name


def gen_lines(*args):
    p = h.run_nta(["--fast", h.GEN] + list(args))
    return p.stdout


class StdinPipelineTest(unittest.TestCase):

    def test_stdin_json_matches_batch(self):
        data = gen_lines("rate=2000", "count=40000", "start=%d" % START,
                         "inject=hscan@3+5,heavy@8+5")
        records = [h.record_from_json(l) for l in data.splitlines()]
        script = h.pipeline_script(h.STANDARD_SPECS, {"lateness": '"1h"'}, "processed-data")
        p = subprocess.run([h.NTA_RUN, script], input=data, capture_output=True, text=True,
                           timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        h.assert_clean_log(p.stderr)
        got = [json.loads(l) for l in p.stdout.splitlines()]
        nta_batch.assert_equal(nta_batch.compute(records, h.STANDARD_SPECS), got)

    def test_embedded_generator_matches_batch(self):
        args = ["rate=1500", "count=30000", "start=%d" % START, "inject=portscan@2+6"]
        records = [h.record_from_json(l) for l in gen_lines(*args).splitlines()]
        gen = ", ".join('"%s"' % a for a in [h.GEN] + args)
        script = h.pipeline_script(h.STANDARD_SPECS,
                                   {"lateness": '"1h"', "generator": "{ %s }" % gen},
                                   "processed-data")
        p = h.run_nta(["--fast", script])
        h.assert_clean_log(p.stderr)
        got = [json.loads(l) for l in p.stdout.splitlines()]
        nta_batch.assert_equal(nta_batch.compute(records, h.STANDARD_SPECS), got)

    def test_window_lane_changes_nothing(self):
        """With windows closing during the run and records arriving late,
        the windows the lane thread adds to give exactly what they give
        on the pipeline's thread (NTA_LANE=off): the same results in the
        same order, the same late counts. The late records must be late
        for some windows and not others."""
        lines = gen_lines("rate=2000", "count=40000", "start=%d" % START,
                          "inject=portscan@4+5").splitlines()
        # Every 40th record held back by 3000 records (1.5 s): late for the
        # 1 s lateness once a window it belongs to has closed.
        out = []
        held = []
        for i, line in enumerate(lines):
            if i % 40 == 0:
                held.append((i + 3000, line))
            else:
                out.append(line)
            while held and held[0][0] <= i:
                out.append(held.pop(0)[1])
        out.extend(l for _, l in held)
        data = "\n".join(out) + "\n"
        syn = {"name": "syn", "size_ms": 5000, "slide_ms": 1000, "key": ["src_ip", "dst_ip"],
               "aggs": [("distinct", "dst_port")], "where": {"proto": [6]}}
        script = h.pipeline_script(h.STANDARD_SPECS + [syn], {"lateness": '"1s"'},
                                   "processed-data")
        runs = {}
        for lane in ("off", "on"):
            env = dict(os.environ, NTA_LANE=lane)
            p = subprocess.run([h.NTA_RUN, script], input=data, capture_output=True,
                               text=True, timeout=300, env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
            h.assert_clean_log(p.stderr)
            summary = [l for l in p.stderr.splitlines() if "window" in l or "records in" in l]
            runs[lane] = (p.stdout, summary)
        self.assertGreater(len(runs["on"][0].splitlines()), 1000)
        self.assertRegex("\n".join(runs["on"][1]), r"[1-9][0-9]* late")
        self.assertEqual(runs["on"][1], runs["off"][1])
        self.assertEqual(runs["on"][0], runs["off"][0])

    def test_key_limit_overflows_into_other_with_totals_kept(self):
        data = gen_lines("rate=2000", "count=20000", "start=%d" % START)
        records = [h.record_from_json(l) for l in data.splitlines()]
        spec = {"name": "capped", "size_ms": 10000, "slide_ms": 10000, "key": ["src_ip"],
                "aggs": [("sum", "bytes")], "max_keys": 10}
        script = h.pipeline_script([spec], {"lateness": '"1h"'}, "processed-data")
        p = subprocess.run([h.NTA_RUN, script], input=data, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = [json.loads(l) for l in p.stdout.splitlines()]
        expected = nta_batch.compute(records, [dict(spec, max_keys=None)])
        for start in set(r["start"] for r in expected):
            exp = [r for r in expected if r["start"] == start]
            out = [r for r in got if r["start"] == start]
            self.assertLessEqual(len([r for r in out if r["key"]["src_ip"] != "(other)"]), 10)
            self.assertEqual(sum(r["count"] for r in exp), sum(r["count"] for r in out))
            self.assertEqual(sum(r["sum_bytes"] for r in exp), sum(r["sum_bytes"] for r in out))
            self.assertTrue(any(r["key"]["src_ip"] == "(other)" for r in out))
        self.assertRegex(p.stderr, r"window capped: .* [1-9]\d* overflow")

    def test_where_filters_records_per_window(self):
        data = gen_lines("rate=2000", "count=30000", "start=%d" % START,
                         "inject=portscan@2+5,amplification@8+4")
        records = [h.record_from_json(l) for l in data.splitlines()]
        syn = {"name": "syn", "size_ms": 5000, "slide_ms": 5000, "key": ["src_ip", "dst_ip"],
               "aggs": [("distinct", "dst_port")], "where": {"proto": [6], "tcp_flags": [2]}}
        udp = {"name": "udp_reflect", "size_ms": 5000, "slide_ms": 1000, "key": ["dst_ip"],
               "aggs": [("sum", "bytes")], "where": {"src_port": [53, 123], "proto": [17]}}
        script = h.pipeline_script([syn, udp], {"lateness": '"1h"'}, "processed-data")
        p = subprocess.run([h.NTA_RUN, script], input=data, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = [json.loads(l) for l in p.stdout.splitlines()]
        expected = []
        for spec in (syn, udp):
            kept = [r for r in records
                    if all(r[f] in vals for f, vals in spec["where"].items())]
            self.assertGreater(len(kept), 0)
            plain = {k: v for k, v in spec.items() if k != "where"}
            expected += nta_batch.compute(kept, [plain])
        nta_batch.assert_equal(expected, got)

    def test_where_address_prefixes_and_not_in(self):
        data = gen_lines("rate=2000", "count=30000", "start=%d" % START,
                         "inject=exfil@4+3:target=198.51.100.9")
        records = [h.record_from_json(l) for l in data.splitlines()]
        internal = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
        nets = [ipaddress.ip_network(n) for n in internal]

        def inside(addr):
            ip = ipaddress.ip_address(addr)
            return any(ip in n for n in nets)

        egress = {"name": "egress", "size_ms": 5000, "slide_ms": 1000,
                  "key": ["src_ip", "dst_ip"], "aggs": [("sum", "bytes")],
                  "where": {"src_ip": internal, "dst_ip": {"not_in": internal}}}
        # One host (/32 in prefix form and as a bare address) and a port
        # list negated.
        one = {"name": "one", "size_ms": 5000, "slide_ms": 5000, "key": ["dst_port"],
               "aggs": [("sum", "bytes")],
               "where": {"src_ip": ["10.0.2.20/32", "::ffff:10.0.3.7"], "proto": {"not_in": [17]}}}
        script = h.pipeline_script([egress, one], {"lateness": '"1h"'}, "processed-data")
        p = subprocess.run([h.NTA_RUN, script], input=data, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = [json.loads(l) for l in p.stdout.splitlines()]
        kept_egress = [r for r in records if inside(r["src_ip"]) and not inside(r["dst_ip"])]
        kept_one = [r for r in records if r["src_ip"] in ("10.0.2.20", "10.0.3.7")
                    and r["proto"] != 17]
        self.assertGreater(len(kept_egress), 1000)
        self.assertLess(len(kept_egress), len(records) * 0.8)
        self.assertGreater(len(kept_one), 10)
        expected = []
        for spec, kept in ((egress, kept_egress), (one, kept_one)):
            plain = {k: v for k, v in spec.items() if k != "where"}
            expected += nta_batch.compute(kept, [plain])
        nta_batch.assert_equal(expected, got)
        self.assertTrue(any(r["key"].get("dst_ip") == "198.51.100.9" for r in got))

    def test_unpublished_window_feeds_rules_only(self):
        data = gen_lines("rate=2000", "count=30000", "start=%d" % START,
                         "inject=portscan@4+5")
        records = [h.record_from_json(l) for l in data.splitlines()]
        pairs = {"name": "pairs", "size_ms": 5000, "slide_ms": 5000,
                 "key": ["src_ip", "dst_ip"], "aggs": [("distinct", "dst_port")]}
        total = {"name": "total", "size_ms": 5000, "slide_ms": 5000, "key": [],
                 "aggs": [("sum", "bytes")]}
        script = h.pipeline_script(
            [pairs, total], {"lateness": '"1h"'}, "processed-data",
            extra='window "quiet" { key = { "src_ip", "dst_ip" }, size = "5s",\n'
                  '  distinct = "dst_port", publish = false }\n'
                  'rule "scan" { window = "quiet", value = "distinct_dst_port", above = 100,\n'
                  '  severity = "warning", message = "{src_ip} {dst_ip}" }\n')
        p = subprocess.run([h.NTA_RUN, script], input=data, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = [json.loads(l) for l in p.stdout.splitlines()]
        results = [o for o in out if o["type"] == "window"]
        alerts = [o for o in out if o["type"] == "alert"]
        # "quiet" computes what "pairs" does, but only the rule sees it.
        expected = nta_batch.compute(records, [pairs, total])
        nta_batch.assert_equal(expected, results)
        n_pairs = len([r for r in expected if r["window"] == "pairs"])
        self.assertRegex(p.stderr, r"%d results out \(\+%d unpublished\)"
                         % (len(expected), n_pairs))
        scans = [(e["key"]["src_ip"], e["key"]["dst_ip"]) for e in expected
                 if e["window"] == "pairs" and e["distinct_dst_port"] > 100]
        self.assertGreater(len(scans), 0)
        self.assertEqual({(a["key"]["src_ip"], a["key"]["dst_ip"]) for a in alerts
                          if a["state"] == "raised"}, set(scans))

    def test_where_rejects_bad_prefixes(self):
        for bad, says in (('src_ip = "10.0.0.0/33"', "address prefixes"),
                          ('src_ip = "10.0.0.0/08"', "address prefixes"),
                          ('dst_ip = { not_in = {} }', "lists no value"),
                          ('dst_ip = { "10.0.0.0/8", not_in = "1.2.3.4" }', "not_in"),
                          ('proto = "6"', "number")):
            f = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
            f.write('input { format = "json" }\nwindow "w" { size = "1s", where = { %s } }\n'
                    % bad)
            f.close()
            p = subprocess.run([h.NTA_RUN, f.name], input="", capture_output=True, text=True,
                               timeout=60)
            os.unlink(f.name)
            self.assertNotEqual(p.returncode, 0, bad)
            self.assertIn(says, p.stderr, bad)

    def test_idle_input_still_closes_windows(self):
        script = h.pipeline_script(
            [{"name": "t", "size_ms": 1000, "slide_ms": 1000, "key": [], "aggs": []}],
            {"lateness": '"0s"', "idle_timeout": '"1s"', "format": '"json"'}, "processed-data")
        p = subprocess.Popen([h.NTA_RUN, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        now = int(time.time() * 1000)
        for i in range(5):
            p.stdin.write(('{"ts":%d,"src_ip":"10.0.0.1","dst_ip":"10.0.0.2"}\n'
                           % (now + i)).encode())
        p.stdin.flush()
        # No further input and stdin stays open: the window must close on the
        # wall clock, after about idle_timeout + window size.
        ready, _, _ = select.select([p.stdout], [], [], 10)
        if not ready:
            p.kill()
            p.communicate()
        self.assertTrue(ready, "no result within 10 s of input going quiet")
        line = json.loads(p.stdout.readline())
        self.assertEqual(line["count"], 5)
        p.stdin.close()
        p.wait(30)
        p.stdout.close()
        p.stderr.close()
        self.assertEqual(p.returncode, 0)

    def test_bad_records_on_stdin_are_counted(self):
        lines = ['{"ts":%d,"src_ip":"10.0.0.1","dst_ip":"10.0.0.2","bytes":10}' % (START + i)
                 for i in range(100)]
        lines[10] = "{oops"
        lines[20] = '{"ts":1,"src_ip":"10.0.0.1"}'
        script = h.pipeline_script(
            [{"name": "t", "size_ms": 1000, "slide_ms": 1000, "key": [], "aggs": [("sum", "bytes")]}],
            {"format": '"json"'}, "processed-data")
        p = subprocess.run([h.NTA_RUN, script], input="\n".join(lines) + "\n",
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual(got[0]["count"], 98)
        self.assertEqual(got[0]["sum_bytes"], 980)
        self.assertIn("2 bad", p.stderr)
        self.assertIn("bad bad_json: 1", p.stderr)
        self.assertIn("bad missing_field: 1", p.stderr)


class OnWindowTest(unittest.TestCase):

    def test_on_window_sees_every_result(self):
        data = gen_lines("rate=1000", "count=5000", "start=%d" % START)
        script = write_script('''
input { lateness = "1h" }
output { print = false }
window "by_proto" { key = "proto", size = "1s", sum = "bytes" }
local n, bytes = 0, 0
function on_window(w)
  n = n + 1
  bytes = bytes + w.sum_bytes
  assert(w.window == "by_proto" and w["end"] - w.start == 1000 and w.key.proto)
  print(string.format("result %d %d", n, bytes))
end
''')
        p = subprocess.run([h.NTA_RUN, script], input=data, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        records = [h.record_from_json(l) for l in data.splitlines()]
        expected = nta_batch.compute(records, [{"name": "by_proto", "size_ms": 1000,
                                                "slide_ms": 1000, "key": ["proto"],
                                                "aggs": [("sum", "bytes")]}])
        last = p.stdout.splitlines()[-1].split()
        self.assertEqual(int(last[1]), len(expected))
        self.assertEqual(int(last[2]), sum(r["sum_bytes"] for r in expected))

    def test_on_window_errors_are_counted_not_fatal(self):
        script = write_script('''
input { format = "json" }
window "t" { size = "1s" }
function on_window(w) error("boom in on_window") end
''')
        lines = "".join('{"ts":%d,"src_ip":"10.0.0.1","dst_ip":"10.0.0.2"}\n' % (START + i * 100)
                        for i in range(50))
        p = subprocess.run([h.NTA_RUN, script], input=lines, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("boom in on_window", p.stderr)
        self.assertIn(os.path.basename(script) + ":4:", p.stderr)
        self.assertIn("5 on_window errors", p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 5)


class ScriptErrorTest(unittest.TestCase):

    def assert_script_error(self, text, *needles):
        path = write_script(text)
        p = subprocess.run([h.NTA_RUN, path], input="", capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        for n in needles:
            self.assertIn(n.replace("FILE", os.path.basename(path)), p.stderr)
        h.assert_clean_log(p.stderr)

    def test_syntax_error(self):
        self.assert_script_error('input { }\nwindow "w" { size = "1s" \n', "FILE:3:")

    def test_unknown_window_option(self):
        self.assert_script_error('input { }\n\nwindow "w" { size = "1s", sizee = 3 }\n',
                                 "FILE:3:", "unknown option 'sizee'")

    def test_bad_duration(self):
        self.assert_script_error('window "w" { size = "ten seconds" }\n', "FILE:1:",
                                 "'size' is not a duration")

    def test_slide_longer_than_size(self):
        self.assert_script_error('window "w" { size = "1s", slide = "2s" }\n', "FILE:1:")

    def test_unknown_field(self):
        self.assert_script_error('window "w" { size = "1s", key = "src_mac" }\n', "FILE:1:",
                                 "unknown field 'src_mac'")

    def test_unknown_format(self):
        self.assert_script_error('input { format = "xml" }\nwindow "w" { size = "1s" }\n',
                                 "FILE:1:", "unknown format 'xml'")

    def test_runtime_error_in_top_level(self):
        self.assert_script_error('window "w" { size = "1s" }\nlocal x = nil\nx.y = 1\n',
                                 "FILE:3:")

    def test_filter_on_an_address_takes_prefixes(self):
        self.assert_script_error('window "w" { size = "1s", where = { src_ip = 1 } }\n',
                                 "FILE:1:", "takes address prefixes")

    def test_each_needs_a_free_key_field(self):
        # The items of each are keyed by the window's keys and the item: a
        # window keyed by a pair leaves no room for the item.
        self.assert_script_error(
            'window "w" { key = { "src_ip", "dst_ip" }, size = "1s",\n'
            '  topk = { field = "dst_port", k = 3 } }\n'
            'rule "r" { window = "w", each = "topk_bytes_dst_port", value = "value",\n'
            '  above = 1, severity = "info" }\n',
            "each needs a window of at most 1 key field(s); 'w' has 2")

    def test_each_item_cannot_be_a_key_field(self):
        self.assert_script_error(
            'window "w" { key = "dst_ip", size = "1s", topk = { field = "dst_ip", k = 3 } }\n'
            'rule "r" { window = "w", each = "topk_bytes_dst_ip", value = "value",\n'
            '  above = 1, severity = "info" }\n',
            "are values of 'dst_ip', a key of window 'w' already")

    def test_no_window(self):
        self.assert_script_error('input { }\n', "declares no window")

    def test_both_kinds(self):
        self.assert_script_error('generator { rate = 10 }\nwindow "w" { size = "1s" }\n',
                                 "FILE:2:", "either a pipeline or a generator")

    def test_window_declared_twice(self):
        self.assert_script_error('window "w" { size = "1s" }\nwindow "w" { size = "2s" }\n',
                                 "FILE:2:", "declared twice")

    def test_missing_file(self):
        p = subprocess.run([h.NTA_RUN, "/nonexistent/x.lua"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent/x.lua", p.stderr)


class CommandLineTest(unittest.TestCase):

    def test_help_lists_every_option(self):
        p = subprocess.run([h.NTA_RUN, "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        for opt in ("--brokers", "--property", "--config-file", "--group", "--from",
                    "--until-end", "--fast", "--commit-interval", "--verbose", "--version"):
            self.assertIn(opt, p.stdout)

    def test_bad_flags_exit_2_with_a_message(self):
        for args, needle in ((["--nope", "x.lua"], "unrecognized option"),
                             (["--from", "yesterday", "x.lua"], "--from takes"),
                             (["-X", "novalue", "x.lua"], "key=value"),
                             (["-F", "/nonexistent.properties", "x.lua"], "cannot open"),
                             (["--commit-interval", "0", "x.lua"], "--commit-interval"),
                             ([], "usage")):
            p = subprocess.run([h.NTA_RUN] + args, capture_output=True, text=True)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(needle, p.stderr, args)

    def test_properties_file_secrets_are_never_printed(self):
        f = tempfile.NamedTemporaryFile("w", suffix=".properties", delete=False)
        f.write("# Confluent Cloud style\nbootstrap.servers=127.0.0.1:1\n"
                "security.protocol=SASL_SSL\nsasl.mechanisms=PLAIN\n"
                "sasl.username=alice\nsasl.password=hunter2-very-secret\n"
                "not.a.real.property=1\n")
        f.close()
        script = h.pipeline_script(
            [{"name": "t", "size_ms": 1000, "slide_ms": 1000, "key": [], "aggs": []}], {},
            "processed-data")
        p = subprocess.run([h.NTA_RUN, "-F", f.name, "-b", "127.0.0.1:1", "--until-end",
                            script], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not.a.real.property", p.stderr)
        self.assertNotIn("hunter2", p.stderr + p.stdout)

    def test_generator_rejects_bad_args(self):
        p = subprocess.run([h.NTA_RUN, h.GEN, "rate=fast"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("gen_traffic", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

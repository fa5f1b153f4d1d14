"""Shared helpers for the end-to-end tests: the broker, topics, running
nta-run, and reading records back with an independent client (Debian's
python3-confluent-kafka), never with nta's own code.

Environment (set by ctest, see tests/CMakeLists.txt):
  NTA_RUN          path of the nta-run binary under test
  NTA_KAFKA_STATE  the kafka fixture's state dir (holds the bootstrap address)
"""
import json
import os
import subprocess
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NTA_RUN = os.environ.get("NTA_RUN", os.path.join(ROOT, "build", "nta-run"))
GEN = os.path.join(ROOT, "scripts", "gen_traffic.lua")

PROTO_NUMBERS = {"icmp": 1, "tcp": 6, "udp": 17}


def brokers():
    state = os.environ.get("NTA_KAFKA_STATE")
    if not state:
        raise RuntimeError("NTA_KAFKA_STATE is not set: run through ctest (make check)")
    with open(os.path.join(state, "bootstrap")) as f:
        return f.read().strip()


def unique(name):
    return "%s-%s" % (name, uuid.uuid4().hex[:8])


def create_topics(*specs):
    """specs: (name, partitions) pairs. Waits until every topic exists."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": brokers()})
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=p, replication_factor=1) for n, p in specs],
        operation_timeout=30)
    for f in futures.values():
        f.result(60)


def produce(topic, messages, partition=None):
    """messages: (key, value, timestamp_ms) tuples, sent in order."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": brokers(), "linger.ms": 5, "enable.idempotence": True})
    for key, value, ts in messages:
        kw = {"key": key, "value": value}
        if ts is not None:
            kw["timestamp"] = ts
        if partition is not None:
            kw["partition"] = partition
        while True:
            try:
                p.produce(topic, **kw)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    left = p.flush(60)
    assert left == 0, "%d messages not delivered to %s" % (left, topic)


def consume_all(topic, isolation="read_committed", timeout=60):
    """Every message of the topic, as dicts with key, value, headers, ts,
    partition, offset; in partition then offset order."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    c = Consumer({
        "bootstrap.servers": brokers(),
        "group.id": unique("reader"),
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        "isolation.level": isolation,
    })
    md = c.list_topics(topic, timeout=30)
    parts = sorted(md.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    at_end = set()
    out = []
    deadline = time.time() + timeout
    while len(at_end) < len(parts):
        if time.time() > deadline:
            raise AssertionError("timed out reading %s" % topic)
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(m.partition())
                continue
            raise AssertionError("reading %s: %s" % (topic, m.error()))
        at_end.discard(m.partition())
        out.append({
            "key": m.key(),
            "value": m.value(),
            "headers": dict((k, v.decode()) for k, v in (m.headers() or [])),
            "ts": m.timestamp()[1],
            "partition": m.partition(),
            "offset": m.offset(),
        })
    c.close()
    out.sort(key=lambda m: (m["partition"], m["offset"]))
    return out


def results(topic):
    """The window results in an output topic, decoded."""
    return [json.loads(m["value"]) for m in consume_all(topic)]


def run_nta(args, timeout=300, check=True, stdin=None):
    p = subprocess.run([NTA_RUN] + list(args), stdin=stdin, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("nta-run %s exited %d\nstderr:\n%s" %
                             (" ".join(args), p.returncode, p.stderr[-4000:]))
    return p


def assert_clean_log(stderr):
    """The log of a run that should have gone well: no sanitizer report, no
    error lines."""
    for bad in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer", "nta: consumer:",
                "undelivered", "on_window failed"):
        assert bad not in stderr, "unexpected %r in the log:\n%s" % (bad, stderr[-4000:])


def generate(topic, *gen_args):
    """Publishes gen_traffic.lua records to topic, unpaced."""
    return run_nta(["-b", brokers(), "--fast", GEN, "topic=" + topic] + list(gen_args))


# ---- independent decoding of what the generator published ----

def record_from_json(value):
    o = json.loads(value)
    return {
        "ts": int(o["ts"]),
        "src_ip": o["src_ip"],
        "dst_ip": o["dst_ip"],
        "src_port": int(o.get("src_port", 0)),
        "dst_port": int(o.get("dst_port", 0)),
        "proto": int(o["proto"]) if str(o.get("proto", "0")).isdigit()
        else PROTO_NUMBERS[o["proto"].lower()],
        "bytes": int(o.get("bytes", 0)),
        "packets": int(o.get("packets", 1)),
        "tcp_flags": int(o.get("tcp_flags", 0)),
    }


def record_from_csv(value, ts):
    src, dst, nbytes = value.decode().split(",")
    return {"ts": ts, "src_ip": src, "dst_ip": dst, "src_port": 0, "dst_port": 0, "proto": 0,
            "bytes": int(nbytes), "packets": 1, "tcp_flags": 0}


def record_from_goflow2(value):
    o = json.loads(value)
    rate = max(int(o.get("sampling_rate", 1)), 1)
    ts_ns = o.get("time_flow_end_ns") or o.get("time_flow_start_ns") or o["time_received_ns"]
    return {
        "ts": int(ts_ns) // 1000000,
        "src_ip": o["src_addr"],
        "dst_ip": o["dst_addr"],
        "src_port": int(o["src_port"]),
        "dst_port": int(o["dst_port"]),
        "proto": int(o["proto"]),
        "bytes": int(o["bytes"]) * rate,
        "packets": int(o["packets"]) * rate,
        "tcp_flags": int(o.get("tcp_flags", 0)),
    }


# ---- pipeline scripts written from the same specs the batch computation uses ----

def _lua_list(items):
    return "{ %s }" % ", ".join('"%s"' % i for i in items)


def _lua_filter(vals):
    """where values: a list of numbers or prefix strings, or {"not_in": list}."""
    if isinstance(vals, dict):
        return "{ not_in = %s }" % _lua_filter(vals["not_in"])
    return "{ %s }" % ", ".join('"%s"' % v if isinstance(v, str) else str(v) for v in vals)


def pipeline_script(specs, input_opts, output_topic, extra=""):
    """A pipeline script for window specs in nta_batch's form."""
    lines = ["input { %s }" % ", ".join("%s = %s" % (k, v) for k, v in input_opts.items()),
             'output { topic = "%s" }' % output_topic]
    for s in specs:
        opts = ['size = "%dms"' % s["size_ms"], 'slide = "%dms"' % s["slide_ms"]]
        if s["key"]:
            opts.append("key = " + _lua_list(s["key"]))
        by_kind = {}
        for kind, field in s["aggs"]:
            by_kind.setdefault(kind, []).append(field)
        for kind, fields in by_kind.items():
            opts.append("%s = %s" % (kind, _lua_list(fields)))
        if "max_keys" in s:
            opts.append("max_keys = %d" % s["max_keys"])
        if "where" in s:
            opts.append("where = { %s }" % ", ".join(
                "%s = %s" % (f, _lua_filter(vals)) for f, vals in s["where"].items()))
        lines.append('window "%s" { %s }' % (s["name"], ", ".join(opts)))
    lines.append(extra)
    f = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    f.write("\n".join(lines) + "\n")
    f.close()
    return f.name


def lua_str(s):
    return '"%s"' % s


# The windows of the standard pipeline (scripts/pipeline.lua) plus windows
# that exercise every aggregate and a two-field key.
STANDARD_SPECS = [
    {"name": "by_src", "size_ms": 60000, "slide_ms": 10000, "key": ["src_ip"],
     "aggs": [("sum", "bytes"), ("sum", "packets")]},
    {"name": "fanout", "size_ms": 30000, "slide_ms": 5000, "key": ["src_ip"],
     "aggs": [("distinct", "dst_port")]},
    {"name": "traffic", "size_ms": 10000, "slide_ms": 10000, "key": [],
     "aggs": [("sum", "bytes")]},
    {"name": "by_proto", "size_ms": 10000, "slide_ms": 10000, "key": ["proto"],
     "aggs": [("sum", "bytes"), ("sum", "packets")]},
    {"name": "by_dst", "size_ms": 10000, "slide_ms": 10000, "key": ["dst_ip"],
     "aggs": [("sum", "bytes"), ("distinct", "src_ip")]},
    {"name": "pairs", "size_ms": 10000, "slide_ms": 4000, "key": ["src_ip", "dst_ip"],
     "aggs": [("min", "bytes"), ("max", "bytes"), ("mean", "bytes"), ("sum", "packets")]},
]


# ---- the fixture's broker, stopped and started again with its data ----

def _broker_env():
    state = os.environ["NTA_KAFKA_STATE"]
    with open(os.path.join(state, "ports")) as f:
        port, cport = f.read().split()
    return dict(os.environ, NTA_KAFKA_DIR=os.path.join(state, "broker"), NTA_KAFKA_PORT=port,
                NTA_KAFKA_CONTROLLER_PORT=cport, NTA_KAFKA_KEEP="1")


def broker_stop():
    subprocess.run([os.path.join(ROOT, "tools", "kafka-local"), "stop"], env=_broker_env(),
                   check=True, capture_output=True, timeout=120)


def broker_start():
    """Starts the stopped broker again on the same ports, keeping its data."""
    subprocess.run([os.path.join(ROOT, "tools", "kafka-local"), "start"], env=_broker_env(),
                   check=True, capture_output=True, timeout=180)

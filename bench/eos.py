#!/usr/bin/python3
"""bench/eos.py: what exactly-once delivery costs, and how long a restart
after a crash takes (issue 6).

Usage: bench/eos.py NTA_RUN_BINARY        (make bench-eos)

Starts its own broker (tools/kafka-local, port EOS_PORT, default 39492, own
state dir, stopped at exit) and measures, in one run so that the ratios hold
on a noisy machine:

1. Throughput: EOS_RECORDS (default 2,000,000) preloaded JSON records drained
   by nta-run --until-end bench/pipeline5.lua, alternating
   --delivery exactly-once and at-least-once, EOS_REPEAT rounds (default 3);
   median records/s of each and their ratio.
2. Latency from a window's close to its result being readable: a generator
   streams 20,000 records/s in real time (event time = now) for EOS_LIVE_S
   seconds (default 40) while nta-run runs a 1 s tumbling window with 1 s of
   lateness, so the window [s, e) closes at wall time e + 1 s; an
   independent read_committed consumer takes the time each result arrives.
   p50/p99 of (arrival - close) per mode.
3. Restart: a 10-minute tumbling window keyed by source address holds
   EOS_KEYS (default 1,000,000) open keys; nta-run is killed with SIGKILL once it has read them
   and started again; restart time = from the new process's start until it
   has read every record again (rebuilt state, /api/status), with static
   group membership so that the group does not wait out the killed member's
   session. Measured twice:
   with only the open window's records in the topic, and with twice as many more
   records of windows closed before, to show restart time follows the open
   window, not how long the process ran.

EOS_PARTS (default "throughput,latency,restart") picks the measures.
stdout: a Markdown report for bench/README.md; stderr: progress.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT = int(os.environ.get("EOS_PORT", "39492"))
N = int(os.environ.get("EOS_RECORDS", "2000000"))
REPEAT = int(os.environ.get("EOS_REPEAT", "3"))
LIVE_S = int(os.environ.get("EOS_LIVE_S", "40"))
KEYS = int(os.environ.get("EOS_KEYS", "1000000"))
PARTS = os.environ.get("EOS_PARTS", "throughput,latency,restart").split(",")
HTTP_PORT = PORT + 7


def say(*a):
    print("bench-eos:", *a, file=sys.stderr, flush=True)


def kafka_env(work):
    return dict(os.environ, NTA_KAFKA_PORT=str(PORT), NTA_KAFKA_CONTROLLER_PORT=str(PORT + 1),
                NTA_KAFKA_DIR=os.path.join(work, "kafka"))


class Bench:
    def __init__(self, nta, work):
        self.nta = nta
        self.work = work
        self.addr = "127.0.0.1:%d" % PORT
        self.seq = 0

    def uniq(self, name):
        self.seq += 1
        return "%s-%d-%d" % (name, os.getpid(), self.seq)

    def topics(self, *specs):
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.addr})
        fs = admin.create_topics([NewTopic(n, num_partitions=p, replication_factor=1)
                                  for n, p in specs])
        for f in fs.values():
            f.result(60)

    def nta_cmd(self, *args):
        return [self.nta, "-b", self.addr] + list(args)

    def env(self, http=False):
        return dict(os.environ, NTA_HTTP="127.0.0.1:%d" % HTTP_PORT if http else "off")

    def script(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".lua", dir=self.work, delete=False)
        f.write(text)
        f.close()
        return f.name

    def end_offsets(self, topic):
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.addr, "group.id": "bench-eos-offsets"})
        md = c.list_topics(topic, timeout=10).topics[topic]
        n = sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in md.partitions)
        c.close()
        return n

    # ---- 1. throughput ----

    def throughput(self):
        src, out = self.uniq("tp-in"), self.uniq("tp-out")
        self.topics((src, 3), (out, 1))
        say("preloading %d records" % N)
        subprocess.run(self.nta_cmd("--fast", os.path.join(ROOT, "scripts", "gen_traffic.lua"),
                                    "topic=" + src, "count=%d" % N, "rate=20000",
                                    "start=1700000000000"),
                       check=True, env=self.env(), capture_output=True)
        with open(os.path.join(ROOT, "bench", "pipeline5.lua")) as f:
            text = f.read()
        script = self.script(text.replace("network-traffic", src).replace(
            "processed-data", out))
        rates = {"exactly-once": [], "at-least-once": []}
        for rnd in range(REPEAT):
            for mode in rates:
                t0 = time.monotonic()
                p = subprocess.run(self.nta_cmd("-g", self.uniq("tp"), "--from", "beginning",
                                                "--until-end", "--delivery", mode, script),
                                   env=self.env(), capture_output=True, text=True)
                wall = time.monotonic() - t0
                if p.returncode != 0 or ("%d records in" % N) not in p.stderr:
                    raise SystemExit("nta-run %s failed:\n%s" % (mode, p.stderr[-2000:]))
                rates[mode].append(N / wall)
                say("round %d %s: %.0f records/s" % (rnd + 1, mode, N / wall))
        return {m: statistics.median(v) for m, v in rates.items()}

    # ---- 2. close-to-result latency ----

    def latency(self, mode):
        from confluent_kafka import Consumer
        src, out = self.uniq("lat-in"), self.uniq("lat-out")
        self.topics((src, 3), (out, 1))
        script = self.script(
            'input { topic = "%s", format = "json", lateness = "1s" }\n'
            'output { topic = "%s" }\n'
            'window "traffic" { size = "1s", sum = { "bytes" } }\n' % (src, out))
        lat = []
        stop = threading.Event()

        def reader():
            c = Consumer({"bootstrap.servers": self.addr, "group.id": self.uniq("lat-r"),
                          "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                          "fetch.wait.max.ms": 10})
            c.subscribe([out])
            while not stop.is_set():
                m = c.poll(0.1)
                if m is None or m.error():
                    continue
                now = time.time() * 1000
                r = json.loads(m.value())
                # The window closes when the watermark (newest event time
                # minus 1 s of lateness) passes its end.
                lat.append(now - (m.timestamp()[1] + 1000))
            c.close()

        th = threading.Thread(target=reader)
        th.start()
        nta = subprocess.Popen(self.nta_cmd("-g", self.uniq("lat"), "--delivery", mode, script),
                               env=self.env(), stderr=subprocess.DEVNULL)
        time.sleep(3)
        subprocess.run(self.nta_cmd(os.path.join(ROOT, "scripts", "gen_traffic.lua"),
                                    "topic=" + src, "rate=20000", "duration=%d" % LIVE_S),
                       check=True, env=self.env(), capture_output=True)
        time.sleep(3)
        nta.terminate()
        nta.wait(60)
        stop.set()
        th.join()
        lat = sorted(lat[2:])  # the first windows close while the consumer joins
        q = statistics.quantiles(lat, n=100)
        return {"n": len(lat), "p50": q[49], "p99": q[98]}

    # ---- 3. restart time ----

    def produce_keys(self, topic, n, start_ms, spacing_ms):
        """n records, each from its own source address, all in one partition
        order of time."""
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.addr, "linger.ms": 20,
                      "queue.buffering.max.messages": 1000000})
        for i in range(n):
            ts = start_ms + (i * spacing_ms) // 1000
            v = '{"ts":%d,"src_ip":"10.%d.%d.%d","dst_ip":"192.0.2.1","dst_port":443,' \
                '"proto":6,"bytes":100}' % (ts, i >> 16 & 255, i >> 8 & 255, i & 255)
            while True:
                try:
                    p.produce(topic, v.encode(), key=str(i).encode())
                    break
                except BufferError:
                    p.poll(0.1)
        p.flush(120)

    def records_in(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/api/status" % HTTP_PORT,
                                        timeout=2) as r:
                # Before its first tick the status has no counters yet.
                return json.loads(r.read()).get("records_in", -1)
        except OSError:
            return -1

    def wait_records(self, n, limit_s=600):
        t0 = time.monotonic()
        while self.records_in() < n:
            if time.monotonic() - t0 > limit_s:
                raise SystemExit("nta-run did not read %d records in %d s" % (n, limit_s))
            time.sleep(0.05)
        return time.monotonic() - t0

    def restart(self, history):
        src, out = self.uniq("rs-in"), self.uniq("rs-out")
        self.topics((src, 3), (out, 1))
        keys = KEYS
        t_open = 1700000400000  # inside one 10-minute window
        if history:
            # Closed windows: 2M records over the hour before.
            self.produce_keys(src, history, t_open - 3600000, 3600000 * 1000 // history)
        self.produce_keys(src, keys, t_open, 100)  # 100 keys per ms of event time
        total = self.end_offsets(src)
        script = self.script(
            'input { topic = "%s", format = "json", lateness = "1s", idle_timeout = "1h" }\n'
            'output { topic = "%s" }\n'
            'window "by_src" { size = "10m", key = { "src_ip" }, sum = { "bytes" }, '
            'max_keys = 2000000 }\n' % (src, out))
        group = self.uniq("rs")
        # Static membership: the restarted process takes its partitions back
        # at once; without it the group waits out the killed member's
        # session.timeout.ms (45 s) before anything is read.
        cmd = self.nta_cmd("-g", group, "--instance", "bench", "-X",
                           "group.instance.id=" + group, script)
        procs = []
        try:
            procs.append(subprocess.Popen(cmd, env=self.env(http=True),
                                          stderr=subprocess.DEVNULL))
            first_s = self.wait_records(total)
            time.sleep(1.5)  # a few transactions commit the offsets and watermark
            procs[0].kill()
            procs[0].wait()
            t0 = time.monotonic()
            procs.append(subprocess.Popen(cmd, env=self.env(http=True),
                                          stderr=subprocess.DEVNULL))
            # Re-read: the open window's records only (the closed ones are
            # behind the committed offsets).
            self.wait_records(keys)
            restart_s = time.monotonic() - t0
        finally:
            for p in procs:
                p.kill()
                p.wait()
        return {"records": total, "first_read_s": first_s, "restart_s": restart_s}


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        raise SystemExit("usage: bench/eos.py NTA_RUN_BINARY")
    nta = os.path.realpath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="nta-bench-eos.")
    env = kafka_env(work)
    kl = os.path.join(ROOT, "tools", "kafka-local")
    say("starting the broker on port %d" % PORT)
    subprocess.run([kl, "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        b = Bench(nta, work)
        tp = b.throughput() if "throughput" in PARTS else None
        lat = ({m: b.latency(m) for m in ("exactly-once", "at-least-once")}
               if "latency" in PARTS else None)
        rs = [b.restart(0), b.restart(2 * KEYS)] if "restart" in PARTS else []
    finally:
        subprocess.run([kl, "stop"], env=env, stdout=subprocess.DEVNULL)
    print("| measure | exactly-once | at-least-once | ratio |")
    print("|---|---:|---:|---:|")
    if tp:
        print("| throughput, records/s (median of %d) | %.0f | %.0f | %.2f |" % (
            REPEAT, tp["exactly-once"], tp["at-least-once"],
            tp["exactly-once"] / tp["at-least-once"]))
    for q in ("p50", "p99") if lat else ():
        print("| window close -> result readable, %s ms (%d windows) | %.0f | %.0f | |" % (
            q, lat["exactly-once"]["n"], lat["exactly-once"][q], lat["at-least-once"][q]))
    print()
    print("| records in the topic | first read, s | restart after kill -9, s |")
    print("|---:|---:|---:|")
    for r in rs:
        print("| %d | %.2f | %.2f |" % (r["records"], r["first_read_s"], r["restart_s"]))


if __name__ == "__main__":
    main()

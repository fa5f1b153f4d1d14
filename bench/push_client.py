#!/usr/bin/env python3
"""Push clients for bench/push.sh, on the standard library only.

  push_client.py latency PORT SECONDS [full]
      One server-sent events client (/api/events?history=0, with full: also
      every result of wide windows, not only their "top" frames). For every
      window result that arrives: arrival time minus its closed_at_us (the
      moment its window closed in nta-run, same host clock). Prints one JSON
      object: results, p50/p99/max in ms over all of them, over the first one
      of each window close, and per window.

  push_client.py cost N NTA_RUN ARGS...
      Runs NTA_RUN --http 127.0.0.1:0 ARGS..., connects N clients as soon as
      it prints its address, reads and discards their streams (select, in this
      process) until nta-run exits, and prints one JSON object: wall seconds,
      nta-run's CPU seconds (user + system, from wait4), bytes received.
"""
import os
import subprocess
import json
import re
import select
import socket
import sys
import time

# A result, alone or inside a "top" frame: the fields output.c writes first.
RESULT = re.compile(rb'\{"closed_at_us":(\d+),"type":"window","window":"([^"]*)",'
                    rb'"start":-?\d+,"end":(-?\d+)')


def connect(port, full=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /api/events?history=0%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
              % (b"&full=1" if full else b"", port))
    return s


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def latency(port, seconds, full):
    s = connect(port, full)
    s.settimeout(1.0)
    buf = b""
    lat, first, seen, per = [], [], set(), {}
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            continue
        now_us = time.time() * 1e6
        if not chunk:
            break
        buf += chunk
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            continue
        for m in RESULT.finditer(buf, 0, cut):
            ms = (now_us - int(m.group(1))) / 1000.0
            lat.append(ms)
            per.setdefault(m.group(2).decode(), []).append(ms)
            close = (m.group(2), m.group(3))
            if close not in seen:
                seen.add(close)
                first.append(ms)
        buf = buf[cut + 2:]
    s.close()
    def summary(xs):
        return {"n": len(xs), "p50_ms": pct(xs, 50), "p99_ms": pct(xs, 99),
                "max_ms": max(xs) if xs else None}
    out = {"results": len(lat), "closes": len(first), "all": summary(lat),
           "first": summary(first), "windows": {w: summary(xs) for w, xs in sorted(per.items())}}
    print(json.dumps(out))


def cost(n, argv):
    t0 = time.time()
    p = subprocess.Popen([argv[0], "--http", "127.0.0.1:0"] + argv[1:], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    port = None
    while port is None:
        line = p.stderr.readline()
        if not line:
            raise SystemExit("nta-run printed no address")
        m = re.search(r"dashboard at http://127.0.0.1:(\d+)/", line)
        port = int(m.group(1)) if m else None
    socks = [connect(port) for _ in range(n)]
    for s in socks:
        s.setblocking(False)
    total = 0
    while socks:
        try:
            ready, _, _ = select.select(socks, [], [], 0.5)
        except InterruptedError:
            continue
        for s in ready:
            try:
                data = s.recv(1 << 20)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                socks.remove(s)
                s.close()
                continue
            total += len(data)
    log = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.time() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    print(json.dumps({"clients": n, "wall": wall, "cpu": ru.ru_utime + ru.ru_stime,
                      "bytes": total, "rc": p.returncode,
                      "summary": next((l for l in log.splitlines() if "records in" in l), "")}))


if __name__ == "__main__":
    mode, port, arg = sys.argv[1], int(sys.argv[2]), sys.argv[3]  # cost: port is N
    if mode == "latency":
        latency(port, float(arg), len(sys.argv) > 4 and sys.argv[4] == "full")
    else:
        cost(port, sys.argv[3:])

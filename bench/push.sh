#!/usr/bin/env bash
# bench/push.sh: the dashboard's push channel. Two measurements, one report:
#
#  1. Latency: nta-run over bench/push.lua paced at PUSH_RATE records/s (in
#     process, no Kafka), two server-sent events clients for PUSH_SECONDS: the
#     stream a page gets (narrow windows' results, wide windows' "top" frames)
#     and the full stream (?full=1, every result). For each window result that
#     arrives: arrival time - closed_at_us, the moment nta-run saw its window
#     close (the watermark passing its end). Same host, same clock.
#  2. Cost: nta-run --fast over PUSH_RECORDS records with 0 and with
#     PUSH_CLIENTS push clients connected from its start (one process reading
#     them all), alternating, PUSH_REPEAT rounds; records/s = records / wall
#     time, and records per CPU second of nta-run (user + system, all its
#     threads: the pipeline's and the HTTP server's), with the ratio of the
#     medians of each. The CPU figure is the steadier one on a shared machine.
#
# Usage: bench/push.sh NTA_RUN_BINARY      (make bench-push does: bench/push.sh build/nta-run)
#
# stdout: the Markdown report (bench/README.md has the last one); stderr: progress.
# Exit status: 0 measured; 1 a run failed; 2 usage; 3 a bar missed (p99 of the
# page's stream > 50 ms, or ratio < 0.95), only with PUSH_ENFORCE=1.
#
# Environment: PUSH_RATE (200000), PUSH_SECONDS (40), PUSH_RECORDS (10000000),
# PUSH_CLIENTS (50), PUSH_REPEAT (3), PUSH_ENFORCE (0).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=/usr/bin/python3
say() { echo "push: $*" >&2; }
die() { echo "push: error: $*" >&2; exit 2; }

(($# == 1)) || die "usage: bench/push.sh NTA_RUN_BINARY"
NTA=$(realpath "$1")
[[ -x $NTA ]] || die "$1 is not an executable (make build)"
RATE=${PUSH_RATE:-200000}
SECONDS_=${PUSH_SECONDS:-40}
RECORDS=${PUSH_RECORDS:-10000000}
CLIENTS=${PUSH_CLIENTS:-50}
REPEAT=${PUSH_REPEAT:-3}
CLIENT=$ROOT/bench/push_client.py
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nta-push.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in ${PIDS[@]+"${PIDS[@]}"}; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# start_nta LOG ARGS...: nta-run with the dashboard on a free port, in the
# background; sets NTA_PID and PORT.
start_nta() {
    local log=$1 i
    shift
    "$NTA" --http 127.0.0.1:0 "$@" >/dev/null 2>"$log" &
    NTA_PID=$!
    PIDS+=("$NTA_PID")
    PORT=
    for ((i = 0; i < 500; i++)); do
        PORT=$(sed -n 's|^nta: dashboard at http://127.0.0.1:\([0-9]*\)/$|\1|p' "$log")
        [[ -n $PORT ]] && return 0
        kill -0 "$NTA_PID" 2>/dev/null || break
        sleep 0.01
    done
    cat "$log" >&2
    die "nta-run printed no dashboard address"
}

now() { date +%s.%N; }

# ---- 1. latency ----
say "latency: ${RATE} records/s, ${SECONDS_} s, two push clients"
start_nta "$WORK/lat.err" "$ROOT/bench/push.lua" "rate=$RATE"
"$PY" "$CLIENT" latency "$PORT" "$SECONDS_" >"$WORK/page.json" &
c1=$!
"$PY" "$CLIENT" latency "$PORT" "$SECONDS_" full >"$WORK/full.json" &
c2=$!
wait "$c1" "$c2"
curl -sf "http://127.0.0.1:$PORT/api/status" >"$WORK/status.json" || die "no /api/status"
curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt" || die "no /metrics"
kill "$NTA_PID"
wait "$NTA_PID" || true

# ---- 2. cost of clients ----
: >"$WORK/runs.tsv"
FAILED=0
for ((round = 1; round <= REPEAT; round++)); do
    for n in 0 "$CLIENTS"; do
        "$PY" "$CLIENT" cost "$n" "$NTA" --fast "$ROOT/bench/push.lua" "count=$RECORDS" \
            >"$WORK/cost.json" || { say "round $round, $n clients: failed"; exit 1; }
        read -r wall cpu ok < <("$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
ok = d["rc"] == 0 and d["summary"].startswith("nta: %s records in, %s aggregated" % (sys.argv[2], sys.argv[2]))
print("%.3f %.3f %d" % (d["wall"], d["cpu"], ok))' "$WORK/cost.json" "$RECORDS")
        ((ok)) || { say "round $round, $n clients: not all records aggregated"; cat "$WORK/cost.json" >&2; FAILED=1; }
        printf '%s\t%s\t%s\t%s\n' "$n" "$round" "$wall" "$cpu" >>"$WORK/runs.tsv"
        say "round $round, $n clients: ${wall}s wall, ${cpu}s CPU"
    done
done
((FAILED == 0)) || exit 1

rc=0
"$PY" - "$WORK" "$RATE" "$SECONDS_" "$RECORDS" "$CLIENTS" "$REPEAT" "$ROOT" <<'PY' || rc=$?
import json, os, re, statistics, subprocess, sys
work, rate, secs, records, clients, repeat, root = sys.argv[1:]
records, clients = int(records), int(clients)
page = json.load(open(os.path.join(work, "page.json")))
full = json.load(open(os.path.join(work, "full.json")))
status = json.load(open(os.path.join(work, "status.json")))
metrics = open(os.path.join(work, "metrics.txt")).read()

def hist_quantile(name, q):
    b = [(float(le), float(v)) for le, v in
         re.findall(r'^%s_bucket\{le="([^"]+)"\} (\S+)$' % name, metrics, re.M)]
    total = b[-1][1]
    for le, v in b:
        if v >= q * total:
            return le * 1000
    return float("inf")

def f(x):
    return "–" if x is None else "%.1f" % x

runs, cpus = {}, {}
for line in open(os.path.join(work, "runs.tsv")):
    n, r, wall, cpu = line.split()
    runs.setdefault(int(n), []).append(float(wall))
    cpus.setdefault(int(n), []).append(float(cpu))
med = {n: statistics.median(w) for n, w in runs.items()}
medc = {n: statistics.median(w) for n, w in cpus.items()}
ratio = med[0] / med[clients]
ratio_cpu = medc[0] / medc[clients]
rev = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                     capture_output=True, text=True).stdout.strip()
print("### Push latency and cost (bench/push.sh)\n")
print("Input %s records/s paced (achieved %.0f records/s, in-process generator, "
      "bench/push.lua), %s s; %d CPUs; nta-run release build.\n"
      % (rate, status.get("rate_in", 0), secs, os.cpu_count()))
print("| stream | results | closes | p50 ms | p99 ms | max ms |")
print("|---|---:|---:|---:|---:|---:|")
for label, d in (("page (default: narrow windows + top frames)", page), ("full (?full=1)", full)):
    a = d["all"]
    print("| %s, every result | %d | %d | %s | %s | %s |" % (label, a["n"], d["closes"], f(a["p50_ms"]), f(a["p99_ms"]), f(a["max_ms"])))
    a = d["first"]
    print("| %s, first result of each close | %d | %d | %s | %s | %s |" % (label, a["n"], d["closes"], f(a["p50_ms"]), f(a["p99_ms"]), f(a["max_ms"])))
print("\nPer window, page stream:\n")
print("| window | results | p50 ms | p99 ms |")
print("|---|---:|---:|---:|")
for w, a in page["windows"].items():
    print("| %s | %d | %s | %s |" % (w, a["n"], f(a["p50_ms"]), f(a["p99_ms"])))
print("\nInside nta-run (/metrics): window close to each result handed to the "
      "dashboard, p50 ≤ %.1f ms, p99 ≤ %.1f ms (histogram bucket bounds).\n"
      % (hist_quantile("nta_processing_latency_seconds", 0.5),
         hist_quantile("nta_processing_latency_seconds", 0.99)))
print("Cost of %d push clients: --fast, %d records, median of %s rounds:\n" % (clients, records, repeat))
print("| clients | wall s (each round) | CPU s (each round) | median records/s | median records per CPU s |")
print("|---:|---|---|---:|---:|")
for n in sorted(med):
    print("| %d | %s | %s | %.0f | %.0f |" % (n, " ".join("%.2f" % w for w in runs[n]),
          " ".join("%.2f" % c for c in cpus[n]), records / med[n], records / medc[n]))
print("\nratio %d clients / 0 clients: **%.3f** by wall time, **%.3f** by CPU time (bar: ≥ 0.95). "
      "Revision %s.\n" % (clients, ratio, ratio_cpu, rev))
bad = page["all"]["p99_ms"] is None or page["all"]["p99_ms"] > 50 or ratio < 0.95
sys.exit(3 if bad else 0)
PY
((rc == 3 && ${PUSH_ENFORCE:-0} != 1)) && exit 0
exit "$rc"

#!/usr/bin/env bash
# bench/run.sh: throughput of nta-run's five-window pipeline, as a ratio
# against a bare librdkafka consumer (bench/drain.c) measured in the same run.
#
# Usage: bench/run.sh NTA_RUN_BINARY        (make bench does: bench/run.sh build/nta-run)
#
# Starts its own broker (tools/kafka-local, own port and state dir, stopped on
# exit), creates a 3-partition input topic, preloads BENCH_RECORDS JSON records
# with scripts/gen_traffic.lua --fast, then runs, alternating, BENCH_REPEAT
# rounds of
#   (a) drain      bench/drain.c, built here with cc -O2
#   (b) nta-run    -g <fresh group> --from beginning --until-end bench/pipeline5.lua
#   (c) nta-run    the same with bench/pipeline_rules.lua: top-k, quantiles, the
#                  detection windows and every shipped rule (BENCH_RULES=0: skip)
# and, when BENCH_DIAG_X is not empty, the same pair again with the librdkafka
# properties of BENCH_DIAG_X given to both (a diagnostic, see bench/README.md).
# Each run is timed with /usr/bin/time (wall, user, sys, peak RSS) and checked:
# drain must count BENCH_RECORDS records; nta-run must report BENCH_RECORDS
# records in and aggregated, none bad or late, and the output topic must grow
# by exactly the results it reports.
#
# stdout: only the Markdown report (paste it into bench/README.md).
# stderr: progress, and at the end whatever the programs printed that a clean
# run does not print.
# Exit status: 0 measured and valid; 1 a run failed or was invalid; 2 usage or
# a missing tool; 3 valid but a bar missed, only with BENCH_ENFORCE=1.
#
# Environment:
#   BENCH_RECORDS  records to preload (default 5000000)
#   BENCH_REPEAT   rounds; the report gives the median (default 3)
#   BENCH_PORT     broker port (default 39092; the controller uses PORT+1)
#   BENCH_X        "key=value ..." librdkafka properties for both sides (default none)
#   BENCH_DIAG_X   properties of a diagnostic pair, given to both sides
#                  (default empty: no diagnostic pair)
#   BENCH_ENFORCE  1: exit 3 when b/a < 0.6 or b < 1,000,000 records/s
#   BENCH_KEEP     1: keep the work dir (broker log, every run's output)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=/usr/bin/python3 # Debian's python3 has confluent_kafka (tools/install-deps kafka)

die() { echo "bench: error: $*" >&2; exit 2; }
say() { echo "bench: $*" >&2; }

(($# == 1)) || die "usage: bench/run.sh NTA_RUN_BINARY"
NTA=$(realpath "$1")
[[ -x $NTA ]] || die "$1 is not an executable (build it first: make build)"

N=${BENCH_RECORDS:-5000000}
REPEAT=${BENCH_REPEAT:-3}
PORT=${BENCH_PORT:-39092}
read -r -a XPROPS <<<"${BENCH_X:-}"
read -r -a DIAGPROPS <<<"${BENCH_DIAG_X-}"
[[ $N =~ ^[1-9][0-9]*$ ]] || die "BENCH_RECORDS must be a positive integer"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEAT must be a positive integer"
[[ $PORT =~ ^[0-9]+$ ]] || die "BENCH_PORT must be a number"

# /usr/bin/time is Debian's package "time", which tools/install-deps does not
# install (and this script may not change tools/): say so rather than guess.
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found: install Debian's package 'time' (apt-get install time)"
command -v cc >/dev/null || die "cc not found (tools/install-deps build)"
"$PY" -c 'import confluent_kafka' 2>/dev/null ||
    die "$PY lacks confluent_kafka (tools/install-deps kafka)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nta-bench.XXXXXX")
export NTA_KAFKA_PORT=$PORT NTA_KAFKA_DIR=$WORK/kafka
cleanup() {
    "$ROOT/tools/kafka-local" stop >/dev/null 2>&1 || true
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        say "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The baseline is compiled here, with the flags the brief fixes, against the
# same librdkafka that nta-run links.
say "building bench/drain.c"
cc -O2 -o "$WORK/drain" "$ROOT/bench/drain.c" -lrdkafka ||
    die "cannot build bench/drain.c (librdkafka-dev: tools/install-deps build)"

IN=bench-in OUT=bench-out DLQ=bench-dlq
# The dashboard's cost is bench/push.sh's to measure; here it stays off, as it
# did in every run of bench/README.md.
export NTA_HTTP=off
say "starting the broker on port $PORT (state $NTA_KAFKA_DIR)"
ADDR=$("$ROOT/tools/kafka-local" start "$IN:3" "$OUT:1" "$DLQ:1" | tail -n 1)

# end_offsets TOPIC: the sum of the topic's partition end offsets.
end_offsets() {
    "$PY" - "$ADDR" "$1" <<'PY'
import sys
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "bench-offsets"})
md = c.list_topics(sys.argv[2], timeout=10).topics[sys.argv[2]]
print(sum(c.get_watermark_offsets(TopicPartition(sys.argv[2], p), timeout=10)[1]
          for p in md.partitions))
c.close()
PY
}

TSV=$WORK/runs.tsv
NOTES=$WORK/notes.txt
: >"$NOTES"
FAILED=0

# note FILE WHAT: keeps the lines of FILE that a clean run does not print.
# Expected: nta-run's summary, and librdkafka's warning that consumer
# properties given with -X are ignored by the producer (nta-run passes -X to
# both clients).
note() {
    grep -v -E '^nta: ([0-9]+ records in|  window |  rule |  transactions: [0-9]+ committed, 0 aborted|  idle fetcher woken |generated )|is a consumer property and will be ignored by this producer' \
        "$1" | sed "s|^|$2: |" >>"$NOTES" || true
}

# timed LABEL ROUND -- CMD...: runs CMD under /usr/bin/time, its stdout and
# stderr to $WORK/LABEL.ROUND.{out,err}; sets WALL USER SYS RSS.
timed() {
    local label=$1 round=$2
    shift 3
    local base=$WORK/$label.$round rc=0
    /usr/bin/time -f '%e %U %S %M' -o "$base.time" "$@" >"$base.out" 2>"$base.err" || rc=$?
    read -r WALL USER SYS RSS <"$base.time" || true
    if ((rc != 0)); then
        say "$label round $round: exit status $rc"
        tail -n 5 "$base.err" >&2
        FAILED=1
    fi
    note "$base.err" "$label"
}

# run_drain LABEL ROUND PROPS...
run_drain() {
    local label=$1 round=$2 xs=() p
    shift 2
    for p in "$@"; do xs+=(-X "$p"); done
    timed "$label" "$round" -- "$WORK/drain" -b "$ADDR" -g "bench-$label-$round-$$" -t "$IN" \
        ${xs[@]+"${xs[@]}"}
    local out recs bytes
    out=$(cat "$WORK/$label.$round.out")
    recs=$(sed -n 's/^drain: records=\([0-9]*\) .*/\1/p' <<<"$out")
    bytes=$(sed -n 's/.* bytes=\([0-9]*\) .*/\1/p' <<<"$out")
    local valid=1
    if [[ $recs != "$N" ]]; then
        say "$label round $round: drain counted '${recs:-nothing}' records, not $N"
        valid=0
        FAILED=1
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$round" "$WALL" "$USER" "$SYS" "$RSS" \
        "$valid" "${bytes:-0}" >>"$TSV"
    say "$label round $round: ${WALL}s wall, $(awk -v u="$USER" -v s="$SYS" 'BEGIN{print u+s}')s CPU, ${RSS} KiB"
}

declare -A RESULTS_SEEN=()
# run_nta LABEL ROUND SCRIPT PROPS...
run_nta() {
    local label=$1 round=$2 script=$3 xs=() p
    shift 3
    for p in "$@"; do xs+=(-X "$p"); done
    local before after
    before=$(end_offsets "$OUT")
    timed "$label" "$round" -- "$NTA" -b "$ADDR" -g "bench-$label-$round-$$" --from beginning \
        --until-end ${xs[@]+"${xs[@]}"} "$ROOT/bench/$script" \
        "topic=$IN" "output=$OUT" "dlq=$DLQ"
    after=$(end_offsets "$OUT")
    local sum valid=1
    sum=$(grep -E '^nta: [0-9]+ records in' "$WORK/$label.$round.err" | tail -n 1 || true)
    local rin agg bad late res alerts
    read -r rin agg bad late res < <(sed -E -n \
        's/^nta: ([0-9]+) records in, ([0-9]+) aggregated, ([0-9]+) bad, ([0-9]+) late, ([0-9]+) results out.*/\1 \2 \3 \4 \5/p' \
        <<<"$sum") || true
    # Alerts share the output topic with the results.
    alerts=$(sed -E -n 's/.*, ([0-9]+) alerts.*/\1/p' <<<"$sum")
    alerts=${alerts:-0}
    # With exactly-once delivery each committed transaction also writes a
    # commit marker, which takes an offset, into the (one-partition) output
    # topic when it produced into it.
    local txns
    txns=$(sed -E -n 's/^nta:   transactions: ([0-9]+) committed.*/\1/p' "$WORK/$label.$round.err")
    txns=${txns:-0}
    if [[ $rin != "$N" || $agg != "$N" || $bad != 0 || $late != 0 ]]; then
        say "$label round $round: summary is '${sum:-missing}', expected $N records in and aggregated, 0 bad, 0 late"
        valid=0
    elif ((after - before < res + alerts || after - before > res + alerts + txns)); then
        say "$label round $round: output topic grew by $((after - before)), nta-run reported $res results and $alerts alerts"
        valid=0
    elif [[ -n ${RESULTS_SEEN[$label]:-} && $res != "${RESULTS_SEEN[$label]}" ]]; then
        say "$label round $round: $res results, an earlier run had ${RESULTS_SEEN[$label]}"
        valid=0
    fi
    RESULTS_SEEN[$label]=${res:-${RESULTS_SEEN[$label]:-}}
    ((valid)) || FAILED=1
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$round" "$WALL" "$USER" "$SYS" "$RSS" \
        "$valid" "${res:-0}" >>"$TSV"
    say "$label round $round: ${WALL}s wall, $(awk -v u="$USER" -v s="$SYS" 'BEGIN{print u+s}')s CPU, ${RSS} KiB, ${res:-?} results"
}

say "preloading $N records into $IN"
/usr/bin/time -f '%e' -o "$WORK/gen.time" "$NTA" -b "$ADDR" --fast "$ROOT/scripts/gen_traffic.lua" \
    "topic=$IN" rate=100000 "count=$N" start=1700000000000 format=json \
    >"$WORK/gen.out" 2>"$WORK/gen.err" || { tail -n 5 "$WORK/gen.err" >&2; die "the generator failed"; }
note "$WORK/gen.err" generator
GEN_WALL=$(<"$WORK/gen.time")
loaded=$(end_offsets "$IN")
[[ $loaded == "$N" ]] || { FAILED=1; die "$IN holds $loaded records after the generator, not $N"; }
say "preloaded in ${GEN_WALL}s"

# One untimed drain first: the broker creates __consumer_offsets on the first
# group join (about a second), which would otherwise land on round 1 of (a).
say "warm-up drain (not measured)"
"$WORK/drain" -b "$ADDR" -g "bench-warmup-$$" -t "$IN" >"$WORK/warmup.out" 2>"$WORK/warmup.err" ||
    { tail -n 5 "$WORK/warmup.err" >&2; die "the warm-up drain failed"; }
note "$WORK/warmup.err" warm-up
# And one untimed nta-run: the first transactional producer makes the broker
# create __transaction_state (50 partitions, about two seconds), which would
# otherwise land on round 1 of (b).
say "warm-up nta-run (not measured)"
"$NTA" -b "$ADDR" -g "bench-warmup-nta-$$" --from beginning --until-end \
    "$ROOT/bench/pipeline5.lua" "topic=$IN" "output=$OUT" "dlq=$DLQ" \
    >/dev/null 2>"$WORK/warmup-nta.err" ||
    { tail -n 5 "$WORK/warmup-nta.err" >&2; die "the warm-up nta-run failed"; }
note "$WORK/warmup-nta.err" warm-up

: >"$TSV"
for ((round = 1; round <= REPEAT; round++)); do
    run_drain drain "$round" ${XPROPS[@]+"${XPROPS[@]}"}
    run_nta nta "$round" pipeline5.lua ${XPROPS[@]+"${XPROPS[@]}"}
    if [[ ${BENCH_RULES:-1} == 1 ]]; then
        run_nta nta-rules "$round" pipeline_rules.lua ${XPROPS[@]+"${XPROPS[@]}"}
    fi
    if ((${#DIAGPROPS[@]})); then
        run_drain drain-diag "$round" ${XPROPS[@]+"${XPROPS[@]}"} "${DIAGPROPS[@]}"
        run_nta nta-diag "$round" pipeline5.lua ${XPROPS[@]+"${XPROPS[@]}"} "${DIAGPROPS[@]}"
    fi
done

report_rc=0
"$PY" "$ROOT/bench/report.py" "$TSV" \
    records="$N" repeat="$REPEAT" gen_wall="$GEN_WALL" \
    props="${BENCH_X:-}" diag="${DIAGPROPS[*]:-}" \
    rdkafka="$(pkg-config --modversion rdkafka 2>/dev/null || echo unknown)" \
    kafka="${NTA_KAFKA_VERSION:-4.1.1}" \
    rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- runtime 2>/dev/null || echo '+runtime changes')" ||
    report_rc=$?

# The rules' own cost, from the last (c) run's exit summary.
if [[ -f $WORK/nta-rules.$REPEAT.err ]]; then
    echo
    echo "Rule cost in run (c), round $REPEAT (from nta-run's exit summary):"
    echo
    sed -n -E 's/^nta:   rule ([a-z_]+): ([0-9]+) evaluations, .* ([0-9]+) ns\/evaluation.*/- \1: \2 evaluations, \3 ns each/p' \
        "$WORK/nta-rules.$REPEAT.err"
fi

if [[ -s $NOTES ]]; then
    say "unexpected output from the programs (first 20 lines):"
    head -n 20 "$NOTES" >&2
fi
((FAILED == 0)) || { say "some runs failed or were invalid: see above"; exit 1; }
((report_rc == 0)) || { ((report_rc == 3 && ${BENCH_ENFORCE:-0} != 1)) || exit "$report_rc"; }
exit 0

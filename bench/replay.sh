#!/usr/bin/env bash
# bench/replay.sh: replay throughput of nta-run --replay in records/s on the
# SYN-flood capture, packet mode and flow mode, against tcpdump reading and
# writing the same file in the same run.
#
# Usage: bench/replay.sh NTA_RUN_BINARY      (a release build: make build)
#
# Inputs: ../shared/data/stopddos_pkt.TCP.synflood.spoofed.pcap as it is
# (37,841 packets: process start-up weighs) and the same capture repeated
# REPLAY_COPIES times with each copy shifted by 30 s (written into the work
# dir; the shared data is never modified), which measures the steady state.
# For each input, alternating, REPLAY_REPEAT rounds of
#   tcpdump -r FILE -w /dev/null                 libpcap read + write, no analysis
#   nta-run --replay FILE --packets|--flows --as-fast-as-possible SCRIPT
# with SCRIPT = one unkeyed 10 s window (what reading, parsing, building
# flows and feeding the pipeline cost) and SCRIPT = bench/pipeline5.lua (the
# five windows of scripts/pipeline.lua, results written to a file: the whole
# job; every spoofed source is a new key there, the window engine's worst
# case). Each run is checked: nta-run must exit 0 with none bad or late.
# stdout: a Markdown table with the medians of wall time and of CPU time
# (user + sys of the process, from getrusage: steadier than wall time on a
# shared machine) and records/s for both.
#
# Environment: REPLAY_COPIES (default 20), REPLAY_REPEAT (default 3),
# NTA_DATA (default /work/shared/data), REPLAY_KEEP=1 keeps the work dir.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NTA_RUN=${1:?usage: bench/replay.sh NTA_RUN_BINARY}
DATA=${NTA_DATA:-/work/shared/data}
COPIES=${REPLAY_COPIES:-20}
REPEAT=${REPLAY_REPEAT:-3}
CAPTURE=$DATA/stopddos_pkt.TCP.synflood.spoofed.pcap
PIPELINE5=$ROOT/bench/pipeline5.lua
PY=/usr/bin/python3

command -v tcpdump >/dev/null || { echo "replay.sh: tcpdump not found (tools/install-deps test)" >&2; exit 2; }
[[ -r $CAPTURE ]] || { echo "replay.sh: $CAPTURE not readable" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nta-replay-bench.XXXXXX")
[[ ${REPLAY_KEEP:-0} == 1 ]] || trap 'rm -rf "$WORK"' EXIT

# The repeated capture: pcap records copied as they are, timestamps shifted.
$PY - "$CAPTURE" "$WORK/synflood_x$COPIES.pcap" "$COPIES" <<'EOF'
import struct, sys
src, dst, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(src, "rb").read()
e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
recs, off = [], 24
while off < len(data):
    sec, frac, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
    recs.append((sec, frac, incl, orig, data[off + 16:off + 16 + incl]))
    off += 16 + incl
with open(dst, "wb") as f:
    f.write(data[:24])
    for c in range(copies):
        for sec, frac, incl, orig, p in recs:
            f.write(struct.pack(e + "IIII", sec + 30 * c, frac, incl, orig) + p)
EOF

ONE=$WORK/one_window.lua
cat >"$ONE" <<'EOF'
input { lateness = "1h", idle_timeout = "1h" }
window "traffic" { size = "10s", sum = "bytes" }
EOF

# timed.py OUT CMD...: runs CMD, writes "wall_ms cpu_ms" of it to OUT (CPU =
# the child's user + sys from getrusage, microsecond resolution) and exits
# with CMD's status.
cat >"$WORK/timed.py" <<'EOF'
import resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.call(sys.argv[2:])
wall = (time.monotonic() - t) * 1000
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    f.write("%.1f %.1f\n" % (wall, (ru.ru_utime + ru.ru_stime) * 1000))
sys.exit(rc)
EOF

# run_one KIND FILE: writes "wall_ms cpu_ms" to $WORK/res and, for nta-run,
# "packets records" to $WORK/KIND.count; checks the run. KIND is tcpdump, or
# MODE-SCRIPT with MODE packets|flows and SCRIPT one|five.
run_one() {
    local kind=$1 file=$2 log=$WORK/run.log script=$ONE
    [[ $kind == *-five ]] && script=$PIPELINE5
    if [[ $kind == tcpdump ]]; then
        $PY "$WORK/timed.py" "$WORK/res" tcpdump -r "$file" -w /dev/null 2>"$log"
        return
    fi
    $PY "$WORK/timed.py" "$WORK/res" \
        "$NTA_RUN" --replay "$file" "--${kind%-*}" --as-fast-as-possible "$script" \
        >"$WORK/results.jsonl" 2>"$log" ||
        { cat "$log" >&2; echo "replay.sh: nta-run failed" >&2; exit 1; }
    grep -q " 0 bad, 0 late" "$log" ||
        { cat "$log" >&2; echo "replay.sh: bad or late records" >&2; exit 1; }
    sed -n 's/.*(pcap): \([0-9]*\) packets read, \([0-9]*\) records.*/\1 \2/p' "$log" \
        >"$WORK/$kind.count"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

KINDS=(tcpdump packets-one flows-one packets-five flows-five)
echo "| input | run | records | wall (ms) | CPU (ms) | records/s (CPU) | records/s (wall) |"
echo "|---|---|---:|---:|---:|---:|---:|"
for file in "$CAPTURE" "$WORK/synflood_x$COPIES.pcap"; do
    declare -A walls=() cpus=()
    for ((i = 0; i < REPEAT; i++)); do
        for kind in "${KINDS[@]}"; do
            run_one "$kind" "$file"
            read -r w c <"$WORK/res"
            walls[$kind]+="$w "
            cpus[$kind]+="$c "
        done
    done
    read -r npackets _ <"$WORK/packets-one.count"
    for kind in "${KINDS[@]}"; do
        wall=$(tr ' ' '\n' <<<"${walls[$kind]}" | grep . | median)
        cpu=$(tr ' ' '\n' <<<"${cpus[$kind]}" | grep . | median)
        if [[ $kind == tcpdump ]]; then
            nrec=$npackets
            what="tcpdump -r FILE -w /dev/null"
        else
            read -r _ nrec <"$WORK/$kind.count"
            what="nta-run --replay --${kind%-*}, $([[ $kind == *-one ]] && echo "1 window" || echo "pipeline5.lua")"
        fi
        awk -v f="$(basename "$file")" -v w="$what" -v r="$nrec" -v wall="$wall" -v cpu="$cpu" \
            'function rate(ms) { return ms > 0 ? sprintf("%.0f", r / (ms / 1000)) : "-" }
             BEGIN { printf "| %s | %s | %d | %.0f | %.0f | %s | %s |\n", f, w, r, wall, cpu, rate(cpu), rate(wall) }'
    done
    unset walls cpus
done

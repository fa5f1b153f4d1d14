#!/usr/bin/env bash
# bench/decode_bench.sh: JSON decoding cost per record, jsmn against the
# single-pass scanner of runtime/decode.c, in one process (bench/decode_bench.c).
#
# Usage: bench/decode_bench.sh NTA_RUN_BINARY   (e.g. build/nta-run, a release build)
#
# Generates BENCH_RECORDS records (default 1000000) with scripts/gen_traffic.lua
# in each of its JSON formats (the benchmark's json, and goflow2), compiles
# decode_bench.c with runtime/decode.c and runtime/record.c at -O3 (the flags
# of CMake's Release), and decodes each file BENCH_ROUNDS times (default 7)
# per reading, alternating: json records as format json and auto, goflow2
# records as format goflow2. No Kafka; a few seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
(($# == 1)) || { echo "usage: bench/decode_bench.sh NTA_RUN_BINARY" >&2; exit 2; }
NTA=$(realpath "$1")
N=${BENCH_RECORDS:-1000000}
ROUNDS=${BENCH_ROUNDS:-7}
JSMN_INC=$(dirname "$(find /usr/include /usr/local/include -name jsmn.h -print -quit)")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nta-decode-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

cc -O3 -DNDEBUG -std=gnu11 -I "$ROOT/runtime" -I "$JSMN_INC" -o "$WORK/decode_bench" \
    "$ROOT/bench/decode_bench.c" "$ROOT/runtime/decode.c" "$ROOT/runtime/record.c"
for f in json goflow2; do
    NTA_HTTP=off "$NTA" --fast "$ROOT/scripts/gen_traffic.lua" rate=100000 "count=$N" \
        start=1700000000000 "format=$f" >"$WORK/$f.jsonl" 2>/dev/null
done
"$WORK/decode_bench" "$WORK/json.jsonl" json "$ROUNDS"
"$WORK/decode_bench" "$WORK/json.jsonl" auto "$ROUNDS"
"$WORK/decode_bench" "$WORK/goflow2.jsonl" goflow2 "$ROUNDS"

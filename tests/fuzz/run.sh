#!/usr/bin/env bash
# run.sh BUILD_DIR [SECONDS]: runs every fuzz target of BUILD_DIR/tests/fuzz
# for SECONDS each (default 12), starting from the committed seed corpus
# (tests/fuzz/corpus/<target>, read only). New inputs and crash artifacts go
# to a scratch directory under BUILD_DIR, so the committed corpus changes
# only by hand. Exits non-zero on the first crash, leak or timeout, naming
# the input that caused it. See tests/README.md for longer runs.
set -euo pipefail

BUILD=${1:?usage: run.sh BUILD_DIR [SECONDS]}
SECONDS_EACH=${2:-12}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$BUILD/fuzz-work
TARGETS=(pcap zeek cic jsonl decode)

for t in "${TARGETS[@]}"; do
    bin=$BUILD/tests/fuzz/fuzz_$t
    [[ -x $bin ]] || { echo "fuzz: $bin not built" >&2; exit 1; }
    rm -rf "$WORK/$t" && mkdir -p "$WORK/$t/new" "$WORK/$t/artifacts"
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb bounds a leak
    # or runaway allocation well under the machine's memory.
    if ! "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=1024 \
        -print_final_stats=1 -artifact_prefix="$WORK/$t/artifacts/" \
        "$WORK/$t/new" "$HERE/corpus/$t" >"$WORK/$t/log" 2>&1; then
        tail -n 40 "$WORK/$t/log" >&2
        echo "fuzz: fuzz_$t failed; the input is in $WORK/$t/artifacts/ (add it to" \
            "tests/fuzz/corpus/$t/ as crash-<what> and write a unit test for it)" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/$t/log")
    echo "fuzz: fuzz_$t: ${runs:-?} inputs in ${SECONDS_EACH}s, no crash"
done

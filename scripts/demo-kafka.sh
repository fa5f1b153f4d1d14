#!/usr/bin/env bash
# make demo-kafka: the demo as separate processes through a local broker.
#   generator: nta-run -b ADDR scripts/gen_traffic.lua ...  -> network-traffic
#   pipeline:  nta-run -b ADDR scripts/demo.lua             -> processed-data
# Ctrl-C stops both processes and the broker.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NTA_RUN=${1:-$ROOT/build/nta-run}
export NTA_KAFKA_DIR=${NTA_KAFKA_DIR:-${TMPDIR:-/tmp}/nta-demo-kafka}

addr=$("$ROOT/tools/kafka-local" start network-traffic:3 processed-data network-traffic-dlq | tail -n 1)
gen_pid=
cleanup() {
    [[ -n $gen_pid ]] && kill "$gen_pid" 2>/dev/null && wait "$gen_pid" 2>/dev/null
    "$ROOT/tools/kafka-local" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM

echo "demo-kafka: broker at $addr; results go to processed-data"
echo "demo-kafka: read them with: kcat -b $addr -C -t processed-data -o end"
"$NTA_RUN" -b "$addr" "$ROOT/scripts/gen_traffic.lua" rate=20000 \
    inject=portscan@30+20,flood@70+20 &
gen_pid=$!
"$NTA_RUN" -b "$addr" -g nta-demo "$ROOT/scripts/demo.lua"

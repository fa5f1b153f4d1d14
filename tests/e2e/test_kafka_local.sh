#!/usr/bin/env bash
# End-to-end check of tools/kafka-local: a real broker on free ports with its
# own state dir starts, takes a 3-partition topic, carries 1000 messages through
# kcat both ways unchanged, and stops. The broker is always stopped on exit.
#
# Needs what tools/kafka-local needs (tools/install-deps test kafka).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KAFKA_LOCAL=$ROOT/tools/kafka-local
TOPIC=e2e-kafka-local
PARTITIONS=3
COUNT=1000

checks=0
ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
fail() { echo "FAIL: test_kafka_local: $*" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nta-test-kafka.XXXXXX")
export NTA_KAFKA_DIR=$WORK/kafka

cleanup() {
    local rc=$?
    "$KAFKA_LOCAL" stop >/dev/null 2>&1 || true
    if ((rc != 0)) && [[ -f $NTA_KAFKA_DIR/kafka.log ]]; then
        echo "--- tail of the broker log ---" >&2
        tail -n 30 "$NTA_KAFKA_DIR/kafka.log" >&2
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
# bash skips the EXIT trap when killed by a signal it does not trap; a CI
# timeout or Ctrl-C must still stop the broker.
trap 'exit 130' INT
trap 'exit 143' TERM

# Two distinct free ports from the kernel, so that a developer's own broker or
# a parallel test run never collides with this one. Both sockets are held until
# both numbers are known, so the two cannot be the same.
read -r NTA_KAFKA_PORT NTA_KAFKA_CONTROLLER_PORT < <(
    /usr/bin/python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))'
)
export NTA_KAFKA_PORT NTA_KAFKA_CONTROLLER_PORT
ADDR=127.0.0.1:$NTA_KAFKA_PORT

# --- start ----------------------------------------------------------------
out=$("$KAFKA_LOCAL" start "$TOPIC:$PARTITIONS") || fail "kafka-local start failed"
[[ $(tail -n 1 <<<"$out") == "$ADDR" ]] ||
    fail "start printed '$out', expected '$ADDR' as the last line"
ok "broker started on $ADDR"

status=$("$KAFKA_LOCAL" status) || fail "status says not running after start"
[[ $status == "$ADDR" ]] || fail "status printed '$status', expected '$ADDR'"
ok "status reports $ADDR"

metadata=$(kcat -b "$ADDR" -L -t "$TOPIC" -m 10) || fail "kcat -L failed"
leaders=$(grep -c 'partition [0-9]*, leader 1,' <<<"$metadata" || true)
((leaders == PARTITIONS)) ||
    fail "topic $TOPIC has $leaders partitions with a leader, expected $PARTITIONS:
$metadata"
ok "topic $TOPIC has $PARTITIONS partitions, each with a leader"

# --- produce and consume -------------------------------------------------
# Distinct keys spread the messages over all partitions; the payload carries
# spaces and punctuation so that a mangled value would show.
expected=$WORK/expected.txt
actual=$WORK/actual.txt
for ((i = 1; i <= COUNT; i++)); do
    printf 'key-%04d\tvalue %04d: the quick brown fox, {"n": %d}\n' "$i" "$i" "$i"
done >"$expected"

timeout 60 kcat -b "$ADDR" -P -t "$TOPIC" -K $'\t' -X acks=all <"$expected" ||
    fail "kcat producer failed"
ok "produced $COUNT messages"

# -e exits once every partition is read to its end; the format line rebuilds
# the input line (key TAB value).
timeout 60 kcat -b "$ADDR" -C -t "$TOPIC" -e -o beginning -q \
    -f '%k\t%s\n' >"$actual" || fail "kcat consumer failed"
got=$(wc -l <"$actual")
((got == COUNT)) || fail "consumed $got messages, expected $COUNT"
ok "consumed $COUNT messages"

# Order holds within a partition only, so compare sorted.
diff <(sort "$expected") <(sort "$actual") >"$WORK/diff.txt" ||
    fail "consumed content differs from produced content:
$(head -n 20 "$WORK/diff.txt")"
ok "content matches"

used=$(timeout 60 kcat -b "$ADDR" -C -t "$TOPIC" -e -o beginning -q -f '%p\n' | sort -u | wc -l)
((used == PARTITIONS)) || fail "messages landed in $used partitions, expected $PARTITIONS"
ok "messages spread over all $PARTITIONS partitions"

# --- stop -------------------------------------------------------------------
pid=$(<"$NTA_KAFKA_DIR/kafka.pid")
"$KAFKA_LOCAL" stop || fail "kafka-local stop failed"
if "$KAFKA_LOCAL" status >/dev/null 2>&1; then fail "status says running after stop"; fi
! kill -0 "$pid" 2>/dev/null || fail "broker process $pid still alive after stop"
[[ ! -e $NTA_KAFKA_DIR/kafka.pid ]] || fail "pid file left behind after stop"
if (exec 3<>"/dev/tcp/127.0.0.1/$NTA_KAFKA_PORT") 2>/dev/null; then
    fail "port $NTA_KAFKA_PORT still accepts connections after stop"
fi
ok "broker stopped"

echo "PASS: test_kafka_local ($checks checks)"

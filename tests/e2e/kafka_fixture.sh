#!/usr/bin/env bash
# ctest fixture: start | stop the broker that the end-to-end tests share.
#
# start picks free loopback ports (so a developer's own broker, or a second
# checkout, never collides), starts tools/kafka-local with a state dir in the
# build tree, and writes the bootstrap address to $STATE/bootstrap, which
# the tests read. stop stops that broker.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=${1:?usage: kafka_fixture.sh STATE_DIR start|stop}
CMD=${2:?usage: kafka_fixture.sh STATE_DIR start|stop}
export NTA_KAFKA_DIR=$STATE/broker

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case $CMD in
start)
    mkdir -p "$STATE"
    if [[ -f $STATE/ports ]] && NTA_KAFKA_PORT=$(cut -d' ' -f1 "$STATE/ports") \
        "$ROOT/tools/kafka-local" status >/dev/null 2>&1; then
        "$ROOT/tools/kafka-local" stop >/dev/null 2>&1 || true
    fi
    port=$(free_port)
    cport=$(free_port)
    while [[ $cport == "$port" ]]; do cport=$(free_port); done
    echo "$port $cport" >"$STATE/ports"
    addr=$(NTA_KAFKA_PORT=$port NTA_KAFKA_CONTROLLER_PORT=$cport "$ROOT/tools/kafka-local" start | tail -n 1)
    echo "$addr" >"$STATE/bootstrap"
    echo "broker up at $addr"
    ;;
stop)
    [[ -f $STATE/ports ]] || exit 0
    read -r port cport <"$STATE/ports"
    NTA_KAFKA_PORT=$port NTA_KAFKA_CONTROLLER_PORT=$cport "$ROOT/tools/kafka-local" stop
    rm -f "$STATE/ports" "$STATE/bootstrap"
    ;;
*)
    echo "usage: kafka_fixture.sh STATE_DIR start|stop" >&2
    exit 2
    ;;
esac

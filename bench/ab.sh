#!/usr/bin/env bash
# Two builds of DicoEvent side by side, on the embedded defaults, measured in
# interleaved rounds with the plain ceiling: on a machine whose speed drifts
# within minutes, only measurements taken next to each other tell a change
# from the drift.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY [ROUNDS]     (default 3 rounds)
#
# e.g. build the old commit in a worktree with the same CARGO_TARGET_DIR,
# copy its target/release/dicoevent aside, then build the new one. Each round
# runs wrk (-t2 -c32, BENCH_DURATION, default 8s) on: the ceiling's /plain,
# /healthz and a cached GET /api/events/{id}/ of each build, and /plain again.
# Needs wrk and python3; builds bench/ceiling if needed. Stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
    echo "usage: bench/ab.sh OLD_BINARY NEW_BINARY [ROUNDS]" >&2
    exit 2
fi
OLD=$(realpath "$1")
NEW=$(realpath "$2")
ROUNDS=${3:-3}
DURATION="${BENCH_DURATION:-8s}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dicoevent-target}"
cargo build --release --quiet --manifest-path bench/ceiling/Cargo.toml
CEILING="$CARGO_TARGET_DIR/release/dicoevent-ceiling"

WORK=$(mktemp -d /tmp/dicoevent-ab.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# $1: name, $2: binary, $3: port. Migrates, creates a superuser and one event
# (its id in $WORK/$1/event), and serves.
start() {
    local dir="$WORK/$1" bin=$2 port=$3
    mkdir -p "$dir"
    local env=(DATA_DIR="$dir/data" LOG_DIR="$dir/logs" SECRET_KEY="ab-secret-key-$(date +%s)-0123456789abcdef")
    env "${env[@]}" "$bin" migrate >/dev/null
    env "${env[@]}" DICOEVENT_SUPERUSER_PASSWORD="Bench-Passw0rd!" \
        "$bin" createsuperuser --username bench --email bench@example.com >/dev/null
    env "${env[@]}" PORT="$port" "$bin" serve --no-worker >"$dir/server.log" 2>&1 &
    PIDS+=("$!")
    for _ in $(seq 1 200); do
        curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
        sleep 0.05
    done
    local token
    token=$(curl -fs "http://127.0.0.1:$port/api/login/" -H 'Content-Type: application/json' \
        -d '{"username":"bench","password":"Bench-Passw0rd!"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])')
    curl -fs "http://127.0.0.1:$port/api/events/" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' \
        -d '{"name":"Bench event","description":"d","location":"Jakarta","start_time":"2030-01-01T10:00:00Z","end_time":"2030-01-01T12:00:00Z","quota":1000,"category":"Tech"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' >"$dir/event"
    # Cached before it is measured.
    curl -fs -o /dev/null "http://127.0.0.1:$port/api/events/$(cat "$dir/event")/"
}

OLD_PORT=$(free_port); start old "$OLD" "$OLD_PORT"
NEW_PORT=$(free_port); start new "$NEW" "$NEW_PORT"
CEILING_PORT=$(free_port)
"$CEILING" "$CEILING_PORT" >"$WORK/ceiling.log" 2>&1 &
PIDS+=("$!")
sleep 0.5
OLD_EVENT=$(cat "$WORK/old/event")
NEW_EVENT=$(cat "$WORK/new/event")

measure() { # label, url
    local out rps p99
    out=$(wrk -t2 -c32 -d"$DURATION" --latency "$2" 2>&1)
    rps=$(echo "$out" | awk '/Requests\/sec/ {printf "%d", $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    printf "%-22s %10s req/s   p99 %s\n" "$1" "$rps" "$p99"
}

echo "old: $OLD"
echo "new: $NEW"
for round in $(seq 1 "$ROUNDS"); do
    echo "-- round $round"
    measure "ceiling /plain" "http://127.0.0.1:$CEILING_PORT/plain"
    measure "old /healthz" "http://127.0.0.1:$OLD_PORT/healthz"
    measure "new /healthz" "http://127.0.0.1:$NEW_PORT/healthz"
    measure "old cached detail" "http://127.0.0.1:$OLD_PORT/api/events/$OLD_EVENT/"
    measure "new cached detail" "http://127.0.0.1:$NEW_PORT/api/events/$NEW_EVENT/"
    measure "ceiling /plain" "http://127.0.0.1:$CEILING_PORT/plain"
done

#!/usr/bin/env bash
# Schema-driven fuzzing: schemathesis (PyPI) against /api/schema/ of a real
# server on PostgreSQL, once as the superuser and once as a plain user, with a
# fixed seed and budget. Fails on any 5xx, any response that violates the
# schema (status, content type, headers, body) and any crash of the server.
#
#   tests/fuzz/run.sh                 (after a `cargo build`; .ci/run runs it)
#
# Env: SCHEMATHESIS (the CLI; default: the venv .ci/run installs),
#      FUZZ_MAX_EXAMPLES (per operation and phase, default 15), FUZZ_SEED (default 20261125),
#      TEST_DATABASE_URL (a PostgreSQL server; a database is created and dropped).
# Stops only what it started.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dicoevent-target}"
ST="${SCHEMATHESIS:-/var/tmp/dicoevent-tools/fuzz-venv/bin/schemathesis}"
BIN="$CARGO_TARGET_DIR/debug/dicoevent"
MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-15}"
SEED="${FUZZ_SEED:-20261125}"
PG_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
if [ ! -x "$ST" ]; then
    echo "schemathesis not found at $ST (set SCHEMATHESIS, or run .ci/run once to install it)" >&2
    exit 2
fi
if [ ! -x "$BIN" ]; then
    echo "the server binary $BIN is missing: run 'cargo build' first" >&2
    exit 2
fi

WORK=$(mktemp -d /tmp/dicoevent-fuzz.XXXXXX)
# Kept after the run: the full schemathesis output and its reports.
OUT="${FUZZ_OUT:-/tmp/dicoevent-fuzz-report}"
rm -rf "$OUT" && mkdir -p "$OUT"
DB_NAME="dicoevent_fuzz_$$"
SERVER_PID=""
PG_ADMIN="${PG_URL%/*}/postgres"
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
psql -q "$PG_ADMIN" -c "CREATE DATABASE $DB_NAME" >/dev/null

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
SERVER_ENV=(
    DATABASE_URL="${PG_URL%/*}/$DB_NAME"
    SECRET_KEY="fuzzing-secret-key-fuzzing-secret-key"
    PORT="$PORT" LOG_DIR="$WORK/logs" DATA_DIR="$WORK/data"
    LOG_LEVEL=info
)
env "${SERVER_ENV[@]}" "$BIN" migrate >/dev/null
env "${SERVER_ENV[@]}" DICOEVENT_SUPERUSER_PASSWORD="Fuzz-Passw0rd!" \
    "$BIN" createsuperuser --username fuzzadmin --email fuzzadmin@example.com >/dev/null
env "${SERVER_ENV[@]}" "$BIN" serve >"$WORK/server.out" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 200); do curl -fs "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.05; done

post() { curl -fsS -X POST "$BASE$1" -H 'Content-Type: application/json' -H "${3:-X-None: 1}" -d "$2"; }
token() { post /api/login/ "{\"username\":\"$1\",\"password\":\"$2\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])'; }
ADMIN=$(token fuzzadmin "Fuzz-Passw0rd!")
post /api/users/ '{"username":"fuzzuser","password":"Fuzz-Passw0rd!","email":"fuzzuser@example.com"}' >/dev/null
USER=$(token fuzzuser "Fuzz-Passw0rd!")
# Something real to find: an event with a ticket, a registration and a payment.
EVENT=$(post /api/events/ '{"name":"Fuzz fest","description":"d","location":"Here","start_time":"2031-01-01T10:00:00Z","end_time":"2031-01-01T12:00:00Z","quota":100,"category":"Tech"}' \
    "Authorization: Bearer $ADMIN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
TICKET=$(post /api/tickets/ "{\"event_id\":\"$EVENT\",\"name\":\"Regular\",\"price\":100,\"sales_start\":\"2020-01-01T00:00:00Z\",\"sales_end\":\"2030-12-31T00:00:00Z\",\"quota\":50}" \
    "Authorization: Bearer $ADMIN" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
REGISTRATION=$(post /api/registrations/ "{\"ticket_id\":\"$TICKET\"}" "Authorization: Bearer $USER" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
post /api/payments/ "{\"registration_id\":\"$REGISTRATION\",\"payment_method\":\"QRIS\",\"amount_paid\":100}" \
    "Authorization: Bearer $USER" >/dev/null

CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
STATUS=0
TOTAL=0
for role in user superuser; do  # the user first: the superuser may delete them
    case $role in superuser) TOKEN=$ADMIN ;; user) TOKEN=$USER ;; esac
    echo "== schemathesis as the $role (seed $SEED, up to $MAX_EXAMPLES examples per operation and phase)"
    set +e
    "$ST" --no-color run "$BASE/api/schema/" \
        --header "Authorization: Bearer $TOKEN" \
        --checks "$CHECKS" \
        --seed "$SEED" \
        --max-examples "$MAX_EXAMPLES" \
        --workers 1 \
        --request-timeout 30 \
        --exclude-path /api/logout/ \
        --exclude-name "DELETE /api/users/{id}/" \
        --report junit,json --report-dir "$OUT/report-$role" \
        2>&1 | tee "$OUT/schemathesis-$role.txt" | tail -40
    rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" -ne 0 ] && STATUS=1
    cases=$(grep -oE '^ *[0-9]+ generated' "$OUT/schemathesis-$role.txt" | tr -dc '0-9')
    cases=${cases:-0}
    TOTAL=$((TOTAL + cases))
    echo "== $role: $cases generated requests, exit $rc"
done

# The server must still be alive and must not have logged a panic or a 500.
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "FAIL: the server died during fuzzing; its output:" >&2
    tail -50 "$WORK/server.out" >&2
    STATUS=1
fi
ERRORS=$(cat "$WORK"/logs/error*.log 2>/dev/null | wc -l)
REQUESTS=$(grep -c ' - [A-Z]* /' "$WORK"/logs/application*.log 2>/dev/null || true)
FIVE_XX=$(grep -cE ' - [A-Z]+ [^ ]+ 5[0-9][0-9] ' "$WORK"/logs/application*.log 2>/dev/null || true)
echo "== schemathesis generated requests: $TOTAL; requests served: $REQUESTS; 5xx: $FIVE_XX; ERROR log lines: $ERRORS"
if [ "$ERRORS" -ne 0 ] || [ "$FIVE_XX" -ne 0 ]; then
    echo "FAIL: errors logged by the server:" >&2
    cat "$WORK"/logs/error*.log >&2
    cp "$WORK"/logs/*.log "$OUT"/ 2>/dev/null || true
    STATUS=1
fi
exit $STATUS

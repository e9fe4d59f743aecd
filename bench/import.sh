#!/usr/bin/env bash
# import-django at scale: a Django source of 10,000 users, 500 events, 1,000
# tickets, 100,000 registrations and 30,000 payments (the captured fixture's
# schema and rows, plus generated ones), imported by the release binary into
# a fresh PostgreSQL database and into a fresh SQLite file; then each import
# again (nothing to do). Prints the timings.
#
#   bench/import.sh [ADMIN_URL]     # default postgres://postgres@127.0.0.1:5432/postgres
#
# Scratch databases are created and dropped here; nothing else is touched.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL="${1:-${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
USERS="${BENCH_USERS:-10000}"
REGISTRATIONS="${BENCH_REGISTRATIONS:-100000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dicoevent-target}"
FIXTURE="$PWD/tests/fixtures/django-dicoevent"

echo "== building the release binary"
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/dicoevent"

SUFFIX="$$_$(date +%s)"
SRC="dicoevent_bench_src_$SUFFIX"
DST="dicoevent_bench_dst_$SUFFIX"
WORK=$(mktemp -d /tmp/dicoevent-bench-import.XXXXXX)
base_url() { echo "${ADMIN_URL%/*}/$1"; }
cleanup() {
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$SRC\" WITH (FORCE)" >/dev/null 2>&1 || true
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$DST\" WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== generating the source: $USERS users, $REGISTRATIONS registrations"
psql -q "$ADMIN_URL" -c "CREATE DATABASE \"$SRC\"" >/dev/null
psql -q -v ON_ERROR_STOP=1 "$(base_url "$SRC")" -f "$FIXTURE/dump.sql" >/dev/null
psql -q -v ON_ERROR_STOP=1 "$(base_url "$SRC")" >/dev/null <<SQL
-- One real Django hash for everyone: hashing is not what is measured.
INSERT INTO users_user (password, last_login, is_superuser, username, first_name, last_name,
                        is_staff, is_active, date_joined, id, email)
SELECT (SELECT password FROM users_user WHERE username = 'Aras'), NULL, false,
       'bench_user_' || i, 'First' || i, 'Last' || i, false, true,
       '2026-01-01 00:00:00+00'::timestamptz + i * interval '1 minute',
       md5('user' || i)::uuid, 'bench_user_' || i || '@example.id'
FROM generate_series(0, $USERS - 1) AS i;
INSERT INTO users_user_groups (user_id, group_id)
SELECT md5('user' || i)::uuid, 2 FROM generate_series(0, 99) AS i;
INSERT INTO events_event (id, name, description, location, start_time, end_time, status,
                          category, quota, organizer_id)
SELECT md5('event' || i)::uuid, 'Bench event ' || i, 'Generated for the import benchmark.',
       'Jakarta', '2027-03-01 10:00:00+00'::timestamptz + i * interval '1 hour',
       '2027-03-01 14:00:00+00'::timestamptz + i * interval '1 hour',
       (ARRAY['scheduled', 'canceled', 'completed'])[1 + i % 3], 'Conference', 100000,
       md5('user' || (i % 100))::uuid
FROM generate_series(0, 499) AS i;
INSERT INTO events_ticket (id, name, price, sales_start, sales_end, quota, event_id)
SELECT md5('ticket' || i)::uuid, 'Ticket ' || i, (i * 1250.25)::numeric(12, 2),
       '2026-11-01 00:00:00+00', '2027-02-28 00:00:00+00', 1000, md5('event' || (i / 2))::uuid
FROM generate_series(0, 999) AS i;
-- Each (ticket, user) pair once: ticket i / 100, user i % $USERS.
INSERT INTO events_registration (id, registered_at, ticket_id, user_id)
SELECT md5('registration' || i)::uuid,
       '2026-12-01 00:00:00+00'::timestamptz + i * interval '1 second',
       md5('ticket' || ((i / 100) % 1000))::uuid, md5('user' || (i % $USERS))::uuid
FROM generate_series(0, $REGISTRATIONS - 1) AS i;
INSERT INTO events_payment (id, payment_method, payment_status, amount_paid, paid_at, registration_id)
SELECT md5('payment' || i)::uuid, 'QRIS', (ARRAY['paid', 'pending', 'failed'])[1 + i % 3],
       75000.50, '2026-12-02 00:00:00+00'::timestamptz + i * interval '1 second',
       md5('registration' || (i * 3))::uuid
FROM generate_series(0, LEAST(30000, $REGISTRATIONS / 3) - 1) AS i;
ANALYZE;
SQL
psql -q -t "$(base_url "$SRC")" -c "SELECT 'source rows: ' || (SELECT count(*) FROM users_user) || ' users, ' || (SELECT count(*) FROM events_registration) || ' registrations, ' || (SELECT count(*) FROM events_payment) || ' payments'"

# Runs one import; prints its wall time in seconds.
run_import() {
    local dir="$1"; shift
    local start end
    start=$(date +%s.%N)
    (cd "$dir" && env "$@" LOG_DIR="$dir/logs" SECRET_KEY=bench-secret-key-long-enough \
        "$BIN" import-django --from "$(base_url "$SRC")" --media-dir "$FIXTURE/media" \
        --report "$dir/report.txt" >"$dir/out.txt" 2>&1) || { cat "$dir/out.txt" >&2; exit 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

psql -q "$ADMIN_URL" -c "CREATE DATABASE \"$DST\"" >/dev/null
mkdir -p "$WORK/pg" "$WORK/sqlite"
PG_FIRST=$(run_import "$WORK/pg" DATABASE_URL="$(base_url "$DST")" DATA_DIR="$WORK/pg/data")
grep -E '^(table|users|registrations|payments) ' "$WORK/pg/report.txt"
PG_AGAIN=$(run_import "$WORK/pg" DATABASE_URL="$(base_url "$DST")" DATA_DIR="$WORK/pg/data")
SQ_FIRST=$(run_import "$WORK/sqlite" DATA_DIR="$WORK/sqlite/data")
SQ_AGAIN=$(run_import "$WORK/sqlite" DATA_DIR="$WORK/sqlite/data")
grep -qE '^registrations +[0-9]+ +0 +0 ' "$WORK/sqlite/report.txt" || {
    echo "the second SQLite run wrote rows:"; cat "$WORK/sqlite/report.txt"; exit 1; }

echo
echo "import-django, $USERS users + $REGISTRATIONS registrations (release build, $(nproc) cores):"
printf '  %-34s %8.1f s\n' "into PostgreSQL, first run" "$PG_FIRST"
printf '  %-34s %8.1f s\n' "into PostgreSQL, again (no change)" "$PG_AGAIN"
printf '  %-34s %8.1f s\n' "into SQLite, first run" "$SQ_FIRST"
printf '  %-34s %8.1f s\n' "into SQLite, again (no change)" "$SQ_AGAIN"

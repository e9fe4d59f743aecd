#!/usr/bin/env bash
# DicoEvent benchmark: release build on PostgreSQL + Redis (or, with
# --embedded, on SQLite + the in-process cache), seeded data, pre-issued
# tokens, each scenario driven by wrk; prints one table.
#
#   bench/run.sh                 PostgreSQL + Redis, 1k events
#   bench/run.sh --million       also the list scenario at 1M events
#   bench/run.sh --embedded      SQLite + in-process cache
#   BENCH_PROFILE=registrations bench/run.sh   also a perf profile of the
#                                 scenarios whose name contains that text
#   BENCH_ONLY=registrations bench/run.sh      only those scenarios
#   BENCH_ONLY=door bench/run.sh  only the door: scans (POST /api/checkins/)
#                                 and name searches (GET
#                                 /api/events/{id}/attendees/?search=) at one
#                                 event with 10k registrations (seeded only
#                                 when one of them runs), 16 connections
#
# The ceilings (bench/ceiling: a minimal axum server on the same stack) are
# measured in the same run, with the same wrk settings, just before each
# scenario compared with them (the machine's speed drifts during a run, so
# each ratio is taken against its neighbour): GET /plain (a constant body) for
# /healthz and, on --embedded, the cached reads; GET /redis (one Redis GET
# per request) for the cached reads on Redis. The table gives each such
# scenario's req/s as a share of its ceiling.
#
# Needs: PostgreSQL on 127.0.0.1:5432 (user postgres), Redis on 6379 (not with
# --embedded), wrk (installed from Debian if missing), python3.
# Stops only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

EMBEDDED=0
MILLION=0
DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
for arg in "$@"; do
    case "$arg" in
        --embedded) EMBEDDED=1 ;;
        --million) MILLION=1 ;;
        *) echo "unknown option $arg" >&2; exit 2 ;;
    esac
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dicoevent-target}"
if ! command -v wrk >/dev/null; then
    echo "== installing wrk"
    apt-get install -y wrk >/dev/null
fi
echo "== building the release binaries (DicoEvent, the ceiling)"
cargo build --release --quiet
cargo build --release --quiet --manifest-path bench/ceiling/Cargo.toml
BIN="$CARGO_TARGET_DIR/release/dicoevent"
CEILING_BIN="$CARGO_TARGET_DIR/release/dicoevent-ceiling"

WORK=$(mktemp -d /tmp/dicoevent-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SECRET="bench-secret-key-$(date +%s)-0123456789"
DB_NAME="dicoevent_bench"
PSQL=(psql -q -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1)

common_env=(
    SECRET_KEY="$SECRET" DATA_DIR="$WORK/data" LOG_DIR="$WORK/logs"
    LOGIN_THROTTLE_FAILURES=1000000 LOGIN_THROTTLE_ADDRESS_FAILURES=1000000
    DATABASE_POOL_SIZE=20
)
if [ "$EMBEDDED" = 1 ]; then
    DB_ENV=()
    CACHE_ENV=()
    BACKEND="SQLite + in-process cache"
else
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" -c "CREATE DATABASE $DB_NAME"
    DB_ENV=(DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB_NAME")
    CACHE_ENV=(REDIS_URL="redis://127.0.0.1:6379/0" CACHE_PREFIX="bench$(date +%s)")
    BACKEND="PostgreSQL + Redis"
fi

# $1: port, $2: log name, rest: extra env. Sets STARTED (the pid) and records
# it for cleanup; waits for /healthz. Not called in a subshell, so that the
# cleanup trap sees every pid.
start_server() {
    local port=$1 name=$2; shift 2
    env "${common_env[@]}" "${DB_ENV[@]}" "$@" PORT="$port" "$BIN" serve --no-worker \
        >"$WORK/$name.log" 2>&1 &
    STARTED=$!
    PIDS+=("$STARTED")
    for _ in $(seq 1 200); do
        curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
        sleep 0.05
    done
}

rss_mib() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

# Migrations first (so start-up below measures a migrated database).
env "${common_env[@]}" "${DB_ENV[@]}" "$BIN" migrate >/dev/null
env "${common_env[@]}" "${DB_ENV[@]}" DICOEVENT_SUPERUSER_PASSWORD="Bench-Passw0rd!" \
    "$BIN" createsuperuser --username bench --email bench@example.com >/dev/null

PORT=$(free_port)
T0=$(date +%s%N)
start_server "$PORT" cached "${CACHE_ENV[@]}"
SERVER=$STARTED
T1=$(date +%s%N)
STARTUP_MS=$(( (T1 - T0) / 1000000 ))
BASE="http://127.0.0.1:$PORT"
# A second server with the cache off (CACHE_TTL=0): every read from the database.
UNCACHED_PORT=$(free_port)
start_server "$UNCACHED_PORT" uncached CACHE_TTL=0
UNCACHED=$STARTED
UNCACHED_BASE="http://127.0.0.1:$UNCACHED_PORT"

login() {
    curl -fs "$BASE/api/login/" -H 'Content-Type: application/json' \
        -d "{\"username\": \"$1\", \"password\": \"$2\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])'
}
ADMIN=$(login bench "Bench-Passw0rd!")
api() { curl -fs "$BASE$2" -X "$1" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' ${3:+-d "$3"}; }
id_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }

echo "== seeding ($BACKEND)"
EVENT=$(api POST /api/events/ '{"name":"Bench event","description":"d","location":"Jakarta","start_time":"2030-01-01T10:00:00Z","end_time":"2030-01-01T12:00:00Z","quota":1000000,"category":"Tech"}' | id_of)
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
TICKET=$(api POST /api/tickets/ "{\"event_id\":\"$EVENT\",\"name\":\"Regular\",\"price\":100000,\"sales_start\":\"2020-01-01T00:00:00Z\",\"sales_end\":\"2030-01-01T00:00:00Z\",\"quota\":1000000}" | id_of)
SELLOUT=$(api POST /api/tickets/ "{\"event_id\":\"$EVENT\",\"name\":\"Limited\",\"price\":100000,\"sales_start\":\"2020-01-01T00:00:00Z\",\"sales_end\":\"2030-01-01T00:00:00Z\",\"quota\":500}" | id_of)
# The box office (API §9): the same two, with a 15-minute payment window and
# a waiting list.
BOX=$(api POST /api/tickets/ "{\"event_id\":\"$EVENT\",\"name\":\"Held\",\"price\":100000,\"sales_start\":\"2020-01-01T00:00:00Z\",\"sales_end\":\"2030-01-01T00:00:00Z\",\"quota\":1000000,\"payment_window_minutes\":15,\"waitlist\":true}" | id_of)
BOX_SELLOUT=$(api POST /api/tickets/ "{\"event_id\":\"$EVENT\",\"name\":\"Held, limited\",\"price\":100000,\"sales_start\":\"2020-01-01T00:00:00Z\",\"sales_end\":\"2030-01-01T00:00:00Z\",\"quota\":500,\"payment_window_minutes\":15,\"waitlist\":true}" | id_of)
for i in $(seq 1 20); do
    api POST /api/events/ "{\"name\":\"Event $i\",\"description\":\"d\",\"location\":\"Bandung\",\"start_time\":\"2029-0$(( i % 9 + 1 ))-01T10:00:00Z\",\"end_time\":\"2029-01-01T12:00:00Z\",\"quota\":100,\"category\":\"Music\"}" >/dev/null
done

# Bulk rows straight into the database: events (to 1k) and bench users.
N_USERS=120000
SEED_PY=$(cat <<'PY'
import sys, uuid, datetime
kind, n = sys.argv[1], int(sys.argv[2])
now = datetime.datetime.now(datetime.timezone.utc)
out = sys.stdout
if kind == "users":
    for i in range(n):
        u = f"benchuser{i}"
        out.write(f"{uuid.uuid4()}\t{u}\t{u}\t{u}@example.com\t{u}@example.com\tx\t\t\tf\tt\t{now.isoformat()}\n")
else:
    organizer = sys.argv[3]
    cats = ["Tech", "Music", "Art", "Sport"]
    for i in range(n):
        start = now + datetime.timedelta(minutes=i)
        out.write(f"{uuid.uuid4()}\tSeeded event {i}\tA seeded event\tCity {i % 50}\t{start.isoformat()}\t{(start + datetime.timedelta(hours=2)).isoformat()}\tscheduled\t{cats[i % 4]}\t100\t0\t{organizer}\t{now.isoformat()}\t{now.isoformat()}\n")
PY
)
SUPER_ID=$(curl -fs "$BASE/api/users/me/" -H "Authorization: Bearer $ADMIN" | id_of)
seed_events() {
    if [ "$EMBEDDED" = 1 ]; then
        python3 -c "$SEED_PY" events "$1" "$SUPER_ID" > "$WORK/events.tsv"
        python3 - "$WORK/data/dicoevent.sqlite3" "$WORK/events.tsv" <<'PY'
import sqlite3, sys, uuid
db = sqlite3.connect(sys.argv[1], timeout=60)
rows = []
for line in open(sys.argv[2]):
    f = line.rstrip("\n").split("\t")
    f[0] = uuid.UUID(f[0]).bytes; f[10] = uuid.UUID(f[10]).bytes
    rows.append(f)
db.executemany("INSERT INTO events (id,name,description,location,start_time,end_time,status,category,quota,registered,organizer_id,created_at,updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
db.commit()
PY
    else
        python3 -c "$SEED_PY" events "$1" "$SUPER_ID" |
            "${PSQL[@]}" -d "$DB_NAME" -c "COPY events (id,name,description,location,start_time,end_time,status,category,quota,registered,organizer_id,created_at,updated_at) FROM STDIN"
        # VACUUM too: otherwise autovacuum works through the new rows during
        # the scenarios that follow, and they measure it.
        "${PSQL[@]}" -d "$DB_NAME" -c "VACUUM (ANALYZE) events"
    fi
}
seed_users() {
    if [ "$EMBEDDED" = 1 ]; then
        python3 -c "$SEED_PY" users "$N_USERS" > "$WORK/users.tsv"
        python3 - "$WORK/data/dicoevent.sqlite3" "$WORK/users.tsv" <<'PY'
import sqlite3, sys, uuid
db = sqlite3.connect(sys.argv[1], timeout=60)
rows = []
for line in open(sys.argv[2]):
    f = line.rstrip("\n").split("\t")
    f[0] = uuid.UUID(f[0]).bytes
    f[8] = f[8] == "t"; f[9] = f[9] == "t"
    rows.append(f)
db.executemany("INSERT INTO users (id,username,username_key,email,email_key,password,first_name,last_name,is_superuser,is_active,date_joined) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
db.commit()
PY
        cut -f1 "$WORK/users.tsv" > "$WORK/user_ids"
    else
        python3 -c "$SEED_PY" users "$N_USERS" | tee "$WORK/users.tsv" |
            "${PSQL[@]}" -d "$DB_NAME" -c "COPY users (id,username,username_key,email,email_key,password,first_name,last_name,is_superuser,is_active,date_joined) FROM STDIN"
        cut -f1 "$WORK/users.tsv" > "$WORK/user_ids"
    fi
}
seed_events 1000
seed_users
# Access tokens for the bench users, signed like the server's (HS256).
python3 - "$SECRET" "$WORK/user_ids" > "$WORK/tokens" <<'PY'
import sys, json, hmac, hashlib, base64, time, uuid
secret = sys.argv[1].encode()
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
header = b64(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
now = int(time.time())
for uid in open(sys.argv[2]):
    claims = {"token_type": "access", "exp": now + 3600, "iat": now, "jti": uuid.uuid4().hex, "user_id": uid.strip()}
    payload = b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = b64(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    print(f"{header}.{payload}.{sig}")
PY
api GET /api/events/ >/dev/null
curl -fs "$BASE/api/events/?page_size=1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("   events in the database:", d["count"])'
curl -fs "$BASE/api/events/?page_size=100" | python3 -c 'import json,sys; [print(e["id"]) for e in json.load(sys.stdin)["events"]]' > "$WORK/event_ids"

ROWS=()
# Waits (up to 60 s) until PostgreSQL runs no query of the previous scenario:
# requests wrk gave up on may still be executing there.
pg_quiet() {
    [ "$EMBEDDED" = 1 ] && return 0
    for _ in $(seq 1 600); do
        [ "$("${PSQL[@]}" -At -d "$DB_NAME" -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB_NAME' AND state = 'active' AND pid <> pg_backend_pid()")" = 0 ] && return 0
        sleep 0.1
    done
}
# The ceilings: started at the first scenario that needs one, measured
# again before each. CEILING_RPS[plain|redis] = its latest req/s.
declare -A CEILING_RPS=()
CEILING_PID=""
CEILING_BASE=""
start_ceiling() {
    [ -n "$CEILING_PID" ] && return 0
    local port
    port=$(free_port)
    REDIS_URL="${CEILING_REDIS_URL:-redis://127.0.0.1:6379/0}" "$CEILING_BIN" "$port" \
        >"$WORK/ceiling.log" 2>&1 &
    CEILING_PID=$!
    PIDS+=("$CEILING_PID")
    CEILING_BASE="http://127.0.0.1:$port"
    for _ in $(seq 1 200); do
        curl -fs "$CEILING_BASE/plain" >/dev/null 2>&1 && break
        sleep 0.05
    done
}
# $1: plain or redis. Leaves CEILING_RPS[$1] empty if that ceiling cannot
# serve (no Redis).
measure_ceiling() {
    local kind=$1
    start_ceiling
    CEILING_RPS[$kind]=""
    if ! curl -fs "$CEILING_BASE/$kind" >/dev/null 2>&1; then
        echo "   (ceiling /$kind does not answer: see $WORK/ceiling.log)"
        return 0
    fi
    local label
    case "$kind" in
        plain) label="ceiling: GET /plain (constant body)" ;;
        redis) label="ceiling: GET /redis (one Redis GET)" ;;
    esac
    measure "$label" "$CEILING_PID" "$CEILING_BASE" "/$kind" "$EMPTY" ""
    CEILING_RPS[$kind]=$LAST_RPS
}
# $1 name, $2 server pid, $3 base url, $4 path ("-": the script builds it),
# $5 Lua script, $6 the ceiling it is compared with (plain, redis; none:
# not compared).
# Whether the scenario named $1 runs (BENCH_ONLY).
selected() {
    [ -z "${BENCH_ONLY:-}" ] || [[ "$1" == *"$BENCH_ONLY"* ]]
}
run() {
    local name=$1 ceiling=${6:-}
    selected "$name" || return 0
    [ -n "$ceiling" ] && measure_ceiling "$ceiling"
    measure "$@"
}
# Same arguments as run; always runs. Sets LAST_RPS.
measure() {
    local name=$1 pid=$2 base=$3 path=$4 lua=$5 ceiling=${6:-}
    local script="$WORK/scenario.lua"
    cat "$lua" bench/report.lua > "$script"
    [ "$path" = "-" ] && path=""
    local out perf_pid=""
    pg_quiet
    if [ -n "${BENCH_PROFILE:-}" ] && [[ "$name" == *"$BENCH_PROFILE"* ]]; then
        # CPU samples of the whole machine while wrk runs: which process
        # (server, PostgreSQL, Redis, wrk) and which functions take the time.
        perf record -q -e cpu-clock -F 499 -a -g -o "$PROFILE_DIR/perf.data" -- \
            sleep "${DURATION%s}" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    # wrk's whole output stays in $WORK/wrk.out (a scenario's extra lines).
    out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "$base$path" 2>&1 |
        tee "$WORK/wrk.out" | grep '^RESULT')
    if [ -n "$perf_pid" ]; then
        wait "$perf_pid" || true
        profile_report "$name"
    fi
    local requests duration p50 p99 non2xx
    requests=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$out")
    duration=$(sed -E 's/.*duration_us=([0-9]+).*/\1/' <<<"$out")
    p50=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$out")
    p99=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$out")
    non2xx=$(sed -E 's/.*non2xx=([0-9]+).*/\1/' <<<"$out")
    local rps ratio="-"
    rps=$(python3 -c "print(f'{$requests / ($duration / 1e6):.0f}')")
    LAST_RPS=$rps
    if [ -n "$ceiling" ] && [ -n "${CEILING_RPS[$ceiling]:-}" ]; then
        ratio=$(python3 -c "print(f'{100 * $rps / ${CEILING_RPS[$ceiling]}:.0f}% {\"$ceiling\"}')")
    fi
    ROWS+=("$(printf '%-46s %4s %9s %9s %9s %8s %9s %11s' "$name" "$CONNECTIONS" "$rps" \
        "$(python3 -c "print(f'{$p50/1000:.2f}ms')")" "$(python3 -c "print(f'{$p99/1000:.2f}ms')")" \
        "$non2xx" "$(rss_mib "$pid")MiB" "$ratio")")
    echo "   ${ROWS[-1]}"
}
EMPTY="$WORK/empty.lua"; : > "$EMPTY"

# BENCH_PROFILE=<part of a scenario name>: perf profile of that scenario,
# summarised here and kept in $PROFILE_DIR (perf report -i …/perf.data).
PROFILE_DIR=/tmp/dicoevent-bench-profile
if [ -n "${BENCH_PROFILE:-}" ]; then
    command -v perf >/dev/null || apt-get install -y linux-perf >/dev/null
    rm -rf "$PROFILE_DIR" && mkdir -p "$PROFILE_DIR"
fi
profile_report() {
    local data="$PROFILE_DIR/perf.data"
    {
        echo "== profile of: $1 (cpu-clock samples, whole machine)"
        echo "-- CPU by process"
        perf report -i "$data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -8 || true
        echo "-- server functions (self time, top 25)"
        perf report -i "$data" --no-children --comm dicoevent,tokio-rt-worker --sort sym --stdio -g none 2>/dev/null |
            grep -E '^ +[0-9]' | head -25 || true
        echo "-- PostgreSQL functions (self time, top 15)"
        perf report -i "$data" --no-children --comm postgres --sort sym --stdio -g none 2>/dev/null |
            grep -E '^ +[0-9]' | head -15 || true
    } | tee "$PROFILE_DIR/summary.txt"
}

echo "== scenarios ($DURATION each, $CONNECTIONS connections)"
# Warm the caches.
for _ in 1 2; do
    curl -fs "$BASE/api/events/$EVENT/" >/dev/null
    curl -fs "$BASE/api/tickets/" >/dev/null
    curl -fs "$BASE/api/events/?page_size=20&category=tech&ordering=-start_time" >/dev/null
done
# Cached reads are compared with the ceiling of their cache: one Redis GET,
# or none (in-process).
if [ "$EMBEDDED" = 1 ]; then CACHED=plain; else CACHED=redis; fi
run "GET /healthz" "$SERVER" "$BASE" /healthz "$EMPTY" plain
run "GET /api/events/{id}/ (cached)" "$SERVER" "$BASE" "/api/events/$EVENT/" "$EMPTY" "$CACHED"
export IDS_FILE="$WORK/event_ids"
run "GET /api/events/{id}/ (uncached, 100 ids)" "$UNCACHED" "$UNCACHED_BASE" - bench/get_random_event.lua
run "GET /api/tickets/ (cached)" "$SERVER" "$BASE" /api/tickets/ "$EMPTY" "$CACHED"
run "GET /api/events/?page_size=20&category&ordering (cached, 1k)" "$SERVER" "$BASE" "/api/events/?page_size=20&category=tech&ordering=-start_time" "$EMPTY" "$CACHED"
export LIST_PATH="/api/events/?page_size=20&category=tech&ordering=-start_time" PAGES=12
run "GET /api/events/ filtered+ordered (uncached, 1k)" "$UNCACHED" "$UNCACHED_BASE" - bench/get_random_page.lua
# Random pages on the normal server: each page a response-cache miss at
# first, the total counted once per write generation. The first run holds
# those misses (a dozen list queries at once on a cold server: about a
# tenth of a second in which every connection waits on one of them, ~1 % of
# the run); the second, the same pages all cached.
run "GET /api/events/ random pages (cache on, 1k)" "$SERVER" "$BASE" - bench/get_random_page.lua
run "GET /api/events/ random pages (cache on, 1k, again)" "$SERVER" "$BASE" - bench/get_random_page.lua
if [ "$MILLION" = 1 ]; then
    echo "== seeding to 1M events"
    seed_events 999000
    # A write, so that cached lists and totals from the 1k run are dropped.
    api POST /api/events/ '{"name":"Marker","description":"d","location":"X","start_time":"2031-01-01T10:00:00Z","end_time":"2031-01-01T12:00:00Z","quota":1,"category":"Other"}' >/dev/null
    # The same pages as at 1k (1..12), then deep ones (1..500: offsets up
    # to 10,000 rows, each a response-cache miss at first).
    run "GET /api/events/ random pages (cache on, 1M)" "$SERVER" "$BASE" - bench/get_random_page.lua
    export PAGES=500
    run "GET /api/events/ deep random pages (cache on, 1M)" "$SERVER" "$BASE" - bench/get_random_page.lua
    # Last: with the cache off every request counts 250k rows exactly.
    export PAGES=12
    run "GET /api/events/ filtered+ordered (uncached, 1M)" "$UNCACHED" "$UNCACHED_BASE" - bench/get_random_page.lua
fi
# Distinct users: the first 60,000 (more than a 10 s run can register: a
# scenario that ran out of tokens would report tokens / duration, not its rate);
# the sell-out below takes the last 60,000.
head -n 60000 "$WORK/tokens" > "$WORK/tokens_distinct"
export TOKENS_FILE="$WORK/tokens_distinct" TICKET="$TICKET"
run "POST /api/registrations/ (distinct users)" "$SERVER" "$BASE" - bench/register.lua
SOLD=$(curl -fs "$BASE/api/tickets/$TICKET/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sold"])')
# Sell-out: the users who did not register yet, on a ticket with quota 500.
tail -n 60000 "$WORK/tokens" > "$WORK/tokens_sellout"
export TOKENS_FILE="$WORK/tokens_sellout" TICKET="$SELLOUT"
run "POST /api/registrations/ (sell-out, quota 500)" "$SERVER" "$BASE" - bench/register.lua
SELLOUT_SOLD=$(curl -fs "$BASE/api/tickets/$SELLOUT/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sold"])')
if [ "$EMBEDDED" = 1 ]; then
    SELLOUT_ROWS=$(python3 -c "import sqlite3,uuid,sys; db=sqlite3.connect('$WORK/data/dicoevent.sqlite3'); print(db.execute('select count(*) from registrations where ticket_id=?', (uuid.UUID('$SELLOUT').bytes,)).fetchone()[0])")
else
    SELLOUT_ROWS=$("${PSQL[@]}" -d "$DB_NAME" -tAc "SELECT count(*) FROM registrations WHERE ticket_id = '$SELLOUT'")
fi
# The same with a payment window and a waiting list (other tickets of the
# same users: one registration per user and ticket).
export TOKENS_FILE="$WORK/tokens_distinct" TICKET="$BOX"
run "POST /api/registrations/ (window + waiting list)" "$SERVER" "$BASE" - bench/register.lua
export TOKENS_FILE="$WORK/tokens_sellout" TICKET="$BOX_SELLOUT"
run "POST /api/registrations/ (window + waiting list, sell-out 500)" "$SERVER" "$BASE" - bench/register.lua
BOX_SOLD=$(curl -fs "$BASE/api/tickets/$BOX_SELLOUT/" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sold"])')
BOX_SUMMARY=""
if [ "$EMBEDDED" = 0 ] && selected "registrations (window"; then
    BOX_ROWS=$("${PSQL[@]}" -d "$DB_NAME" -tAc "SELECT count(*) FROM registrations WHERE ticket_id = '$BOX_SELLOUT' AND status = 'awaiting_payment'")
    # Expiry: 10,000 holds made overdue, then one workers' pass (the
    # `send-reminders` command) gives them back; timed until none is left.
    "${PSQL[@]}" -d "$DB_NAME" -c "UPDATE registrations SET hold_expires_at = now() - interval '1 minute' WHERE id IN (SELECT id FROM registrations WHERE ticket_id = '$BOX' AND status = 'awaiting_payment' LIMIT 10000)" >/dev/null
    OVERDUE=$("${PSQL[@]}" -d "$DB_NAME" -tAc "SELECT count(*) FROM registrations WHERE status = 'awaiting_payment' AND hold_expires_at <= now()")
    T_EXPIRY=$(date +%s%N)
    env "${common_env[@]}" "${DB_ENV[@]}" "${CACHE_ENV[@]}" "$BIN" send-reminders >"$WORK/expiry.log" 2>&1 &
    EXPIRY_PID=$!
    PIDS+=("$EXPIRY_PID")
    LEFT=$OVERDUE
    for _ in $(seq 1 600); do
        LEFT=$("${PSQL[@]}" -d "$DB_NAME" -tAc "SELECT count(*) FROM registrations WHERE status = 'awaiting_payment' AND hold_expires_at <= now()")
        [ "$LEFT" = 0 ] && break
        sleep 0.1
    done
    EXPIRY_MS=$(( ($(date +%s%N) - T_EXPIRY) / 1000000 ))
    kill "$EXPIRY_PID" 2>/dev/null || true
    wait "$EXPIRY_PID" 2>/dev/null || true
    BOX_SUMMARY="box office: sell-out with window + waiting list: quota 500, sold=$BOX_SOLD, holds=$BOX_ROWS; expiry of $OVERDUE overdue holds: ${EXPIRY_MS} ms to none left ($LEFT left)"
fi
export LOGIN_USER=bench LOGIN_PASSWORD="Bench-Passw0rd!"
run "POST /api/login/ (Argon2, report only)" "$SERVER" "$BASE" /api/login/ bench/login.lua
# Cached reads while logins run at full tilt: hashing must not starve them.
cat bench/login.lua > "$WORK/login_load.lua"
wrk -t1 -c16 -d"$DURATION" -s "$WORK/login_load.lua" "$BASE/api/login/" >/dev/null 2>&1 &
LOGIN_LOAD=$!
PIDS+=("$LOGIN_LOAD")
CONNECTIONS=16 run "GET /api/events/{id}/ (cached, during logins)" "$SERVER" "$BASE" "/api/events/$EVENT/" "$EMPTY"
wait "$LOGIN_LOAD" || true

# The door: one event (open for admission: it starts in an hour) with a free
# ticket and DOOR_N registrations of bench users, whose names are made
# real-looking for the search; every registration's long code fetched once.
DOOR_SCAN="POST /api/checkins/ (door, 10k registrations)"
DOOR_SEARCH="GET /api/events/{id}/attendees/?search= (door, 10k attendees)"
# The same at a steady rate: 16 connections, each waiting a random pause of
# PACE_MS on average after an answer (about 500 scans/s and 100 searches/s,
# the issue's door load), as independent door lanes send.
DOOR_SCAN_PACED="POST /api/checkins/ (door, paced ~500/s)"
DOOR_SEARCH_PACED="GET /api/events/{id}/attendees/?search= (door, paced ~100/s)"
DOOR_N=10000
DOOR_SUMMARY=""
if selected "$DOOR_SCAN" || selected "$DOOR_SEARCH" || selected "$DOOR_SCAN_PACED" ||
    selected "$DOOR_SEARCH_PACED"; then
    echo "== seeding the door: $DOOR_N registrations"
    DOOR_DIR="$WORK/door"; mkdir -p "$DOOR_DIR"
    DOOR_EVENT=$(api POST /api/events/ "{\"name\":\"Door event\",\"description\":\"d\",\"location\":\"Jakarta\",\"start_time\":\"$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)\",\"end_time\":\"$(date -u -d '+4 hours' +%Y-%m-%dT%H:%M:%SZ)\",\"quota\":$(( DOOR_N * 2 )),\"category\":\"Tech\"}" | id_of)
    DOOR_TICKET=$(api POST /api/tickets/ "{\"event_id\":\"$DOOR_EVENT\",\"name\":\"Free entry\",\"price\":0,\"sales_start\":\"2020-01-01T00:00:00Z\",\"sales_end\":\"$(date -u -d '+30 minutes' +%Y-%m-%dT%H:%M:%SZ)\",\"quota\":$DOOR_N}" | id_of)
    python3 bench/door.py rows "$DOOR_N" "$WORK/user_ids" "$DOOR_EVENT" "$DOOR_TICKET" "$DOOR_DIR"
    if [ "$EMBEDDED" = 1 ]; then
        python3 bench/door.py sqlite "$WORK/data/dicoevent.sqlite3" "$DOOR_DIR"
    else
        "${PSQL[@]}" -d "$DB_NAME" <<SQL
BEGIN;
\copy registrations (id,ticket_id,user_id,event_id,registered_at,short_code) FROM '$DOOR_DIR/registrations.tsv'
CREATE TEMP TABLE door_names (id uuid PRIMARY KEY, first_name text, last_name text);
\copy door_names FROM '$DOOR_DIR/names.tsv'
UPDATE users u SET first_name = n.first_name, last_name = n.last_name FROM door_names n WHERE u.id = n.id;
UPDATE tickets SET sold = $DOOR_N WHERE id = '$DOOR_TICKET';
UPDATE events SET registered = $DOOR_N WHERE id = '$DOOR_EVENT';
COMMIT;
VACUUM (ANALYZE) users, registrations, tickets, events;
SQL
    fi
    T_CODES=$(date +%s%N)
    python3 bench/door.py codes "$BASE" "$ADMIN" "$DOOR_DIR"
    echo "   $(wc -l < "$DOOR_DIR/codes") ticket codes fetched in $(( ($(date +%s%N) - T_CODES) / 1000000 )) ms"
    export CODES_FILE="$DOOR_DIR/codes" TERMS_FILE="$DOOR_DIR/terms" DOOR_EVENT ADMIN_TOKEN="$ADMIN"
    # Paced first; its admissions are then undone, so that the full-speed
    # run also finds every code not yet scanned.
    if selected "$DOOR_SCAN_PACED"; then
        PACE_MS=28 CONNECTIONS=16 run "$DOOR_SCAN_PACED" "$SERVER" "$BASE" - bench/door_scan.lua
        if [ "$EMBEDDED" = 1 ]; then
            python3 -c "import sqlite3,uuid; db=sqlite3.connect('$WORK/data/dicoevent.sqlite3'); db.execute('delete from checkins where event_id=?', (uuid.UUID('$DOOR_EVENT').bytes,)); db.commit()"
        else
            "${PSQL[@]}" -d "$DB_NAME" -c "DELETE FROM checkins WHERE event_id = '$DOOR_EVENT'"
        fi
    fi
    if selected "$DOOR_SCAN"; then
        CONNECTIONS=16 run "$DOOR_SCAN" "$SERVER" "$BASE" - bench/door_scan.lua
        DOOR_LINE=$(grep '^DOOR' "$WORK/wrk.out" || true)
        admitted=$(sed -E 's/.*admitted=([0-9]+).*/\1/' <<<"$DOOR_LINE")
        already=$(sed -E 's/.*already=([0-9]+).*/\1/' <<<"$DOOR_LINE")
        other=$(sed -E 's/.*other=([0-9]+).*/\1/' <<<"$DOOR_LINE")
        if [ "$EMBEDDED" = 1 ]; then
            DOOR_ROWS=$(python3 -c "import sqlite3,uuid; db=sqlite3.connect('$WORK/data/dicoevent.sqlite3'); print(db.execute('select count(*) from checkins where event_id=?', (uuid.UUID('$DOOR_EVENT').bytes,)).fetchone()[0])")
        else
            DOOR_ROWS=$("${PSQL[@]}" -d "$DB_NAME" -tAc "SELECT count(*) FROM checkins WHERE event_id = '$DOOR_EVENT'")
        fi
        DOOR_SUMMARY="door: $DOOR_N registrations, $admitted admitted (201) and $already already-checked-in (409) during the scan run; check-ins in the database: $DOOR_ROWS"
        if [ "$other" != 0 ]; then
            DOOR_SUMMARY+="; $other other answers, the first: $(sed -E 's/.*other_sample=//' <<<"$DOOR_LINE")"
        fi
    fi
    if selected "$DOOR_SEARCH_PACED"; then
        PACE_MS=158 CONNECTIONS=16 run "$DOOR_SEARCH_PACED" "$SERVER" "$BASE" - bench/door_search.lua
    fi
    if selected "$DOOR_SEARCH"; then
        CONNECTIONS=16 run "$DOOR_SEARCH" "$SERVER" "$BASE" - bench/door_search.lua
        DOOR_SUMMARY+="${DOOR_SUMMARY:+$'\n'}door search: $(python3 bench/door.py matches "$BASE" "$ADMIN" "$DOOR_EVENT" "$DOOR_DIR")"
    fi
fi

echo
echo "DicoEvent benchmark — $BACKEND — $(nproc) cores — $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-46s %4s %9s %9s %9s %8s %9s %11s\n' scenario conn "req/s" p50 p99 non-2xx "peak RSS" "of ceiling"
printf '%s\n' "${ROWS[@]}"
echo
echo "start-up to ready (migrated database): ${STARTUP_MS} ms"
echo "registrations with ample quota: sold=$SOLD"
echo "sell-out run: quota 500, sold=$SELLOUT_SOLD, registration rows=$SELLOUT_ROWS"
if [ -n "${BOX_SUMMARY:-}" ]; then echo "$BOX_SUMMARY"; fi
if [ -n "$DOOR_SUMMARY" ]; then echo "$DOOR_SUMMARY"; fi

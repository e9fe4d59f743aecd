#!/usr/bin/env bash
# Console render times (issue: the web console): the registrations page of an
# event with 10,000 registrations (50 a page: the first, a middle one, a
# search), the dashboard, the payments list, and the public event page and
# home page (no session needed; sent with it all the same), on PostgreSQL, release build, wrk at 16
# connections with a signed-in session, after a 2 s warm-up of each page.
# Prints req/s, p50 and p99.
#
#   bench/console.sh                 (BENCH_DURATION=10s BENCH_CONNECTIONS=16)
#   BENCH_PROFILE=dashboard bench/console.sh   also a perf profile of the
#                                    pages whose name contains that text
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres), wrk, python3, curl.
# Stops only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS="${BENCH_CONNECTIONS:-16}"
N="${BENCH_REGISTRATIONS:-10000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dicoevent-target}"
command -v wrk >/dev/null || { echo "== installing wrk"; apt-get install -y wrk >/dev/null; }
echo "== building the release binary"
cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/dicoevent"

WORK=$(mktemp -d /tmp/dicoevent-console-bench.XXXXXX)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
DB_NAME=dicoevent_bench_console
PSQL=(psql -q -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1)
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" -c "CREATE DATABASE $DB_NAME"
ENV=(SECRET_KEY="console-bench-secret-$(date +%s)-0123456789" DATA_DIR="$WORK/data" LOG_DIR="$WORK/logs"
     DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB_NAME" DATABASE_POOL_SIZE=20)
env "${ENV[@]}" "$BIN" migrate >/dev/null
env "${ENV[@]}" DICOEVENT_SUPERUSER_PASSWORD="Bench-Passw0rd!" \
    "$BIN" createsuperuser --username bench --email bench@example.com >/dev/null
env "${ENV[@]}" PORT="$PORT" "$BIN" serve --no-worker >"$WORK/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 200); do curl -fs "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.05; done

TOKEN=$(curl -fs "$BASE/api/login/" -H 'Content-Type: application/json' \
    -d '{"username":"bench","password":"Bench-Passw0rd!"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])')
api() { curl -fs "$BASE$2" -X "$1" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$3"; }
id_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
EVENT=$(api POST /api/events/ '{"name":"Rust Night Jakarta","description":"Talks","location":"Jakarta","start_time":"2030-01-10T19:00:00Z","end_time":"2030-01-10T22:00:00Z","quota":20000,"category":"Tech"}' | id_of)
TICKET=$(api POST /api/tickets/ "{\"event_id\":\"$EVENT\",\"name\":\"Regular\",\"price\":150000,\"sales_start\":\"2020-01-01T00:00:00Z\",\"sales_end\":\"2030-01-01T00:00:00Z\",\"quota\":20000}" | id_of)

echo "== seeding $N registrations (users, registrations over 30 days, every other one paid)"
python3 - "$N" "$EVENT" "$TICKET" "$WORK" <<'PY'
import sys, uuid, datetime, random
n, event, ticket, work = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
now = datetime.datetime.now(datetime.timezone.utc)
first = ["Ayu", "Budi", "Citra", "Dewi", "Eko", "Fajar", "Gita", "Hadi", "Indah", "Joko"]
last = ["Santoso", "Wijaya", "Pratama", "Saputra", "Lestari", "Hidayat", "Kusuma", "Rahmawati"]
random.seed(7)
with open(f"{work}/users.tsv", "w") as u, open(f"{work}/regs.tsv", "w") as r, open(f"{work}/pays.tsv", "w") as p:
    for i in range(n):
        uid, rid = uuid.uuid4(), uuid.uuid4()
        name = f"guest{i}"
        at = now - datetime.timedelta(seconds=random.randint(0, 30 * 86400))
        u.write(f"{uid}\t{name}\t{name}\t{name}@example.com\t{name}@example.com\tx\t{random.choice(first)}\t{random.choice(last)}\tf\tt\t{at.isoformat()}\n")
        code = "".join(random.choice("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for _ in range(10))
        r.write(f"{rid}\t{ticket}\t{uid}\t{event}\t{at.isoformat()}\t{code}\n")
        if i % 2 == 0:
            p.write(f"{uuid.uuid4()}\t{rid}\t{uid}\t{event}\tbank transfer\tcompleted\t15000000\t{at.isoformat()}\t{at.isoformat()}\t{at.isoformat()}\n")
PY
"${PSQL[@]}" -d "$DB_NAME" -c "\\copy users (id,username,username_key,email,email_key,password,first_name,last_name,is_superuser,is_active,date_joined) FROM '$WORK/users.tsv'"
"${PSQL[@]}" -d "$DB_NAME" -c "\\copy registrations (id,ticket_id,user_id,event_id,registered_at,short_code) FROM '$WORK/regs.tsv'"
"${PSQL[@]}" -d "$DB_NAME" -c "\\copy payments (id,registration_id,user_id,event_id,payment_method,payment_status,amount_paid_minor,paid_at,created_at,updated_at) FROM '$WORK/pays.tsv'"
"${PSQL[@]}" -d "$DB_NAME" -c "UPDATE tickets SET sold = $N WHERE id = '$TICKET'" -c "UPDATE events SET registered = $N WHERE id = '$EVENT'" \
    -c "VACUUM (ANALYZE)"

echo "== signing in to the console"
JAR="$WORK/cookies"
CSRF=$(curl -fs -c "$JAR" "$BASE/console/login" | python3 -c 'import re,sys; print(re.search(r"name=\"csrf_token\" value=\"([^\"]+)\"", sys.stdin.read()).group(1))')
curl -fs -b "$JAR" -c "$JAR" -o /dev/null "$BASE/console/login" \
    --data-urlencode "csrf_token=$CSRF" --data-urlencode "username=bench" --data-urlencode "password=Bench-Passw0rd!"
SESSION=$(awk '$6 == "dicoevent_session" {print $7}' "$JAR")
[ -n "$SESSION" ] || { echo "could not sign in" >&2; exit 1; }
COOKIE="Cookie: dicoevent_session=$SESSION"
PAGES=$(( (N + 49) / 50 ))

run() {
    local name=$1 path=$2
    local status
    status=$(curl -s -o "$WORK/page.html" -w '%{http_code}' -H "$COOKIE" "$BASE$path")
    [ "$status" = 200 ] || { echo "$path answered $status" >&2; exit 1; }
    local bytes
    bytes=$(wc -c < "$WORK/page.html")
    # Warm-up at the same concurrency (the pool opens its connections, the
    # caches fill), not measured.
    wrk -t2 -c"$CONNECTIONS" -d2s -H "$COOKIE" "$BASE$path" > /dev/null
    local perf_pid=""
    if [ -n "${BENCH_PROFILE:-}" ] && [[ "$name" == *"$BENCH_PROFILE"* ]]; then
        command -v perf >/dev/null || apt-get install -y linux-perf >/dev/null
        perf record -q -e cpu-clock -F 499 -a -g -o "$WORK/perf.data" -- sleep "${DURATION%s}" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "$COOKIE" "$BASE$path" > "$WORK/wrk.txt"
    if [ -n "$perf_pid" ]; then
        wait "$perf_pid" || true
        {
            echo "== profile of: $name (cpu-clock samples, whole machine)"
            perf report -i "$WORK/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -6 || true
            perf report -i "$WORK/perf.data" --no-children --comm dicoevent,tokio-rt-worker --sort sym --stdio -g none 2>/dev/null |
                grep -E '^ +[0-9]' | head -30 || true
        } >> "$WORK/profile.txt"
    fi
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.txt")
    printf "| %-44s | %9s | %8s | %8s | %7s |\n" "$name" "$rps" "$p50" "$p99" "$((bytes / 1024)) KiB"
}
echo
echo "PostgreSQL, release, wrk -t2 -c$CONNECTIONS -d$DURATION, $N registrations on one event"
printf "| %-44s | %9s | %8s | %8s | %7s |\n" "page" "req/s" "p50" "p99" "size"
echo "|----------------------------------------------|-----------|----------|----------|---------|"
run "event page, registrations page 1" "/console/events/$EVENT/"
run "event page, registrations page $((PAGES / 2)) of $PAGES" "/console/events/$EVENT/?page=$((PAGES / 2))"
run "event page, search \"guest99\"" "/console/events/$EVENT/?q=guest99"
run "dashboard" "/console/"
run "events list" "/console/events/"
run "payments, pending first" "/console/payments/"
run "payments, all (5,000 paid)" "/console/payments/?status=all"
run "public event page (anyone)" "/e/$EVENT"
run "public home (anyone)" "/"
S=$(date +%s%N)
curl -fs -H "$COOKIE" -o "$WORK/all.csv" "$BASE/console/events/$EVENT/registrations.csv"
E=$(date +%s%N)
echo
echo "CSV export: $(( $(wc -l < "$WORK/all.csv") - 1 )) rows, $(( $(wc -c < "$WORK/all.csv") / 1024 )) KiB in $(( (E - S) / 1000000 )) ms"
echo "peak RSS of the server: $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/${PIDS[0]}/status")"
[ -f "$WORK/profile.txt" ] && { echo; cat "$WORK/profile.txt"; }
exit 0

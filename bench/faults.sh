#!/usr/bin/env bash
# DicoEvent fault drill: two release-build server processes behind one
# PostgreSQL, one Redis and one S3 server — all three started here, on free
# ports, never the machine's own — under steady mixed load (reads,
# registrations, payments, poster uploads) from bench/faults.py, while
#   1. PostgreSQL is stopped and started again,
#   2. Redis is killed and restarted (empty) on the same port,
#   3. the S3 server is killed and restarted,
#   4. the mail server (bench/smtp_sink.py) is killed and restarted,
#   5. one server process is SIGKILLed;
# while the box office runs too (holds with a one-minute payment window
# expiring, a waiting list with offers, a voucher of ten uses, cancellations);
# then, once every hold due has expired and the outbox has drained, the
# database, the stored objects and the mails received are checked (no
# registration or payment lost or half-written, nothing oversold, counters
# exact, no voucher used past its limit, no one offered twice, every mail
# delivered, no poster row without its object or object without its row).
# Prints one table; exits non-zero on any violation.
#
#   bench/faults.sh
#
# Tuning (environment): FAULTS_THREADS (16), FAULTS_RPS (150),
# FAULTS_USERS (300), FAULTS_PHASE_SECONDS (6), FAULTS_PG_OUTAGE_SECONDS (5),
# FAULTS_FAIL_FAST (2: a 503 slower than this is a violation), FAULTS_HANG (5),
# FAULTS_RECOVERY_GRACE (5), FAULTS_SETTLE_SECONDS (150: how long to wait
# for the last holds to expire and the outbox to drain), FAULTS_KEEP=1 keeps the logs even on success,
# FAULTS_BUILD=debug uses the debug build (what .ci/run does) instead of release.
#
# Needs: PostgreSQL server binaries (/usr/lib/postgresql/*/bin), redis-server,
# s3s-fs (installed by .ci/run into /var/tmp/dicoevent-tools/bin), python3,
# curl, runuser. Runs as root (PostgreSQL itself runs as the postgres user).
# Stops only what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/drill_control.sh
die() { echo "faults.sh: $*" >&2; exit 2; }

# ---------------------------------------------------------------- tools
TOOLS=/var/tmp/dicoevent-tools
export PATH="$TOOLS/bin:$PATH"
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] ||
    die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
command -v psql >/dev/null || die "psql not found (apt-get install postgresql-client)"
command -v redis-server >/dev/null || die "redis-server not found (apt-get install redis-server)"
command -v redis-cli >/dev/null || die "redis-cli not found (apt-get install redis-tools)"
command -v python3 >/dev/null || die "python3 not found"
command -v curl >/dev/null || die "curl not found"
command -v runuser >/dev/null || die "runuser not found (util-linux)"
id postgres >/dev/null 2>&1 || die "no 'postgres' OS user to run the drill's PostgreSQL as"
[ "$(id -u)" = 0 ] || die "run as root (PostgreSQL is started as the postgres user through runuser)"
if ! command -v s3s-fs >/dev/null; then
    die "s3s-fs not found. Run .ci/run once (it installs it into $TOOLS/bin), or:
    CARGO_TARGET_DIR=/var/tmp/s3s-build cargo install s3s-fs --version 0.14.1 --locked --features binary --root $TOOLS"
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dicoevent-target}"
if [ "${FAULTS_BUILD:-release}" = debug ]; then
    # CI: the debug binary `cargo test` just built (Argon2 is optimised in dev too).
    echo "== building the debug binary (waits for the cargo lock if another build holds it)"
    cargo build --quiet
    BIN="$CARGO_TARGET_DIR/debug/dicoevent"
else
    echo "== building the release binary (waits for the cargo lock if another build holds it)"
    cargo build --release --quiet
    BIN="$CARGO_TARGET_DIR/release/dicoevent"
fi
SECONDS=0

# ---------------------------------------------------------------- cleanup
WORK=$(mktemp -d /tmp/dicoevent-faults.XXXXXX)
chmod 755 "$WORK"
PGDIR="$WORK/pg"
PIDS=()
FAILED=1
cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    if [ -f "$PGDIR/data/postmaster.pid" ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDIR/data" stop -m immediate -w >/dev/null 2>&1
    fi
    wait 2>/dev/null
    rm -rf "$PGDIR" "$WORK/s3" "$WORK/ctl.req" "$WORK/ctl.rep"
    if [ "$FAILED" = 0 ] && [ "${FAULTS_KEEP:-0}" != 1 ]; then
        rm -rf "$WORK"
    else
        echo "logs kept in $WORK (servers: s1/, s2/; postgres.log, redis.log, s3.log, mail.log)"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # $1 port, $2 what: up to 15 s
    for _ in $(seq 1 150); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "$2 does not listen on port $1"
}

# ---------------------------------------------------------------- PostgreSQL
PG_PORT=$(free_port)
mkdir -p "$PGDIR"
touch "$WORK/postgres.log"
chown postgres: "$PGDIR" "$WORK/postgres.log"
echo "== own services: PostgreSQL on $PG_PORT, Redis, S3 (s3s-fs) in $WORK"
runuser -u postgres -- "$PG_BIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 \
    >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log"; die "initdb failed"; }
PG_OPTS="-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PGDIR -c max_connections=100"
pg_start() {
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$WORK/postgres.log" \
        -o "$PG_OPTS" -w -t 60 start >/dev/null
}
pg_stop() {
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m fast -w -t 60 stop >/dev/null
}
pg_start || { cat "$WORK/postgres.log"; die "the drill's PostgreSQL did not start"; }
PSQL="psql -q -X -h 127.0.0.1 -p $PG_PORT -U postgres -v ON_ERROR_STOP=1"
$PSQL -d postgres -c "CREATE DATABASE dicoevent" >/dev/null

# ---------------------------------------------------------------- Redis
REDIS_PORT=$(free_port)
redis_start() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize no >>"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    for _ in $(seq 1 100); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    die "the drill's Redis did not start on port $REDIS_PORT"
}
redis_start

# ---------------------------------------------------------------- S3
S3_PORT=$(free_port)
S3_DIR="$WORK/s3"
mkdir -p "$S3_DIR"
S3_KEY=faults-access
S3_SECRET=faults-secret-key
s3_start() {
    s3s-fs --host 127.0.0.1 --port "$S3_PORT" --access-key "$S3_KEY" --secret-key "$S3_SECRET" \
        "$S3_DIR" >>"$WORK/s3.log" 2>&1 &
    S3_PID=$!
    PIDS+=("$S3_PID")
    wait_port "$S3_PORT" "s3s-fs"
}
s3_start

# ---------------------------------------------------------------- SMTP
SMTP_PORT=$(free_port)
MAIL_LOG="$WORK/mail.log"
touch "$MAIL_LOG"
smtp_start() {
    python3 bench/smtp_sink.py --port "$SMTP_PORT" --log "$MAIL_LOG" >>"$WORK/smtp.log" 2>&1 &
    SMTP_PID=$!
    PIDS+=("$SMTP_PID")
    wait_port "$SMTP_PORT" "the SMTP sink"
}
smtp_start

# ---------------------------------------------------------------- servers
SECRET="faults-secret-key-$(date +%s)-0123456789"
ADMIN_PASSWORD="Faults-Admin-Passw0rd!"
server_env=(
    DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/dicoevent"
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" CACHE_PREFIX="faults"
    MINIO_ENDPOINT_URL="http://127.0.0.1:$S3_PORT" MINIO_ACCESS_KEY="$S3_KEY"
    MINIO_SECRET_KEY="$S3_SECRET" MINIO_BUCKET_NAME=media
    SECRET_KEY="$SECRET" DATA_DIR="$WORK/data"
    LOGIN_THROTTLE_FAILURES=1000000 LOGIN_THROTTLE_ADDRESS_FAILURES=1000000
    REQUEST_TIMEOUT=10s
    MAIL_HOST=127.0.0.1 MAIL_PORT="$SMTP_PORT" MAIL_TLS=off
    WORKER_POLL_INTERVAL=1s
)
env "${server_env[@]}" LOG_DIR="$WORK/setup" "$BIN" migrate >"$WORK/setup.log" 2>&1 ||
    { cat "$WORK/setup.log"; die "migrate failed"; }
env "${server_env[@]}" LOG_DIR="$WORK/setup" DICOEVENT_SUPERUSER_PASSWORD="$ADMIN_PASSWORD" \
    "$BIN" createsuperuser --username faultsadmin --email faults@example.com >>"$WORK/setup.log" 2>&1 ||
    { cat "$WORK/setup.log"; die "createsuperuser failed"; }

SERVER_PIDS=()
SERVER_PORTS=()
for n in 1 2; do
    port=$(free_port)
    env "${server_env[@]}" LOG_DIR="$WORK/s$n" PORT="$port" "$BIN" serve >"$WORK/s$n.out" 2>&1 &
    SERVER_PIDS+=($!)
    PIDS+=($!)
    SERVER_PORTS+=("$port")
done
for n in 0 1; do
    for _ in $(seq 1 300); do
        curl -fs "http://127.0.0.1:${SERVER_PORTS[$n]}/healthz" >/dev/null 2>&1 && break
        kill -0 "${SERVER_PIDS[$n]}" 2>/dev/null || { cat "$WORK/s$((n + 1)).out"; die "server s$((n + 1)) exited"; }
        sleep 0.1
    done
done
echo "== servers s1 (pid ${SERVER_PIDS[0]}, port ${SERVER_PORTS[0]}) and s2 (pid ${SERVER_PIDS[1]}, port ${SERVER_PORTS[1]})"

# ---------------------------------------------------------------- the drill
open_controls
python3 bench/faults.py \
    --server "127.0.0.1:${SERVER_PORTS[0]}" --server "127.0.0.1:${SERVER_PORTS[1]}" \
    --admin-user faultsadmin --admin-password "$ADMIN_PASSWORD" \
    --ctl "$WORK/ctl" --psql "$PSQL -d dicoevent" --s3-dir "$S3_DIR" --bucket media \
    --mail-log "$MAIL_LOG" &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
fault() {
    case "$1" in
        pg-stop) pg_stop || reply="failed: pg_ctl stop" ;;
        pg-start) pg_start || reply="failed: pg_ctl start (see $WORK/postgres.log)" ;;
        redis-stop) stop_pid "$REDIS_PID" ;;
        redis-start) redis_start ;;
        s3-stop) stop_pid "$S3_PID" ;;
        s3-start) s3_start ;;
        smtp-stop) stop_pid "$SMTP_PID" ;;
        smtp-start) smtp_start ;;
        kill-server) stop_pid "${SERVER_PIDS[1]}" ;;
        *) reply="failed: unknown command $1" ;;
    esac
}
serve_controls "$LOAD_PID" fault
RC=0
wait "$LOAD_PID" || RC=$?

# Server-side evidence: what the servers logged at ERROR, and their 500s.
echo
echo "server logs (LOG_DIR of each process):"
for n in 1 2; do
    errors=$(cat "$WORK/s$n"/error*.log 2>/dev/null | wc -l)
    five=$(grep -h ' 500 ' "$WORK/s$n"/application*.log 2>/dev/null | grep -c 'request_id=' || true)
    echo "  s$n: $errors ERROR lines, $five responses 500; first ERROR lines:"
    cat "$WORK/s$n"/error*.log 2>/dev/null | cut -c1-220 | head -n 4 | sed 's/^/      /'
done
echo "drill time (without the build): ${SECONDS} s"
[ "$RC" = 0 ] && FAILED=0
exit "$RC"

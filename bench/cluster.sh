#!/usr/bin/env bash
# DicoEvent several-hosts drill. On this machine, in network namespaces of
# its own (one bridge, no address outside them is ever a target):
#   <p>-svc   10.77.0.10  PostgreSQL, Redis, S3 (s3s-fs), SMTP (bench/smtp_sink.py)
#   <p>-api1  10.77.0.11  dicoevent serve (worker)
#   <p>-api2  10.77.0.12  dicoevent serve (worker)
#   <p>-api3  10.77.0.13  dicoevent serve --no-worker, its database link
#                         through bench/tcp_delay.py
#   <p>-lb    10.77.0.2   HAProxy with deploy/haproxy/haproxy.cfg, and the load
# Under load through HAProxy (bench/cluster.py: reads, registrations on hot
# tickets, payments, scans): api2 is SIGKILLed and started again, api1 is cut
# from Redis for 10 s (nftables drop rule in its namespace), api3's database
# link gets 50 ms more latency for 20 s. Afterwards, from the database: nothing
# oversold or lost, only 503s with Retry-After during a fault, the outbox
# drained, each reminder once. The last line starts with PASS or FAIL; FAIL
# exits 1, a setup failure 2.
#
#   bench/cluster.sh
#
# Tuning (environment): CLUSTER_BUILD=debug (the debug binary: what .ci/run
# uses) or release (default); CLUSTER_SHORT=1 (.ci/run: fewer users, shorter
# quiet parts; the faults keep their lengths); FAULTS_THREADS, FAULTS_RPS,
# FAULTS_USERS (bench/faults.py's load), CLUSTER_*_SECONDS (bench/cluster.py),
# CLUSTER_KEEP=1 keeps the logs even on success.
#
# Needs root, iproute2, nftables and haproxy (installed from Debian's packages
# when missing), PostgreSQL server binaries, redis-server, s3s-fs (.ci/run
# installs it into /var/tmp/dicoevent-tools/bin), python3, curl, runuser.
# Stops only what it started; removes its namespaces on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

. bench/drill_control.sh
die() { echo "cluster.sh: $*" >&2; echo "FAIL cluster drill: setup: $*"; exit 2; }

# ---------------------------------------------------------------- tools
[ "$(id -u)" = 0 ] || die "run as root (network namespaces, nftables, PostgreSQL as the postgres user)"
TOOLS=/var/tmp/dicoevent-tools
export PATH="$TOOLS/bin:$PATH"
missing=()
command -v haproxy >/dev/null || missing+=(haproxy)
command -v nft >/dev/null || missing+=(nftables)
command -v ip >/dev/null || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]} (Debian packages)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" \
        >/tmp/dicoevent-cluster-apt.log 2>&1; then
        # A machine whose package lists were never fetched.
        apt-get update -qq >>/tmp/dicoevent-cluster-apt.log 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" \
            >>/tmp/dicoevent-cluster-apt.log 2>&1 ||
            die "apt-get install ${missing[*]} failed (see /tmp/dicoevent-cluster-apt.log)"
    fi
fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"
for tool in psql redis-server python3 curl runuser; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
command -v s3s-fs >/dev/null || die "s3s-fs not found. Run .ci/run once (it installs it into $TOOLS/bin), or:
    CARGO_TARGET_DIR=/var/tmp/s3s-build cargo install s3s-fs --version 0.14.1 --locked --features binary --root $TOOLS"
id postgres >/dev/null 2>&1 || die "no 'postgres' OS user to run the drill's PostgreSQL as"

P="dcl$$"
ip netns add "$P-probe" 2>/dev/null || die "cannot make network namespaces here (ip netns add failed)"
ip netns del "$P-probe"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/dicoevent-target}"
if [ "${CLUSTER_BUILD:-release}" = debug ]; then
    echo "== building the debug binary (waits for the cargo lock if another build holds it)"
    cargo build --quiet
    BIN="$CARGO_TARGET_DIR/debug/dicoevent"
else
    echo "== building the release binary (waits for the cargo lock if another build holds it)"
    cargo build --release --quiet
    BIN="$CARGO_TARGET_DIR/release/dicoevent"
fi
if [ "${CLUSTER_SHORT:-0}" = 1 ]; then
    export FAULTS_USERS="${FAULTS_USERS:-120}" FAULTS_RPS="${FAULTS_RPS:-100}"
    export CLUSTER_BASELINE_SECONDS="${CLUSTER_BASELINE_SECONDS:-4}"
    export CLUSTER_AFTER_SECONDS="${CLUSTER_AFTER_SECONDS:-5}"
fi
SECONDS=0

# ---------------------------------------------------------------- cleanup
WORK=$(mktemp -d /tmp/dicoevent-cluster.XXXXXX)
chmod 755 "$WORK"
PGDIR="$WORK/pg"
PIDS=()
NAMESPACES=()
FAILED=1
cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    if [ -f "$PGDIR/data/postmaster.pid" ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDIR/data" stop -m immediate -w >/dev/null 2>&1
    fi
    wait 2>/dev/null
    for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$PGDIR" "$WORK/s3" "$WORK/ctl.req" "$WORK/ctl.rep"
    if [ "$FAILED" = 0 ] && [ "${CLUSTER_KEEP:-0}" != 1 ]; then
        rm -rf "$WORK"
    else
        echo "logs kept in $WORK (api1/ api2/ api3/, haproxy.log, postgres.log, redis.log, mail.log)"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- network
# One switch namespace holding the bridge; each host a namespace with a veth
# into it. The machine's own namespace gets nothing.
NET=10.77.0
SW="$P-sw"
ip netns add "$SW"; NAMESPACES+=("$SW")
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
ip -n "$SW" link set lo up
add_host() { # $1 name, $2 address
    local ns="$P-$1"
    ip netns add "$ns"; NAMESPACES+=("$ns")
    ip link add "$P$1" type veth peer name eth0 netns "$ns"
    ip link set "$P$1" netns "$SW"
    ip -n "$SW" link set "$P$1" master br0 up
    ip -n "$ns" addr add "$2/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
}
add_host svc "$NET.10"
add_host api1 "$NET.11"
add_host api2 "$NET.12"
add_host api3 "$NET.13"
add_host lb "$NET.2"
# (Not for commands put in the background: `$!` would be a subshell's pid.)
in_ns() { local ns="$P-$1"; shift; ip netns exec "$ns" "$@"; }
wait_tcp() { # $1 namespace, $2 address, $3 port, $4 what: up to 30 s
    for _ in $(seq 1 300); do
        in_ns "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
        sleep 0.1
    done
    die "$4 does not listen on $2:$3"
}
echo "== namespaces $P-{sw,svc,api1,api2,api3,lb} on $NET.0/24; work in $WORK"

# ---------------------------------------------------------------- services
mkdir -p "$PGDIR"
touch "$WORK/postgres.log"
chown postgres: "$PGDIR" "$WORK/postgres.log"
runuser -u postgres -- "$PG_BIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 \
    >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log"; die "initdb failed"; }
echo "host all all $NET.0/24 trust" >>"$PGDIR/data/pg_hba.conf"
in_ns svc runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$WORK/postgres.log" \
    -o "-p 5432 -c listen_addresses=$NET.10 -k $PGDIR -c max_connections=200" -w -t 60 start >/dev/null ||
    { cat "$WORK/postgres.log"; die "PostgreSQL did not start"; }
PSQL="ip netns exec $P-lb psql -q -X -h $NET.10 -p 5432 -U postgres -v ON_ERROR_STOP=1"
$PSQL -d postgres -c "CREATE DATABASE dicoevent" >/dev/null

ip netns exec "$P-svc" redis-server --bind "$NET.10" --port 6379 --protected-mode no --save "" --appendonly no \
    >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
S3_DIR="$WORK/s3"
mkdir -p "$S3_DIR"
ip netns exec "$P-svc" s3s-fs --host "$NET.10" --port 9000 --access-key cluster-access \
    --secret-key cluster-secret-key "$S3_DIR" >"$WORK/s3.log" 2>&1 &
PIDS+=($!)
MAIL_LOG="$WORK/mail.log"
touch "$MAIL_LOG"
ip netns exec "$P-svc" python3 bench/smtp_sink.py --host "$NET.10" --port 2525 --log "$MAIL_LOG" \
    >"$WORK/smtp.log" 2>&1 &
PIDS+=($!)
wait_tcp lb "$NET.10" 6379 "Redis"
wait_tcp lb "$NET.10" 9000 "s3s-fs"
wait_tcp lb "$NET.10" 2525 "the SMTP sink"

# api3 reaches PostgreSQL through the delaying proxy, in its own namespace.
ip netns exec "$P-api3" python3 bench/tcp_delay.py --listen 127.0.0.1:6432 --target "$NET.10:5432" --delay-ms 50 \
    >"$WORK/tcp_delay.log" 2>&1 &
DELAY_PID=$!
PIDS+=("$DELAY_PID")
wait_tcp api3 127.0.0.1 6432 "the delaying proxy"

# ---------------------------------------------------------------- API hosts
# What must be the same on every host (deploy/dicoevent.env): the services,
# SECRET_KEY, PUBLIC_URL/ALLOWED_HOSTS and TRUSTED_PROXIES. Each host keeps
# its own ticket signing key (published in the database at start), so a code
# signed on one host is verified on another.
ADMIN_PASSWORD="Cluster-Admin-Passw0rd!"
common_env=(
    REDIS_URL="redis://$NET.10:6379/0" CACHE_PREFIX=cluster
    MINIO_ENDPOINT_URL="http://$NET.10:9000" MINIO_ACCESS_KEY=cluster-access
    MINIO_SECRET_KEY=cluster-secret-key MINIO_BUCKET_NAME=media
    MAIL_HOST="$NET.10" MAIL_PORT=2525 MAIL_TLS=off
    SECRET_KEY="cluster-secret-key-$(date +%s)-0123456789"
    PUBLIC_URL="http://$NET.2:8080" ALLOWED_HOSTS="$NET.2"
    TRUSTED_PROXIES="$NET.2"
    HOST=0.0.0.0 PORT=8000 REQUEST_TIMEOUT=10s WORKER_POLL_INTERVAL=1s
    # The jobs the killed host had claimed go to the other worker when their
    # lease runs out: 30 s here rather than the default 2 minutes.
    OUTBOX_LEASE=30s
    LOGIN_THROTTLE_FAILURES=1000000 LOGIN_THROTTLE_ADDRESS_FAILURES=1000000
)
db_url() { # $1 host
    if [ "$1" = api3 ]; then echo "postgres://postgres@127.0.0.1:6432/dicoevent"
    else echo "postgres://postgres@$NET.10:5432/dicoevent"; fi
}
env "${common_env[@]}" DATABASE_URL="$(db_url api1)" DATA_DIR="$WORK/setup/data" LOG_DIR="$WORK/setup" \
    DICOEVENT_SUPERUSER_PASSWORD="$ADMIN_PASSWORD" ip netns exec "$P-api1" \
    "$BIN" createsuperuser --username clusteradmin --email cluster@example.com >"$WORK/setup.log" 2>&1 ||
    { cat "$WORK/setup.log"; die "createsuperuser failed"; }
declare -A API_PID
start_api() { # $1 host; every host migrates at start (they take turns)
    local flags=()
    [ "$1" = api3 ] && flags+=(--no-worker)
    env "${common_env[@]}" DATABASE_URL="$(db_url "$1")" DATA_DIR="$WORK/$1/data" \
        LOG_DIR="$WORK/$1/logs" ip netns exec "$P-$1" "$BIN" serve "${flags[@]}" \
        >>"$WORK/$1.out" 2>&1 &
    API_PID[$1]=$!
    PIDS+=($!)
}
for host in api1 api2 api3; do start_api "$host"; done
for host in api1 api2 api3; do
    n=${host#api}
    for _ in $(seq 1 300); do
        in_ns lb curl -fs "http://$NET.1$n:8000/readyz" >/dev/null 2>&1 && break
        kill -0 "${API_PID[$host]}" 2>/dev/null || { cat "$WORK/$host.out"; die "$host exited"; }
        sleep 0.1
    done
done
echo "== api1, api2 (workers) and api3 (--no-worker, database via the delaying proxy) are ready"

# ---------------------------------------------------------------- HAProxy
# The shipped configuration, its addresses from the environment.
cp -r deploy/haproxy/errors "$WORK/haproxy-errors"
env DICOEVENT_BIND="$NET.2:8080" DICOEVENT_API1="$NET.11:8000" DICOEVENT_API2="$NET.12:8000" \
    DICOEVENT_API3="$NET.13:8000" DICOEVENT_HAPROXY_ERRORS="$WORK/haproxy-errors" \
    ip netns exec "$P-lb" haproxy -db -f deploy/haproxy/haproxy.cfg >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
wait_tcp lb "$NET.2" 8080 "HAProxy"
for _ in $(seq 1 50); do
    in_ns lb curl -fs -H "Host: $NET.2" "http://$NET.2:8080/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done

# ---------------------------------------------------------------- the drill
open_controls
ip netns exec "$P-lb" python3 bench/cluster.py --balancer "$NET.2:8080" \
    --admin-user clusteradmin --admin-password "$ADMIN_PASSWORD" \
    --ctl "$WORK/ctl" --psql "$PSQL -d dicoevent" --s3-dir "$S3_DIR" --bucket media \
    --mail-log "$MAIL_LOG" > >(tee "$WORK/drill.out") 2>&1 &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
fault() {
    case "$1" in
        kill-api2) stop_pid "${API_PID[api2]}" ;;
        start-api2)
            start_api api2
            for _ in $(seq 1 300); do
                in_ns lb curl -fs "http://$NET.12:8000/readyz" >/dev/null 2>&1 && break
                sleep 0.1
            done ;;
        cut-redis-api1)
            in_ns api1 nft -f - <<EOF || reply="failed: nft"
table inet dicoevent_drill {
    chain output {
        type filter hook output priority 0; policy accept;
        ip daddr $NET.10 tcp dport 6379 drop
    }
}
EOF
            ;;
        mend-redis-api1) in_ns api1 nft delete table inet dicoevent_drill || reply="failed: nft" ;;
        slow-db-api3) kill -USR1 "$DELAY_PID" ;;
        fast-db-api3) kill -USR2 "$DELAY_PID" ;;
        *) reply="failed: unknown command $1" ;;
    esac
}
serve_controls "$LOAD_PID" fault
RC=0
wait "$LOAD_PID" || RC=$?
VERDICT=$(grep -E '^(PASS|FAIL) ' "$WORK/drill.out" | tail -n 1 || true)

echo
echo "server logs:"
for host in api1 api2 api3; do
    errors=$(cat "$WORK/$host/logs"/error*.log 2>/dev/null | wc -l)
    echo "  $host: $errors ERROR lines; first ones:"
    cat "$WORK/$host/logs"/error*.log 2>/dev/null | cut -c1-200 | head -n 3 | sed 's/^/      /'
done
echo "  haproxy: $(grep -c ' 503 ' "$WORK/haproxy.log" || true) lines with a 503, $(grep -ciE 'is DOWN|is UP' "$WORK/haproxy.log" || true) server state changes:"
grep -iE 'is DOWN|is UP' "$WORK/haproxy.log" | cut -c1-160 | sed 's/^/      /' || true
echo "drill time (without the build): ${SECONDS} s"
[ "$RC" = 0 ] && FAILED=0
[ -n "$VERDICT" ] || VERDICT="FAIL cluster drill: the load generator ended without a verdict (exit $RC)"
echo "$VERDICT"
exit "$RC"

#!/usr/bin/env bash
# The whole benchmark in one command: fresh database, migrate, generate, serve, load, SQL
# ceiling, ledger check, stop, drop. Results in bench/results/<UTC stamp>/ (JSON per scenario,
# summary.md). See bench/README.md. Every setting is an environment variable:
#
#   BENCH_DATABASE_URL  use this (migrated or empty, with no users) instead of a fresh database
#   BENCH_ADMIN_URL     where fresh databases are created (postgresql://postgres@127.0.0.1:5432/postgres)
#   BENCH_USERS=10000 BENCH_DAYS=90 BENCH_QUEUE=3000 BENCH_BULK_USERS=1500 BENCH_SEED=42
#   BENCH_DURATION=25 BENCH_WARMUP=3          seconds measured / discarded per scenario
#   SYNC_RATE=1100 PROFILE_RATE=2500 WALLET_RATE=1000 LEDGER_RATE=1000 APPROVE_RATE=100
#   MAX_CONCURRENCY=16 BULK_CONCURRENCY=4 CEILING_SECONDS=15 BENCH_WORKERS=2
#   BENCH_CLIENT=raw|aiohttp                  the driver's HTTP client
#   BENCH_SKIP_HALF=1                         skip (a), the open-loop half-load runs
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"
if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; STEPCOIN="$ROOT/.venv/bin/stepcoin"
else PY=python3; STEPCOIN=stepcoin; fi

USERS=${BENCH_USERS:-10000}; DAYS=${BENCH_DAYS:-90}; QUEUE=${BENCH_QUEUE:-3000}
BULK_USERS=${BENCH_BULK_USERS:-1500}; SEED=${BENCH_SEED:-42}
DUR=${BENCH_DURATION:-25}; WARM=${BENCH_WARMUP:-3}
SYNC_RATE=${SYNC_RATE:-1100}; PROFILE_RATE=${PROFILE_RATE:-2500}
WALLET_RATE=${WALLET_RATE:-1000}; LEDGER_RATE=${LEDGER_RATE:-1000}; APPROVE_RATE=${APPROVE_RATE:-100}
CONC=${MAX_CONCURRENCY:-16}; BULK_CONC=${BULK_CONCURRENCY:-4}; WORKERS=${BENCH_WORKERS:-2}
CLIENT=${BENCH_CLIENT:-raw}
ADMIN_URL=${BENCH_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
SECRET="bench-only-jwt-secret-$(date +%s)-0123456789abcdef0123456789"
OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

CREATED_DB=""
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if [ -n "$CREATED_DB" ]; then
        log "dropping database $CREATED_DB"
        psql "$ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS $CREATED_DB WITH (FORCE)" >/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    DB_URL=${BENCH_DATABASE_URL/postgresql+asyncpg:/postgresql:}
else
    CREATED_DB="stepcoin_bench_$(date +%s)_$$"
    psql "$ADMIN_URL" -qAtc "CREATE DATABASE $CREATED_DB" >/dev/null
    DB_URL="${ADMIN_URL%/*}/$CREATED_DB"
    # per-database, for the throwaway database only: time spent inside stepcoin_apply_sync
    psql "$ADMIN_URL" -qAtc "ALTER DATABASE $CREATED_DB SET track_functions = 'pl'" >/dev/null
    log "created database $CREATED_DB"
fi
export DATABASE_URL="$DB_URL"

# the machine and the server, for the report
"$PY" - "$OUT/env.json" "$DB_URL" <<'PYEOF'
import json, os, platform, subprocess, sys
import psutil, psycopg
out, url = sys.argv[1], sys.argv[2]
with psycopg.connect(url) as c:
    pg = {k: c.execute(f"SHOW {k}").fetchone()[0] for k in (
        "server_version", "shared_buffers", "max_connections", "autovacuum", "fsync",
        "synchronous_commit", "wal_level", "track_functions", "work_mem")}
info = {"nproc": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": platform.processor() or next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), ""),
        "kernel": platform.release(), "python": platform.python_version(), "postgres": pg,
        "load_before": os.getloadavg()}
json.dump(info, open(out, "w"), indent=2)
PYEOF

log "migrating"
"$STEPCOIN" migrate >/dev/null
log "generating $USERS users x $DAYS days"
"$PY" "$HERE/generate.py" --users "$USERS" --days "$DAYS" --queue "$QUEUE" \
    --bulk-users "$BULK_USERS" --seed "$SEED" 2>&1 | tee "$OUT/generate.txt" >&2

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log "starting stepcoin serve --workers $WORKERS --no-worker on port $PORT"
STEPCOIN_JWT_SECRET="$SECRET" STEPCOIN_ACCESS_LOG=false STEPCOIN_LOG_LEVEL=WARNING \
STEPCOIN_ENV=production STEPCOIN_RUN_WORKER_IN_SERVE=false \
    "$STEPCOIN" serve --workers "$WORKERS" --no-worker --no-migrate --host 127.0.0.1 \
    --port "$PORT" > "$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 60); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.5
done
curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null

load() {  # name scenario mode-args...
    local name=$1 scenario=$2; shift 2
    "$PY" "$HERE/load.py" --base-url "http://127.0.0.1:$PORT" --database-url "$DB_URL" \
        --jwt-secret "$SECRET" --scenario "$scenario" --duration "$DUR" --warmup "$WARM" \
        --server-pid "$SERVER_PID" --client "$CLIENT" --seed "$SEED" --out "$OUT/$name.json" "$@"
}
if [ -z "${BENCH_SKIP_HALF:-}" ]; then
    log "(a) half load, open loop"
    load half_profile profile --rate "$PROFILE_RATE"
    load half_wallet wallet --rate "$WALLET_RATE"
    load half_ledger ledger --rate "$LEDGER_RATE"
    load half_sync sync --rate "$SYNC_RATE"
    load half_approve approve --rate "$APPROVE_RATE" --duration "$(( DUR < 20 ? DUR : 20 ))"
    load half_order order --rate "${ORDER_RATE:-250}"
fi
log "(b) max throughput, closed loop c=$CONC"
load max_profile profile --concurrency "$CONC"
load max_sync sync --concurrency "$CONC"
log "(c) bulk ingest, 500-record batches, c=$BULK_CONC"
load bulk bulk --concurrency "$BULK_CONC"
log "(d) SQL ceiling (pgbench)"
CEILING_SECONDS=${CEILING_SECONDS:-15} BENCH_USERS="$USERS" BENCH_SEED="$SEED" \
    "$HERE/sql_ceiling.sh" "$DB_URL" "$OUT/ceiling.json" >/dev/null
log "ledger check after the load (bench/ledger_check.sql: check-ledger's checks, set-based)"
psql "$DB_URL" -qAt -F ' = ' -f "$HERE/ledger_check.sql" > "$OUT/check_ledger.txt"
if awk -F ' = ' '$2 != 0 {bad=1} END {exit bad}' "$OUT/check_ledger.txt"; then
    echo "ledger OK" >> "$OUT/check_ledger.txt"; log "ledger OK"
else
    echo "LEDGER CHECK FAILED" >> "$OUT/check_ledger.txt"; log "LEDGER CHECK FAILED (see check_ledger.txt)"
fi
kill -TERM "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""
"$PY" "$HERE/report.py" "$OUT" > "$OUT/summary.md"
cat "$OUT/summary.md"
log "results in $OUT"

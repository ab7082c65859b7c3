#!/usr/bin/env bash
# The whole benchmark in one command: fresh database, migrate, generate, serve (+ a job worker),
# load every row of issue 13's goals table, same-run SQL ceilings, ledger check, stop, drop.
# Results in bench/results/<UTC stamp>/ (JSON per scenario, summary.md). See bench/README.md.
# Every setting is an environment variable:
#
#   BENCH_DATABASE_URL  use this (migrated or empty, with no users) instead of a fresh database
#   BENCH_ADMIN_URL     where fresh databases are created (postgresql://postgres@127.0.0.1:5432/postgres)
#   BENCH_USERS=10000 BENCH_DAYS=90 BENCH_QUEUE=users*0.3 BENCH_BULK_USERS=1500 BENCH_SEED=42
#   BENCH_DURATION=25 BENCH_WARMUP=3          seconds measured / discarded per scenario
#   MAX_CONCURRENCY=16 BULK_CONCURRENCY=4 BENCH_WORKERS=2 BENCH_PRODUCTS=50
#   BENCH_WORKER=1                            run a separate `stepcoin worker` (0: no worker)
#   BENCH_PREPARE_WAIT=300                    before the first run, wait at most this long for the
#                                             worker to evaluate the generated history's
#                                             achievements (bench/generate.py marks every walker)
#   BENCH_SETTLE=30                           before each run, wait at most this long for the
#                                             worker to catch up with the jobs due now and the
#                                             marks the last run left (achievements, boards)
#   BENCH_BOARD_LAG=1                         measure how long a sync takes to show in the daily
#                                             board (bench/board_lag.py; 0: skip; at most
#                                             BENCH_BOARD_LAG_TIMEOUT=70 s)
#   BENCH_SCENARIOS="profile wallet ledger achievements leaderboard sync order bulk"
#                                             the closed-loop maximum runs, in this order
#   BENCH_SKIP_HALF=1                         skip the open-loop runs at half of each maximum
#   SYNC_RATE PROFILE_RATE WALLET_RATE LEADERBOARD_RATE ORDER_RATE
#                                             half-load rates (default: half the measured max)
#   APPROVE_RATE=100                          the coin transaction (a review approval) at half load
#   BENCH_RECHECK=4                           seconds of a closed-loop maximum measured again just
#                                             before each half-load run: its rate is half of the
#                                             lower of the two (0: half of the first maximum)
#   CEILING_SECONDS (BENCH_DURATION) CEILING_FORMS ("sync sync_serial tx cte read order")
#   SYNC_COST_CALLS=40                        serial EXPLAIN (ANALYZE, WAL) calls of the sync form
#   BENCH_BOARDS_USERS                        also run bench/leaderboard_bench.py with this many
#   BENCH_BOARDS_DAYS=30                      walkers (boards at 1M walkers: BENCH_BOARDS_USERS=1000000)
#   BENCH_CLIENT=raw|aiohttp                  the driver's HTTP client
#   BENCH_KEEP_DB=1                           do not drop the fresh database at the end
#   BENCH_GC_PROBE=1                          the API and the worker log their garbage collections
#                                             (bench/gc_probe); each half-load run keeps a timeline
#                                             and bench/stalls.py says what its slow requests
#                                             overlapped (half_<name>.stalls.txt; 0: neither)
#   BENCH_CHECKPOINT=1                        a CHECKPOINT before each run (0: none; the server's
#                                             own checkpoints then land in the runs)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"
if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; STEPCOIN="$ROOT/.venv/bin/stepcoin"
else PY=python3; STEPCOIN=stepcoin; fi

USERS=${BENCH_USERS:-10000}; DAYS=${BENCH_DAYS:-90}; QUEUE=${BENCH_QUEUE:-$(( USERS * 3 / 10 ))}
BULK_USERS=${BENCH_BULK_USERS:-1500}; SEED=${BENCH_SEED:-42}
DUR=${BENCH_DURATION:-25}; WARM=${BENCH_WARMUP:-3}
APPROVE_RATE=${APPROVE_RATE:-100}
CONC=${MAX_CONCURRENCY:-16}; BULK_CONC=${BULK_CONCURRENCY:-4}; WORKERS=${BENCH_WORKERS:-2}
PRODUCTS=${BENCH_PRODUCTS:-50}; RUN_WORKER=${BENCH_WORKER:-1}
SETTLE=${BENCH_SETTLE:-30}; [ "$RUN_WORKER" = 1 ] || SETTLE=0
BOARD_LAG=${BENCH_BOARD_LAG:-1}; [ "$RUN_WORKER" = 1 ] || BOARD_LAG=0
GC_PROBE=${BENCH_GC_PROBE:-1}
PROBE_PATH=""; [ "$GC_PROBE" = 1 ] && PROBE_PATH="$HERE/gc_probe"
SCENARIOS=${BENCH_SCENARIOS:-profile wallet ledger achievements leaderboard sync order bulk}
CLIENT=${BENCH_CLIENT:-raw}
ADMIN_URL=${BENCH_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
# the benchmark's own packages (bench/requirements.txt), installed once into the venv
if ! "$PY" -c "import aiohttp" 2>/dev/null; then
    echo "[bench] installing bench/requirements.txt" >&2
    "$PY" -m pip install -q -r "$HERE/requirements.txt"
fi
# a random secret for this run only (>= 32 bytes, never a published one)
SECRET=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(48))')
OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

CREATED_DB=""
SERVER_PID=""
WORKER_PID=""
stop_pid() {  # pid: TERM, wait up to 15 s, then KILL (only the processes this script started)
    local pid=$1
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop_pid "$WORKER_PID"
    stop_pid "$SERVER_PID"
    if [ -n "$CREATED_DB" ] && [ -z "${BENCH_KEEP_DB:-}" ]; then
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
    # statements per request need pg_stat_statements (and the server's
    # shared_preload_libraries); without it the summary says so and the run goes on
    psql "$DB_URL" -qAtc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null 2>&1 || true
fi
[ "$DAYS" -lt 9 ] && QUEUE=0  # queued flags are 8+ days ago

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
    --bulk-users "$BULK_USERS" --seed "$SEED" ${BENCH_STEPS_BUDGET:+--steps-budget "$BENCH_STEPS_BUDGET"} \
    2>&1 | tee "$OUT/generate.txt" >&2

PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log "starting stepcoin serve --workers $WORKERS --no-worker on port $PORT"
# the logs as in production (an access line per request, with its request id; INFO): the
# access lines are counted and dropped from server.log when the run ends (bench/README.md)
PYTHONPATH="$PROBE_PATH" STEPCOIN_JWT_SECRET="$SECRET" STEPCOIN_LOG_FORMAT=json \
STEPCOIN_ENV=production STEPCOIN_RUN_WORKER_IN_SERVE=false \
    "$STEPCOIN" serve --workers "$WORKERS" --no-worker --no-migrate --host 127.0.0.1 \
    --port "$PORT" > "$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 60); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.5
done
curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null
if [ "$RUN_WORKER" = 1 ]; then
    # the job worker in its own process (achievements after a sync, the boards' scheduled
    # rebuild, the order outbox), as in production (its logs too: JSON, INFO, procrastinate's
    # lines per job): its CPU per request is reported apart
    log "starting stepcoin worker"
    PYTHONPATH="$PROBE_PATH" STEPCOIN_JWT_SECRET="$SECRET" STEPCOIN_LOG_FORMAT=json \
        STEPCOIN_ENV=production "$STEPCOIN" worker > "$OUT/worker.log" 2>&1 &
    WORKER_PID=$!
fi

load() {  # name scenario mode-args...
    local name=$1 scenario=$2; shift 2
    if [ "${BENCH_CHECKPOINT:-1}" = 1 ]; then
        # each run starts after a checkpoint: not inside the previous run's (its fsync phase
        # stalled every commit and read for up to a second: BENCHMARKS.md, run 20); the
        # full-page images after it are the run's own cost
        psql "$DB_URL" -qc CHECKPOINT >/dev/null 2>&1 || log "CHECKPOINT refused; going on"
    fi
    "$PY" "$HERE/load.py" --base-url "http://127.0.0.1:$PORT" --database-url "$DB_URL" \
        --jwt-secret="$SECRET" --scenario "$scenario" --duration "$DUR" --warmup "$WARM" \
        --server-pid "$SERVER_PID" --worker-pid "${WORKER_PID:-0}" --client "$CLIENT" \
        --seed "$SEED" --products "$PRODUCTS" --settle "$SETTLE" --out "$OUT/$name.json" "$@" \
        || { log "scenario $name failed (see above); going on"; return 0; }
}
stalls() {  # name: what the slow requests of half_<name> overlapped (bench/stalls.py)
    [ -f "$OUT/$1.csv" ] || return 0
    "$PY" "$HERE/stalls.py" --timeline "$OUT/$1.csv" --database-url "$DB_URL" \
        --gc-log "$OUT/server.log" ${WORKER_PID:+--gc-log "$OUT/worker.log"} \
        > "$OUT/$1.stalls.txt" 2>&1 || log "stalls.py failed for $1; going on"
}
max_of() {  # scenario key: that key of the scenario's closed-loop maximum (max_<scenario>.json)
    "$PY" -c 'import json, sys
try: v = json.load(open(sys.argv[1])).get(sys.argv[2])
except Exception: v = None
print("" if v is None else v)' "$OUT/max_$1.json" "$2"
}
half_rate() {  # scenario override: the override, else half the measured closed-loop maximum
    # (the lower of run (a)'s and the one measured again just before, recheck_<scenario>.json)
    if [ -n "$2" ]; then echo "$2"; return; fi
    local again=""
    [ -f "$OUT/recheck_$1.json" ] && again=$("$PY" -c 'import json, sys
print(json.load(open(sys.argv[1])).get("ok_rate") or "")' "$OUT/recheck_$1.json")
    "$PY" -c 'import sys; print(max(1, round(min([float(v) for v in sys.argv[1:] if v] or [0]) / 2)))' \
        "$(max_of "$1" ok_rate)" "$again"
}
RECHECK=${BENCH_RECHECK:-4}
if [ "$RUN_WORKER" = 1 ]; then
    # the generated history's achievements (bench/generate.py marks every walker): evaluated
    # by the worker's batch before any run, as the batch has followed every sync in production;
    # and the walkers' closed history summarised (achievements:summarise_history, deferred when
    # the worker starts), as production's worker keeps it
    started=$(date +%s)
    for _ in $(seq 1 "${BENCH_PREPARE_WAIT:-300}"); do
        left=$(psql "$DB_URL" -qAtc "SELECT (SELECT count(*) FROM achievements_dirty)
            + (SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM achievement_history h
               WHERE h.user_id = u.id AND h.through IS NOT NULL))" 2>/dev/null || echo 0)
        [ "${left:-0}" = 0 ] && break
        sleep 1
    done
    log "achievements of the generated history evaluated and summarised in" \
        "$(( $(date +%s) - started )) s (walkers left: ${left:-0})"
    # what production's autoanalyze would do now (this machine's server runs without
    # autovacuum): the tables the preparation changed past autovacuum's default threshold
    # (50 rows + 10 %) analyzed again, those that hold rows (as generate.py: one analyzed
    # empty, the dirty marks drained, would be planned as empty). achievement_history was
    # analyzed by generate.py while every summary was still to be built (through NULL): with
    # those statistics the batch's facts read hashed every summary (234 ms of PostgreSQL per
    # 800 walkers until migration 0055; robust to them since, as production must be between
    # two autoanalyzes)
    stale=$(psql "$DB_URL" -qAtc "SELECT string_agg(format('%I', relname), ', ')
        FROM pg_stat_user_tables
        WHERE n_live_tup > 0 AND n_mod_since_analyze > 50 + 0.1 * n_live_tup")
    if [ -n "$stale" ]; then
        psql "$DB_URL" -qc "ANALYZE $stale" && log "analyzed again (autoanalyze's rule): $stale"
    fi
    # and vacuumed what its autovacuum would (dead rows past 50 + 20 %, or rows inserted past
    # 1,000 + 20 % since the last vacuum: PostgreSQL 13's insert rule): the boards' first build
    # inserts every board row, and without a vacuum their index-only reads visit the heap
    # (the visibility map is never set on this server: ~60 µs of PostgreSQL per leaderboard
    # read, BENCHMARKS.md run 23)
    unvacuumed=$(psql "$DB_URL" -qAtc "SELECT string_agg(format('%I', relname), ', ')
        FROM pg_stat_user_tables
        WHERE n_dead_tup > 50 + 0.2 * n_live_tup
           OR n_ins_since_vacuum > 1000 + 0.2 * n_live_tup")
    if [ -n "$unvacuumed" ]; then
        psql "$DB_URL" -qc "VACUUM $unvacuumed" && log "vacuumed (autovacuum's rule): $unvacuumed"
    fi
fi
log "(a) maximum throughput, closed loop c=$CONC: $SCENARIOS"
for sc in $SCENARIOS; do
    if [ "$sc" = bulk ]; then
        log "bulk ingest, 500-record batches, c=$BULK_CONC"
        load bulk bulk --concurrency "$BULK_CONC"
    else
        load "max_$sc" "$sc" --concurrency "$CONC"
    fi
done
if [ "$BOARD_LAG" = 1 ]; then
    log "a sync's way into the boards (bench/board_lag.py)"
    "$PY" "$HERE/board_lag.py" --base-url "http://127.0.0.1:$PORT" --database-url "$DB_URL" \
        --jwt-secret="$SECRET" --seed "$SEED" --timeout "${BENCH_BOARD_LAG_TIMEOUT:-70}" \
        --out "$OUT/board_lag.json" \
        || log "board_lag.py failed; going on"
fi
if [ -z "${BENCH_SKIP_HALF:-}" ]; then
    log "(b) half of each maximum, open loop"
    for sc in profile wallet leaderboard sync order; do
        case " $SCENARIOS " in *" $sc "*) ;; *) continue ;; esac
        var="$(echo "$sc" | tr a-z A-Z)_RATE"
        args=(--rate "$(half_rate "$sc" "${!var:-}")")
        # half of the maximum of the same board: after the sync runs the week's board (empty on
        # a Monday's maximum) lists this week's walkers, a board of other density and cost
        board=""
        [ "$sc" = leaderboard ] && board=$(max_of leaderboard leaderboard_period)
        if [ -z "${!var:-}" ] && [ "$RECHECK" != 0 ]; then
            # the machine's speed can drift within a run (a shared host's phases: BENCHMARKS.md,
            # run 27, where a maximum measured in a fast phase was twice what a slow phase
            # could carry): the maximum again, just before, and half of the lower of the two
            load "recheck_$sc" "$sc" --concurrency "$CONC" --duration "$RECHECK" --warmup 1 \
                ${board:+--board "$board"}
            args=(--rate "$(half_rate "$sc" "")")
        fi
        [ -n "$board" ] && args+=(--board "$board")
        [ "$GC_PROBE" = 1 ] && args+=(--timeline "$OUT/half_$sc.csv")
        load "half_$sc" "$sc" "${args[@]}"
        if [ "$GC_PROBE" = 1 ]; then stalls "half_$sc"; fi
    done
    # the coin transaction: a review approval; the queue is finite, so the run is at most 20 s
    # and ends before 90% of the queue is used
    APPROVE_DUR=$(( QUEUE * 9 / 10 / APPROVE_RATE - WARM ))
    (( APPROVE_DUR > DUR )) && APPROVE_DUR=$DUR
    (( APPROVE_DUR > 20 )) && APPROVE_DUR=20
    if (( APPROVE_DUR >= 2 )); then
        load half_approve approve --rate "$APPROVE_RATE" --duration "$APPROVE_DUR" \
            ${PROBE_PATH:+--timeline "$OUT/half_approve.csv"}
        stalls half_approve
    else
        log "half_approve skipped: a queue of $QUEUE is too short for $APPROVE_RATE/s"
    fi
fi
JOBS_BEFORE_CEILING=$(psql "$DB_URL" -qAtc "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'" 2>/dev/null || echo "?")
log "(c) same-run SQL ceilings (pgbench; jobs still waiting: $JOBS_BEFORE_CEILING)"
CEILING_SECONDS=${CEILING_SECONDS:-$DUR} BENCH_USERS="$USERS" BENCH_SEED="$SEED" \
    "$HERE/sql_ceiling.sh" "$DB_URL" "$OUT/ceiling.json" >/dev/null
if [ -f "$OUT/ceiling_sync.sql" ]; then
    log "the sync's database work, serial: exact WAL and rows per call (bench/sync_cost.py)"
    "$PY" "$HERE/sync_cost.py" --database-url "$DB_URL" --script "$OUT/ceiling_sync.sql" \
        --users "$USERS" --seed "$SEED" --calls "${SYNC_COST_CALLS:-40}" \
        --out "$OUT/sync_cost.json" || log "sync_cost.py failed; going on"
fi
log "ledger check after the load (bench/ledger_check.sql: check-ledger's checks, set-based)"
psql "$DB_URL" -qAt -F ' = ' -f "$HERE/ledger_check.sql" > "$OUT/check_ledger.txt"
if awk -F ' = ' '$2 != 0 {bad=1} END {exit bad}' "$OUT/check_ledger.txt"; then
    echo "ledger OK" >> "$OUT/check_ledger.txt"; log "ledger OK"
else
    echo "LEDGER CHECK FAILED" >> "$OUT/check_ledger.txt"; log "LEDGER CHECK FAILED (see check_ledger.txt)"
    LEDGER_FAILED=1
fi
stop_pid "$WORKER_PID"; WORKER_PID=""
stop_pid "$SERVER_PID"; SERVER_PID=""
# the access lines (about a million a run) leave server.log; their count stays
grep -c '"logger":"stepcoin.access"' "$OUT/server.log" > "$OUT/access_lines.txt" || true
grep -v '"logger":"stepcoin.access"' "$OUT/server.log" > "$OUT/server.log.kept" || true
mv "$OUT/server.log.kept" "$OUT/server.log"
if [ -n "${BENCH_BOARDS_USERS:-}" ]; then
    # boards at scale: bench/leaderboard_bench.py makes (and drops) its own database
    log "(d) boards: bench/leaderboard_bench.py --users $BENCH_BOARDS_USERS"
    "$PY" "$HERE/leaderboard_bench.py" --server-url "$ADMIN_URL" --users "$BENCH_BOARDS_USERS" \
        --days "${BENCH_BOARDS_DAYS:-30}" --out "$OUT/boards.md" > "$OUT/boards.log" 2>&1 \
        || log "leaderboard_bench.py failed (see boards.log)"
fi
"$PY" "$HERE/report.py" "$OUT" > "$OUT/summary.md"
cat "$OUT/summary.md"
log "results in $OUT"
if [ -n "${LEDGER_FAILED:-}" ]; then exit 1; fi

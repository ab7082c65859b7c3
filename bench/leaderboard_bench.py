"""Leaderboard benchmark: rebuild every board for 1,000,000 walkers x 30 days, then time reads.

    python bench/leaderboard_bench.py [--server-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--users 1000000] [--days 30] [--reads 5000] [--out FILE] [--keep]

It creates a throwaway database on the server, migrates it, fills users and step_days with
set-based SQL (generate_series; deterministic hashes, no randomness), and then measures:

1. a full rebuild of the four open boards (daily, weekly, monthly, all time) from empty, with
   the application's own code (stepcoin.leaderboards.repository.rebuild);
2. the same rebuild again with nothing changed (the steady state between syncs), and after
   1% of the walkers synced a new count for today (a typical scheduled rebuild);
3. the read: the exact statement GET /v1/leaderboards/{period} runs (read_board_sql), in-process
   over asyncpg, for random walkers, sequentially and with 4 concurrent connections; p50, p95,
   p99 and max, plus its EXPLAIN (ANALYZE, BUFFERS).

The database is dropped at the end (unless --keep). The data load makes step_days UNLOGGED
and skips foreign-key triggers while loading (a throwaway database: the measured rebuild
reads step_days exactly as a logged table and writes leaderboard_cache, which stays logged).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from stepcoin import migrate
from stepcoin.db import Database, session_scope
from stepcoin.leaderboards import repository
from stepcoin.leaderboards.periods import open_boards, utc_today

INACTIVE_EVERY = 100  # 1% of the walkers are deactivated
MISSED_DAY_EVERY = 12  # about 8% of the walker-days have no approved steps


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def fill(url: str, users: int, days: int) -> dict[str, float]:
    """Users with ordered ids (so every index is appended to, not split) and their days."""
    timings: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK triggers while loading
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET work_mem = '256MB'")
        conn.execute("ALTER TABLE step_days SET UNLOGGED")
        started = time.perf_counter()
        conn.execute(
            """
            INSERT INTO users (id, email, full_name, is_active, created_at)
            SELECT CAST(lpad(to_hex(n), 32, '0') AS uuid),
                   'w' || lpad(n::text, 8, '0') || '@bench.stepcoin.test',
                   'Walker' || n || ' Bench' || (n %% 26),
                   n %% %(inactive)s <> 0,
                   now() - interval '90 days'
            FROM generate_series(1, %(users)s) AS n
            """,
            {"users": users, "inactive": INACTIVE_EVERY},
        )
        timings["users_s"] = time.perf_counter() - started
        started = time.perf_counter()
        # per walker a base level (2,000..14,000) and per day a swing of -3,000..+4,000,
        # rounded to 10 steps so that ties happen, as they do in real data
        conn.execute(
            """
            INSERT INTO step_days (user_id, recorded_date, credited_source, credited_steps,
                                   coins_paid, version)
            SELECT CAST(lpad(to_hex(n), 32, '0') AS uuid), current_date - d, 'healthkit',
                   greatest(10, (2000 + ((hashint4(n)::bigint + 2147483648) %% 12000)
                                 + ((hashint4(n * 1000 + d)::bigint + 2147483648) %% 7000)
                                 - 3000) / 10 * 10),
                   100, 1
            FROM generate_series(1, %(users)s) AS n
            CROSS JOIN LATERAL generate_series(%(last)s, 0, -1) AS d
            WHERE (hashint4(n * 31 + d + 7)::bigint + 2147483648) %% %(missed)s <> 0
            """,
            {"users": users, "last": days - 1, "missed": MISSED_DAY_EVERY},
        )
        timings["step_days_s"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE) users")
        conn.execute("VACUUM (ANALYZE) step_days")
        timings["vacuum_s"] = time.perf_counter() - started
        rows = conn.execute("SELECT count(*) FROM step_days").fetchone()
        size = conn.execute("SELECT pg_size_pretty(pg_table_size('step_days'))").fetchone()
        assert rows is not None and size is not None
        timings["step_days_rows"] = rows[0]
        timings["step_days_size"] = size[0]
    return timings


async def rebuild(database: Database) -> tuple[float, repository.RebuildStats]:
    started = time.perf_counter()
    async with session_scope(database) as session:
        stats = await repository.rebuild(session, [(board, False) for board in open_boards()])
    assert stats is not None
    return time.perf_counter() - started, stats


def resync_today(url: str, users: int) -> int:
    """1% of the walkers sync a higher count for today (what a 5-minute interval looks like)."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(
            """
            INSERT INTO step_days (user_id, recorded_date, credited_source, credited_steps)
            SELECT CAST(lpad(to_hex(n), 32, '0') AS uuid), current_date, 'healthkit',
                   1000 + ((hashint4(n + 17)::bigint + 2147483648) %% 20000)
            FROM generate_series(1, %(users)s, 100) AS n
            ON CONFLICT (user_id, recorded_date)
            DO UPDATE SET credited_steps = step_days.credited_steps + EXCLUDED.credited_steps
            """,
            {"users": users},
        )
        return cursor.rowcount


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cut = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "n": len(ordered),
        "p50": cut[49],
        "p95": cut[94],
        "p99": cut[98],
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


async def read_benchmark(
    url: str, users: int, reads: int, concurrency: int, period: str
) -> dict[str, float]:
    start = next(b.start for b in open_boards() if b.period == period)
    rng = random.Random(42 + concurrency)
    connections = [
        await asyncpg.connect(url, server_settings={"application_name": "stepcoin-bench"})
        for _ in range(concurrency)
    ]
    try:
        for conn in connections:  # prepare once, as a pooled API connection would have
            await repository.read_board(conn, period, start, uuid.UUID(int=1), 100)
        samples: list[float] = []

        async def worker(conn: asyncpg.Connection, count: int) -> None:
            for _ in range(count):
                who = uuid.UUID(int=rng.randint(1, users))
                began = time.perf_counter()
                rows = await repository.read_board(conn, period, start, who, 100)
                samples.append((time.perf_counter() - began) * 1000)
                assert rows

        per = reads // concurrency
        began = time.perf_counter()
        await asyncio.gather(*(worker(c, per) for c in connections))
        elapsed = time.perf_counter() - began
        result = percentiles(samples)
        result["per_s"] = len(samples) / elapsed
        return result
    finally:
        for conn in connections:
            await conn.close()


async def explain(url: str, users: int) -> str:
    conn = await asyncpg.connect(url)
    try:
        who = uuid.UUID(int=users // 2 + 1)
        rows = await conn.fetch(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + repository.read_board_sql(100),
            "daily",
            utc_today(),
            who,
        )
        return "\n".join(r[0] for r in rows)
    finally:
        await conn.close()


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"
    )


def rebuild_row(name: str, seconds: float, stats: repository.RebuildStats) -> str:
    return (
        f"| {name} | {seconds:.2f} s | {stats.ranking_ms / 1000:.2f} s | "
        f"{stats.writing_ms / 1000:.2f} s | {stats.entries:,} | {stats.inserted:,} | "
        f"{stats.updated:,} | {stats.deleted:,} |"
    )


def row(name: str, p: dict[str, float]) -> str:
    return (
        f"| {name} | {p['n']:.0f} | {p['p50']:.2f} | {p['p95']:.2f} | {p['p99']:.2f} | "
        f"{p['max']:.2f} | {p['per_s']:.0f} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--out", default="bench/results/leaderboards.md")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    name = f"stepcoin_lbbench_{os.getpid()}"
    url = with_database(args.server_url, name)
    host = machine()
    with psycopg.connect(args.server_url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        conn.execute(f'CREATE DATABASE "{name}"')
    began = time.perf_counter()
    try:
        log(f"database {name}: migrating")
        migrate.upgrade(url)
        log(f"filling {args.users:,} walkers x {args.days} days")
        filled = fill(url, args.users, args.days)
        log(f"filled: {filled}")
        database = Database(url, pool_size=2, max_overflow=0)
        try:
            first_s, first = await rebuild(database)
            log(f"first rebuild {first_s:.2f} s: {first}")
            same_s, same = await rebuild(database)
            log(f"unchanged rebuild {same_s:.2f} s: {same}")
            resynced = resync_today(url, args.users)
            moved_s, moved = await rebuild(database)
            log(f"rebuild after {resynced:,} re-syncs {moved_s:.2f} s: {moved}")
        finally:
            await database.dispose()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) leaderboard_cache")
        reads = {}
        for period in ("daily", "all_time"):
            for concurrency in (1, 4):
                reads[(period, concurrency)] = await read_benchmark(
                    url, args.users, args.reads, concurrency, period
                )
                log(f"reads {period} c={concurrency}: {reads[(period, concurrency)]}")
        plan = await explain(url, args.users)
    finally:
        if not args.keep:
            with psycopg.connect(args.server_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    total = time.perf_counter() - began
    report = f"""# Benchmarks

## Leaderboards

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python bench/leaderboard_bench.py`
({total:.0f} s in all) on {host}; PostgreSQL {version[0] if version else "?"}, default
settings (shared_buffers 128MB; the rebuild raises work_mem to 256MB for its own transaction).
**The figures are noisy**: the machine has 2 cores shared by the database, this script and
other engineers' test and benchmark runs; repeat runs differ by a factor of up to ~2.

Data: {args.users:,} walkers ({100 // INACTIVE_EVERY}% deactivated), {args.days} days each,
about 1 day in {MISSED_DAY_EVERY} without approved steps: {filled["step_days_rows"]:,}
step_days rows ({filled["step_days_size"]}). Loading took {filled["users_s"]:.0f} s (users) +
{filled["step_days_s"]:.0f} s (step_days) + {filled["vacuum_s"]:.0f} s (VACUUM ANALYZE).

### Rebuilding all four open boards (goal: <= 10 s)

One transaction, `stepcoin.leaderboards.repository.rebuild`: the ranking statement (one
parallel scan of step_days for all boards, RANK() per board, compared with the cached rows:
only the differences are kept) and one statement that applies them (docs/engagement.md).

| rebuild | total | ranking | writing | entries | inserted | updated | deleted |
|---|---|---|---|---|---|---|---|
{rebuild_row("first, into an empty cache", first_s, first)}
{rebuild_row("again, nothing changed", same_s, same)}
{rebuild_row(f"after {resynced:,} walkers re-synced today", moved_s, moved)}

**The goal is {"met" if moved_s <= 10 else "not met"} at {args.users:,} walkers on this machine.**
Where the time goes:

- the ranking statement is mostly the aggregation of every step_days row per user (a hash
  aggregate of {filled["step_days_rows"]:,} rows into one group per walker, on 2 cores);
  the four RANK() sorts and the comparisons with the cache take about 1 s per board at a
  million walkers;
- writing: one walker moving up shifts the rank of everyone they pass, so after 1% of the
  walkers synced nearly every row of every board changes. These are heap-only updates (the
  board order index is on the total, and the table keeps room on each page):
  {moved.writing_ms * 1000 / max(moved.updated, 1):.1f} µs a row here, join included (at a
  million walkers, the first design, with the index on the rank, wrote for ~78 s);
- the first build into an empty cache inserts every row (both indexes maintained row by row,
  full-page writes after each checkpoint): a one-time cost at the first deployment; a new
  period's board starts empty and fills as walkers sync.

What would meet it (not done here; it needs the step loop's cooperation): incremental totals,
recomputing only the users whose step_days changed since the last build (an index on
`step_days.updated_at`, or a change log the step loop appends to), which removes the
full aggregation; and, to stop rewriting every rank, storing only totals per user
with a small per-board table of rank checkpoints (the rank of every 1,000th position), from
which a reader derives a rank with one short index range.

### The leaderboard query (goal: p99 < 5 ms)

The statement of `GET /v1/leaderboards/{{period}}?limit=100` (top 100 with names, the caller's
rank, two neighbours each side: `stepcoin.leaderboards.repository.read_board_sql`), in-process
over asyncpg (prepared), {args.reads:,} reads per line for random walkers. Milliseconds:

| board, connections | reads | p50 | p95 | p99 | max | reads/s |
|---|---|---|---|---|---|---|
{row("daily, 1", reads[("daily", 1)])}
{row("daily, 4", reads[("daily", 4)])}
{row("all time, 1", reads[("all_time", 1)])}
{row("all time, 4", reads[("all_time", 4)])}

The HTTP endpoint adds the API's own cost per request (see PERFORMANCE.md: about 0.3 ms of
Python for a trivial read) on top of these figures.

With 4 connections the script, PostgreSQL and the other processes share 2 cores: the extra
latency there is mostly waiting for a core.

Its plan (daily board, a walker in the middle of the board): index scans only; the only sorts
order the at most four candidate neighbours on each side.

```
{plan}
```
"""
    Path(args.out).write_text(report, "utf-8")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())

"""What the achievements' reads cost: the facts of a batch of walkers three ways, and a
walker's GET /v1/achievements with and without the summaries of closed history, A/B.

    python bench/achievements_cost.py --database-url URL [--walkers 470] [--reads 1000]
        [--rounds 8] [--seed 1]

On a generated bench database (bench/generate.py: no walker has unlocked anything, so every
active achievement is still to be met and every streak threshold is computed), samples
`--walkers` walkers per round and reads their facts:

- `arrays` (the code, achievements.repository.user_facts): each walker's credited days as two
  arrays, streak runs and totals computed in Python (facts_from_days);
- `arrays, whole history`: the same statement with no summary of closed history (every
  summary's `through` set to NULL: every credited day is read, as before migration 0048);
- `set-based` (the batch's query until 2026-12-06, kept here and in
  tests/achievements/test_reads.py as the reference): window functions over every credited day
  (gaps and islands), aggregates and JSON in PostgreSQL.

and `--reads` walkers' GET /v1/achievements items one after another (service.my_achievements,
one statement each) with and without the summaries.

Alternated per round on the same sample; reports per batch (and per read) the wall time, this
process's CPU and the PostgreSQL backend's CPU (from /proc: the server must run on this
machine), medians over the rounds after the first two; and checks that every form gives the
same facts and items. Writes only achievement_history (`history.build`, and NULL to drop).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from stepcoin.achievements import history, service
from stepcoin.achievements.criteria import StreakFacts, UserFacts
from stepcoin.achievements.repository import FACTS_SQL, facts_from_days
from stepcoin.db import Database

ARRAYS = FACTS_SQL.format(users="$1::uuid[]", thresholds="$2::integer[]")  # the code's own

SET_BASED = """
WITH d AS MATERIALIZED (
    SELECT user_id, recorded_date, credited_steps FROM step_days
    WHERE user_id = ANY($1::uuid[]) AND credited_steps > 0
),
runs AS (
    SELECT d.user_id, t.min_steps, d.recorded_date,
           d.recorded_date - CAST(row_number() OVER (
               PARTITION BY d.user_id, t.min_steps ORDER BY d.recorded_date) AS integer) AS run
    FROM d JOIN unnest($2::integer[]) AS t(min_steps) ON d.credited_steps >= t.min_steps
),
islands AS (
    SELECT user_id, min_steps, count(*) AS length, max(recorded_date) AS last_day
    FROM runs GROUP BY user_id, min_steps, run
),
streaks AS (
    SELECT user_id, jsonb_agg(jsonb_build_array(min_steps, longest, latest_length, latest_end))
           AS runs
    FROM (
        SELECT user_id, min_steps, max(length) AS longest, max(last_day) AS latest_end,
               (array_agg(length ORDER BY last_day DESC))[1] AS latest_length
        FROM islands GROUP BY user_id, min_steps
    ) s
    GROUP BY user_id
),
totals AS (
    SELECT user_id, max(credited_steps) AS best_day, sum(credited_steps) AS total_steps,
           count(*) AS approved_days
    FROM d GROUP BY user_id
)
SELECT u.id, u.timezone, u.is_active,
       coalesce(t.best_day, 0) AS best_day, coalesce(t.total_steps, 0) AS total_steps,
       coalesce(t.approved_days, 0) AS approved_days,
       EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id
               AND o.status NOT IN ('cancelled', 'failed')) AS redeemed,
       s.runs::text AS runs
FROM users u
LEFT JOIN totals t ON t.user_id = u.id
LEFT JOIN streaks s ON s.user_id = u.id
WHERE u.id = ANY($1::uuid[])
"""


def _set_based_facts(row: Any) -> UserFacts:
    return UserFacts(
        user_id=row["id"],
        timezone=row["timezone"],
        is_active=row["is_active"],
        best_day=int(row["best_day"]),
        total_steps=int(row["total_steps"]),
        approved_days=int(row["approved_days"]),
        redeemed=bool(row["redeemed"]),
        streaks={
            int(m): StreakFacts(int(longest), int(latest), date.fromisoformat(end))
            for m, longest, latest, end in json.loads(row["runs"] or "[]")
        },
    )


def _backend_cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / 100  # utime + stime, clock ticks of 10 ms


async def _summaries(conn: Any, database: Database, on: bool) -> None:
    """Every walker's closed history summarised (on) or no summary at all (off)."""
    if on:
        await history.build(database)
    else:
        await conn.execute("UPDATE achievement_history SET through = NULL")
    await conn.execute("VACUUM ANALYZE achievement_history")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--walkers", type=int, default=470)
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    conn = await asyncpg.connect(args.database_url)
    database = Database(args.database_url)
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    streaks = await conn.fetch(
        "SELECT unlock_criteria::text FROM achievements "
        "WHERE is_active AND unlock_criteria ->> 'kind' = 'streak'"
    )
    thresholds = sorted({int(json.loads(r[0])["min_steps"]) for r in streaks})
    walkers = [r["id"] for r in await conn.fetch("SELECT id FROM users")]
    days = await conn.fetchval(
        "SELECT round(avg(n)) FROM (SELECT count(*) AS n FROM step_days GROUP BY user_id) d"
    )
    rng = random.Random(args.seed)
    forms = ("arrays", "arrays, whole history", "set-based", "read", "read, whole history")
    results: dict[str, list[tuple[float, float, float]]] = {form: [] for form in forms}
    same = 0

    def measure(form: str, round_: int, start: tuple[float, float, float], n: int = 1) -> None:
        pg0, cpu0, t0 = start
        wall = (time.perf_counter() - t0) * 1000 / n
        cpu = (time.process_time() - cpu0) * 1000 / n
        if round_ >= 2:
            results[form].append((wall, cpu, (_backend_cpu_ms(pid) - pg0) / n))

    for round_ in range(args.rounds):
        sample: list[uuid.UUID] = rng.sample(walkers, min(args.walkers, len(walkers)))
        reads: list[uuid.UUID] = rng.sample(walkers, min(args.reads, len(walkers)))
        facts: dict[str, dict[uuid.UUID, UserFacts]] = {}
        items: dict[bool, list[Any]] = {}
        for on in (True, False) if round_ % 2 == 0 else (False, True):
            await _summaries(conn, database, on)
            suffix = "" if on else ", whole history"
            start = (_backend_cpu_ms(pid), time.process_time(), time.perf_counter())
            rows = await conn.fetch(ARRAYS, sample, thresholds)
            facts["arrays" + suffix] = {
                r["id"]: facts_from_days(r["id"], r, thresholds) for r in rows
            }
            measure("arrays" + suffix, round_, start)
            start = (_backend_cpu_ms(pid), time.process_time(), time.perf_counter())
            items[on] = [await service.my_achievements(conn, walker) for walker in reads]
            measure("read" + suffix, round_, start, len(reads))
            if not on:
                start = (_backend_cpu_ms(pid), time.process_time(), time.perf_counter())
                rows = await conn.fetch(SET_BASED, sample, thresholds)
                facts["set-based"] = {r["id"]: _set_based_facts(r) for r in rows}
                measure("set-based", round_, start)
        same += (
            facts["arrays"] == facts["set-based"] == facts["arrays, whole history"]
            and items[True] == items[False]
        )
    await _summaries(conn, database, True)
    await conn.close()
    await database.dispose()
    print(
        f"{args.walkers} walkers a batch, {args.reads} reads, ~{days} credited days a walker, "
        f"streak thresholds {thresholds}, {args.rounds - 2} measured rounds; the same facts "
        f"and items in {same} of {args.rounds} rounds"
    )
    print("| form | wall ms | Python CPU ms | PostgreSQL CPU ms | CPU in all ms |")
    print("|---|---|---|---|---|")
    for form, rows in results.items():
        wall, cpu, pg = (statistics.median(r[i] for r in rows) for i in range(3))
        print(f"| {form} | {wall:.2f} | {cpu:.2f} | {pg:.2f} | {cpu + pg:.2f} |")
    if same != args.rounds:
        raise SystemExit("the forms disagree")


if __name__ == "__main__":
    asyncio.run(main())

"""What the fair-play links cost the sync's snapshot read (issue 16): the same snapshot with
and without its link facts, serial, on a generated data set.

    python bench/link_facts_cost.py --database-url URL [--calls 3000]

URL: a database filled by bench/generate.py (the user count given to it). The script first
gives every walker a phone synced today (`device_accounts`), every 20th walker's phone a second
account (both marked in `link_marks`, as the sync marks them), and sign-up addresses of
households of three (`users.signup_address`), as a live database would have them; then it runs
stepcoin.steps.service.SNAPSHOT_SQL (the function stepcoin_sync_snapshot) for random walkers
(a 7-day batch) and a temporary copy of the function with the link facts (the walker's mark
and their sign-up burst) replaced by NULL, alternating, on one connection (prepared, as the API
runs it), and prints the median and p99 of each and the difference. Read-only after the setup
(which it undoes).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import time
from datetime import UTC, datetime, timedelta

import asyncpg

from stepcoin.sqlfiles import load
from stepcoin.steps.service import SNAPSHOT_SQL

# the link facts in the function's statement
LINKS = re.compile(r"json_build_array\(\s*\(SELECT json_build_array\(lm\..*?p_burst\)\)", re.S)
SETUP = """
INSERT INTO device_accounts (device_id, user_id, first_seen, last_seen)
SELECT 'phone-' || u.n, u.id, current_date - 20, current_date
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users WHERE role = 'user') u
UNION ALL
SELECT 'phone-' || (u.n - 1), u.id, current_date - 3, current_date
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users WHERE role = 'user') u
WHERE u.n % 20 = 0
ON CONFLICT DO NOTHING;
INSERT INTO link_marks (user_id, device_accounts)
SELECT DISTINCT o.user_id, 2 FROM device_accounts m
JOIN device_accounts o ON o.device_id = m.device_id AND o.user_id <> m.user_id
WHERE m.device_id LIKE 'phone-%' ON CONFLICT DO NOTHING;
UPDATE users u SET signup_address = 'bench-' || (x.n / 3)
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users) x WHERE x.id = u.id;
ANALYZE device_accounts; ANALYZE users;
"""
UNDO = """
DELETE FROM link_marks;
DELETE FROM device_accounts WHERE device_id LIKE 'phone-%';
UPDATE users SET signup_address = NULL WHERE signup_address LIKE 'bench-%';
"""


def without_links_function() -> str:
    """stepcoin_sync_snapshot as a temporary function whose link facts are NULL."""
    body, found = LINKS.subn("NULL::json", load("stepcoin.steps", "sync_snapshot.v1.sql"))
    if found != 1:
        raise SystemExit("the link facts were not found in sync_snapshot.v1.sql")
    return body.replace(
        "FUNCTION stepcoin_sync_snapshot(", "FUNCTION pg_temp.snapshot_without_links("
    )


async def measure(url: str, calls: int, seed: int) -> dict[str, dict[str, float]]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SETUP)
        await conn.execute(without_links_function())
        users = [r["id"] for r in await conn.fetch("SELECT id FROM users WHERE role = 'user'")]
        with_links = await conn.prepare(SNAPSHOT_SQL)
        without = await conn.prepare(
            "SELECT * FROM pg_temp.snapshot_without_links($1, $2, $3, $4, $5)"
        )
        today = datetime.now(UTC).date()
        dates = [today - timedelta(days=d) for d in range(6, -1, -1)]
        rng = random.Random(seed)
        timings: dict[str, list[float]] = {"with links": [], "without": []}
        for i in range(calls * 2):
            user = rng.choice(users)
            args = [user, dates, dates[0] - timedelta(days=28), dates[-1], timedelta(hours=24)]
            if i % 2 == 0:
                statement, name = with_links, "with links"
            else:
                statement, name = without, "without"
            start = time.perf_counter()
            await statement.fetchrow(*args)
            timings[name].append((time.perf_counter() - start) * 1e6)
        await conn.execute(UNDO)
    finally:
        await conn.close()
    return {
        name: {
            "median_us": statistics.median(values[100:]),
            "p99_us": statistics.quantiles(values[100:], n=100)[98],
        }
        for name, values in timings.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.database_url, args.calls, args.seed))
    for name, f in figures.items():
        print(f"{name:>10}: median {f['median_us']:.0f} µs, p99 {f['p99_us']:.0f} µs")
    extra = figures["with links"]["median_us"] - figures["without"]["median_us"]
    print(f"the link facts add {extra:.0f} µs (median) to the snapshot read")


if __name__ == "__main__":
    main()

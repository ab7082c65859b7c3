"""Friend and group boards benchmark (issue 17 item 3): a walker with 200 friends and a group
of 10,000 members, read over the live boards of `--users` walkers.

    python bench/social_boards_bench.py [--server-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--users 1000000] [--days 30] [--reads 3000] [--friends 200] [--members 10000]
        [--out FILE] [--keep]

It creates a throwaway database, migrates it, fills walkers and step_days with the leaderboard
benchmark's generator (bench/leaderboard_bench.py: deterministic, set-based), builds the four
open boards with the application's rebuild, then adds 100 walkers with `--friends` friends each
(both directions, as the app stores them) and one group of `--members` members spread over the
whole board (every users/members-th walker; the owner is the first). It times the reads as the
routes do them (`stepcoin.leaderboards.service.scoped_board_answer` with social's friend
scope; `service.group_board_answer` over the group's copy of its members' rows; and, for the
comparison, the first design: the group's members probed in leaderboard_cache), for random
walkers of the set, serially and with 4 concurrent sessions, and prints p50/p95/p99/max and
the EXPLAIN (ANALYZE, BUFFERS) of the group read. The database is dropped at the end (unless
--keep).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from leaderboard_bench import (
    INACTIVE_EVERY,
    fill,
    log,
    machine,
    percentiles,
    rebuild,
    refresh,
    resync_today,
    with_database,
)
from sqlalchemy import text

from stepcoin import migrate
from stepcoin.db import Database
from stepcoin.leaderboards import repository, service
from stepcoin.leaderboards.periods import open_boards
from stepcoin.social import service as social

FRIEND_WALKERS = 100  # walkers with a full friend list
# The first design of the group board, kept for the comparison: the members' rows read from
# leaderboard_cache through repository.read_scoped (one primary-key probe per member).
GROUP_MEMBERS_SQL = "SELECT user_id FROM group_members WHERE group_id = :group_id"


def walker(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def active(n: int) -> int:
    return n - 1 if n % INACTIVE_EVERY == 0 else n


def add_social(
    url: str, users: int, friends: int, members: int, *, vacuum: bool = True
) -> dict[str, Any]:
    """FRIEND_WALKERS walkers with `friends` friends each; one group of `members`."""
    rng = random.Random(17)
    owners = [active(1 + i * (users // FRIEND_WALKERS)) for i in range(FRIEND_WALKERS)]
    pairs: set[tuple[int, int]] = set()
    for owner in owners:
        chosen: set[int] = set()
        while len(chosen) < friends:
            other = active(rng.randint(1, users))
            if other != owner:
                chosen.add(other)
        for other in chosen:
            pairs.add((owner, other))
            pairs.add((other, owner))
    step = max(1, users // members)
    group_members = [active(1 + i * step) for i in range(members)]
    group_members = list(dict.fromkeys(group_members))
    with psycopg.connect(url, autocommit=True) as conn:
        with (
            conn.cursor() as cur,
            cur.copy("COPY friendships (user_id, friend_id) FROM STDIN") as copy,
        ):
            for a, b in pairs:
                copy.write_row((walker(a), walker(b)))
        group_id = conn.execute(
            "INSERT INTO groups (name, kind, is_open) VALUES ('Bench', 'company', false) "
            "RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        with (
            conn.cursor() as cur,
            cur.copy("COPY group_members (group_id, user_id, role) FROM STDIN") as copy,
        ):
            for i, n in enumerate(group_members):
                copy.write_row((group_id, walker(n), "owner" if i == 0 else "member"))
        conn.execute("VACUUM (ANALYZE) friendships")
        conn.execute("VACUUM (ANALYZE) group_members")
        conn.execute("VACUUM (ANALYZE) leaderboard_cache")
        # (what autovacuum does in time: the visibility map that lets a rank be counted from
        # the index alone; measured without it too, see --no-vacuum)
        if vacuum:
            conn.execute("VACUUM (ANALYZE) leaderboard_group_entries")
    return {
        "owners": owners,
        "friendships": len(pairs),
        "group_id": group_id,
        "members": group_members,
    }


async def read_benchmark(
    database: Database,
    read: Any,
    callers: list[int],
    reads: int,
    concurrency: int,
) -> dict[str, float]:
    """`read(session, who)` for random callers: `reads` in all over `concurrency` sessions."""
    rng = random.Random(42 + concurrency)
    samples: list[float] = []

    async def worker(count: int) -> None:
        async with database.read_sessionmaker() as session:
            for _ in range(count):
                who = walker(rng.choice(callers))
                began = time.perf_counter()
                answer = await read(session, who)
                samples.append((time.perf_counter() - began) * 1000)
                assert answer["computed_at"] is not None and answer["entries"]

    await worker(20)  # warm the connection and the plan cache
    samples.clear()
    began = time.perf_counter()
    await asyncio.gather(*(worker(reads // concurrency) for _ in range(concurrency)))
    result = percentiles(samples)
    result["per_s"] = len(samples) / (time.perf_counter() - began)
    return result


async def explain(database: Database, group_id: int, caller: int) -> str:
    sql = repository._READ_GROUP
    start = next(b.start for b in open_boards() if b.period == "daily")
    async with database.read_sessionmaker() as session:
        rows = await session.execute(
            text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql),
            {
                "group_id": group_id,
                "period": "daily",
                "start": start,
                "user_id": walker(caller),
                "limit": 100,
            },
        )
        return "\n".join(r[0] for r in rows)


GROUP_TRIGGERS = (
    "leaderboard_group_insert",
    "leaderboard_group_update",
    "leaderboard_group_delete",
)


async def write_cost(database: Database, url: str, users: int, members: int) -> list[str]:
    """What keeping the group copy costs the live refresh: `members` walkers, every one of them
    in the group, sync a new count for today and the refresh runs, alternately with the group
    triggers on leaderboard_cache enabled and disabled (2 rounds)."""
    lines = []
    for round_ in range(2):
        for enabled in (True, False):
            with psycopg.connect(url, autocommit=True) as conn:
                for trigger in GROUP_TRIGGERS:
                    verb = "ENABLE" if enabled else "DISABLE"
                    conn.execute(f"ALTER TABLE leaderboard_cache {verb} TRIGGER {trigger}")
            synced = resync_today(url, users, members, 0)
            took, stats = await refresh(database)
            log(f"refresh, group triggers {'on' if enabled else 'off'}: {took:.2f} s {stats}")
            lines.append(
                f"| {round_ + 1} | {'on' if enabled else 'off'} | {synced:,} | "
                f"{stats.updated + stats.inserted + stats.deleted:,} | {took:.2f} s |"
            )
    with psycopg.connect(url, autocommit=True) as conn:
        for trigger in GROUP_TRIGGERS:
            conn.execute(f"ALTER TABLE leaderboard_cache ENABLE TRIGGER {trigger}")
    return lines


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
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--friends", type=int, default=200)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument(
        "--before-reads", type=int, default=400, help="reads per line of the first design"
    )
    parser.add_argument("--out", default="bench/results/social-boards-1M.md")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--no-vacuum", action="store_true", help="read the group copy before any VACUUM"
    )
    args = parser.parse_args()

    name = f"stepcoin_socialbench_{os.getpid()}"
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
        database = Database(url, pool_size=5, max_overflow=0)
        try:
            rebuilt_s, stats = await rebuild(database)
            log(f"boards built in {rebuilt_s:.1f} s: {stats}")
            made = add_social(
                url, args.users, args.friends, args.members, vacuum=not args.no_vacuum
            )
            log(f"{made['friendships']:,} friendship rows, group of {len(made['members']):,}")
            lines = []
            group_id = made["group_id"]

            def friends(period: str) -> Any:
                async def read(session: Any, who: uuid.UUID) -> Any:
                    return await service.scoped_board_answer(
                        session,
                        period,  # type: ignore[arg-type]
                        who,
                        scope=social.FRIEND_SCOPE_SQL,
                        scope_params={"user_id": who},
                        start=None,
                        limit=100,
                    )

                return read

            def group(period: str) -> Any:
                async def read(session: Any, who: uuid.UUID) -> Any:
                    return await service.group_board_answer(
                        session,
                        period,  # type: ignore[arg-type]
                        who,
                        group_id,
                        start=None,
                        limit=100,
                    )

                return read

            def group_by_probes(period: str) -> Any:
                async def read(session: Any, who: uuid.UUID) -> Any:
                    return await service.scoped_board_answer(
                        session,
                        period,  # type: ignore[arg-type]
                        who,
                        scope=GROUP_MEMBERS_SQL,
                        scope_params={"group_id": group_id},
                        start=None,
                        limit=100,
                    )

                return read

            size = f"{len(made['members']):,}"
            for period in ("daily", "all_time"):
                for label, make_read, callers, reads in (
                    (f"friends ({args.friends})", friends, made["owners"], args.reads),
                    (f"group ({size})", group, made["members"], args.reads),
                    (
                        f"group ({size}), first design: a probe per member",
                        group_by_probes,
                        made["members"],
                        args.before_reads,
                    ),
                ):
                    for concurrency in (1, 4):
                        p = await read_benchmark(
                            database, make_read(period), callers, reads, concurrency
                        )
                        log(f"{label} {period} c={concurrency}: {p}")
                        lines.append(row(f"{label}, {period}, {concurrency}", p))
            writes = await write_cost(database, url, args.users, len(made["members"]))
            # the same reads right after those refreshes, before any VACUUM: the rows the
            # refresh rewrote are not all-visible, so the rank count visits the heap
            for concurrency in (1, 4):
                p = await read_benchmark(
                    database, group("daily"), made["members"], args.reads, concurrency
                )
                log(f"group daily after the refreshes c={concurrency}: {p}")
                lines.append(
                    row(
                        f"group ({size}), daily, {concurrency}, right after the refreshes "
                        "below (no VACUUM yet)",
                        p,
                    )
                )
            plan = await explain(
                database, made["group_id"], made["members"][len(made["members"]) // 2]
            )
        finally:
            await database.dispose()
    finally:
        if not args.keep:
            with psycopg.connect(args.server_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    total = time.perf_counter() - began
    report = f"""## Friend and group boards

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python bench/social_boards_bench.py`
({total:.0f} s in all) on {host}; PostgreSQL {version[0] if version else "?"}.

Data: {args.users:,} walkers x {args.days} days ({filled["step_days_rows"]:,} step_days rows),
the four open boards built; {FRIEND_WALKERS} walkers with {args.friends} friends each
({made["friendships"]:,} friendship rows); one group of {len(made["members"]):,} members spread
over the board. {args.reads:,} reads per line, milliseconds:

| board (set size), period, sessions | reads | p50 | p95 | p99 | max | reads/s |
|---|---|---|---|---|---|---|
{chr(10).join(lines)}

What keeping the group copy costs the live refresh: {len(made["members"]):,} walkers, all of
them members of the group, sync a new count for today, then the refresh
(`repository.refresh`) brings the four live boards up to date; alternately with the group
triggers on leaderboard_cache enabled and disabled:

| round | group triggers | walkers synced | board rows written | refresh |
|---|---|---|---|---|
{chr(10).join(writes)}

The group read's plan (`repository._READ_GROUP`, daily board, a member in the middle), taken
last (after the refreshes above, before any VACUUM):

```
{plan}
```
"""
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print(report)


if __name__ == "__main__":
    asyncio.run(main())

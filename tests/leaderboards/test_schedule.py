"""When boards are rebuilt, how closed periods become snapshots, and readers during a rebuild."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta

from sqlalchemy import text

from stepcoin.db import session_scope
from stepcoin.leaderboards import repository, service
from stepcoin.leaderboards.periods import Board, open_boards, previous_boards
from stepcoin.leaderboards.repository import BuildInfo, read_board_sql
from tests.achievements.helpers import set_days
from tests.leaderboards.helpers import board, ranks, rebuild, utc, walker
from tests.steps.helpers import today

WED = date(2026, 11, 25)  # a Wednesday


def plan(now, known, interval=5, grace=12):
    return service.plan_rebuilds(now, known, interval_minutes=interval, finalize_after_hours=grace)


def test_plan_first_run_builds_open_boards_and_snapshots_closed_ones():
    now = utc(WED, 13)
    planned = dict(plan(now, {}))
    assert {b for b, final in planned.items() if not final} == set(open_boards(now))
    assert {b for b, final in planned.items() if final} == set(previous_boards(now))
    assert Board("daily", WED - timedelta(days=1)) in planned
    assert Board("weekly", date(2026, 11, 16)) in planned
    assert Board("monthly", date(2026, 10, 1)) in planned


def test_plan_waits_for_the_interval():
    now = utc(WED, 13)
    built = {b: BuildInfo(now - timedelta(minutes=4), 10, False) for b in open_boards(now)}
    built |= {b: BuildInfo(now, 10, True) for b in previous_boards(now)}
    assert plan(now, built) == []
    later = now + timedelta(minutes=1)
    assert plan(later, built) == [(b, False) for b in sorted(open_boards(now))]


def test_plan_keeps_a_closed_period_live_during_the_grace_then_finalizes_once():
    yesterday = Board("daily", WED - timedelta(days=1))
    early = utc(WED, 6)  # yesterday closed 6 hours ago: still live (late time zones)
    assert (yesterday, False) in plan(early, {})
    known = {yesterday: BuildInfo(early, 3, False)}
    assert (yesterday, False) in plan(early + timedelta(minutes=5), known)
    assert (yesterday, True) in plan(utc(WED, 12), known)
    known = {yesterday: BuildInfo(utc(WED, 12), 3, True)}
    assert all(b != yesterday for b, _ in plan(utc(WED, 18), known))
    assert all(b != yesterday for b, _ in plan(utc(WED, 18), known, grace=0))
    # a board left unfinished long ago (the worker was down) is finalized when seen
    stale = Board("daily", WED - timedelta(days=9))
    assert (stale, True) in plan(utc(WED, 1), {stale: BuildInfo(utc(WED, 1), 1, False)})
    # all time never closes
    assert (Board("all_time", date(1970, 1, 1)), True) not in plan(utc(WED, 13), {})


async def test_the_job_rebuilds_when_due_and_never_touches_a_final_board(app, client, engine):
    me = await walker(client, engine, "Late Syncer")
    yesterday = today() - timedelta(days=1)
    await set_days(engine, me["id"], {yesterday: 5000, today(): 100})
    database = app.state.database
    first = await service.rebuild_if_due(database, now=utc(today(), 6))
    assert first is not None
    live = await board(client, me["token"], period_start=yesterday.isoformat())
    assert live["final"] is False and live["me"]["total_steps"] == 5000
    assert await service.rebuild_if_due(database, now=utc(today(), 6)) is None  # not due
    await set_days(engine, me["id"], {yesterday: 7000})  # a late sync within the grace
    await service.rebuild_if_due(database, now=utc(today(), 12, 1))
    final = await board(client, me["token"], period_start=yesterday.isoformat())
    assert final["final"] is True and final["me"]["total_steps"] == 7000
    await set_days(engine, me["id"], {yesterday: 9000})  # after the snapshot: not counted
    await service.rebuild_if_due(database, now=utc(today(), 23))
    async with session_scope(database) as session:  # even a forced rebuild leaves it alone
        await service.rebuild(session, [(Board("daily", yesterday), True)])
    kept = await board(client, me["token"], period_start=yesterday.isoformat())
    assert kept == final
    assert (await board(client, me["token"]))["me"]["total_steps"] == 100


async def test_old_snapshots_are_pruned(app, client, engine):
    me = await walker(client, engine, "Old Timer")
    old_day = today() - timedelta(days=60)
    await set_days(engine, me["id"], {old_day: 5000})
    async with session_scope(app.state.database) as session:
        await service.rebuild(session, [(Board("daily", old_day), True)])
    assert (await board(client, me["token"], period_start=old_day.isoformat()))["final"]
    await service.rebuild_if_due(app.state.database)
    await board(client, me["token"], period_start=old_day.isoformat(), status=404)


async def test_a_reader_during_a_rebuild_sees_the_old_board_then_the_new(app, client, engine):
    a = await walker(client, engine, "Anna A", 3000)
    b = await walker(client, engine, "Bert B", 2000)
    c = await walker(client, engine, "Cleo C", 1000)
    await rebuild(app)
    old = await board(client, b["token"])
    await set_days(engine, c["id"], {today(): 5000})
    await set_days(engine, a["id"], {today(): 0})
    d = await walker(client, engine, "Dora D", 4000)
    async with session_scope(app.state.database) as session:
        await service.rebuild_open(session)
        # rebuilt but not committed: every reader still sees the whole old board
        assert await board(client, b["token"]) == old
    new = await board(client, b["token"])
    assert ranks(new) == [(1, "Cleo C.", 5000), (2, "Dora D.", 4000), (3, "Bert B.", 2000)]
    assert new["me"] == {"rank": 3, "total_steps": 2000}
    assert new["computed_at"] > old["computed_at"]
    assert d["id"] in {e["user_id"] for e in new["entries"]}


async def test_concurrent_readers_never_see_a_half_built_board(app, client, engine):
    walkers = [await walker(client, engine, f"Walker {i}", 1000 + i) for i in range(30)]
    await rebuild(app)
    reader = walkers[10]
    seen = {_shape(await board(client, reader["token"]))}
    expected = set(seen)
    for round_ in range(4):  # reverse the order each round: every rank and total moves
        for i, w in enumerate(walkers):
            steps = 1000 + (i if round_ % 2 else 100 - i)
            await set_days(engine, w["id"], {today(): steps})
        stop = asyncio.Event()

        async def read_until_stopped(stop: asyncio.Event) -> None:
            while not stop.is_set():
                seen.add(_shape(await board(client, reader["token"])))
                await asyncio.sleep(0)

        readers = [asyncio.create_task(read_until_stopped(stop)) for _ in range(3)]
        await rebuild(app)
        stop.set()
        await asyncio.gather(*readers)
        expected.add(_shape(await board(client, reader["token"])))
    assert seen <= expected  # every read was a whole board: an old one or a new one


def _shape(body):
    return (
        tuple((e["rank"], e["user_id"], e["total_steps"]) for e in body["entries"]),
        None if body["me"] is None else tuple(body["me"].values()),
        tuple((n["rank"], n["user_id"]) for n in body["neighbours"]),
        body["computed_at"],
    )


async def test_the_read_is_index_scans_only(app, client, engine):
    me = await walker(client, engine, "Plan Reader", 100)
    await walker(client, engine, "Plan Other", 100)
    await rebuild(app)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        async with driver.transaction():
            await driver.execute("SET LOCAL enable_seqscan = off")
            rows = await driver.fetch(
                "EXPLAIN " + read_board_sql(100), "daily", today(), uuid.UUID(me["id"])
            )
    plan_lines = [r[0] for r in rows]
    scans = [line for line in plan_lines if " on leaderboard_cache" in line]
    # me, top, two ranges on each side, the walkers above the window's first total within its
    # bucket and that total's ties before it
    assert len(scans) == 8
    # an index scan, an index-only scan or a bitmap heap scan driven by an index (the planner
    # picks among them by the statistics of the moment): never a sequential scan of the board
    assert all(
        any(kind in line for kind in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"))
        for line in scans
    ), plan_lines
    counted = [line for line in plan_lines if " on leaderboard_rank_counts" in line]
    assert counted and all("Index" in line for line in counted), plan_lines
    # which index each scan takes is the planner's choice at two walkers (statistics of the
    # moment: PostgreSQL 18 took the primary key for every one in a full embedded run); that
    # the ranges keep to the board-order index is the next test's, on a board of 3,000


async def test_the_caller_part_keeps_to_the_board_order_index_in_a_generic_plan(
    app, client, engine
):
    """The walkers above a total within its bucket: a short range of the board-order index,
    never the primary key filtered over the whole board (a generic plan with the board's rows
    estimated at one took it: 10 ms a read at 2,000 walkers)."""
    # the table as a fresh database has it, whatever the run's earlier tests left: their rows
    # are deleted by the clean-up but their pages and statistics stay (statistics that said
    # "empty" over many pages made every estimate one row, a tie this check cannot judge; a
    # VACUUM alone left pages that some orders of the run's tests made such a tie: CI, once)
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE leaderboard_cache"))
    me = await walker(client, engine, "Generic Reader", 100)
    await walker(client, engine, "Generic Other", 300)
    await rebuild(app)
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE leaderboard_cache"))
    async with engine.begin() as conn:  # a board of 3,000 walkers, never analyzed
        await conn.execute(
            text(
                "INSERT INTO users (email, full_name) SELECT 'g' || i || '@example.com', 'G' "
                "FROM generate_series(1, 3000) i"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO leaderboard_cache (period, period_start, user_id, total_steps) "
                "SELECT 'daily', :day, id, 1 + abs(hashtext(email)) % 20000 FROM users "
                "WHERE email LIKE 'g%@example.com'"
            ),
            {"day": today()},
        )
    for statement in (repository.READ_MINE, read_board_sql(100)):
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            async with driver.transaction():
                await driver.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                await driver.execute(f"PREPARE generic_read(varchar, date, uuid) AS {statement}")
                try:
                    rows = await driver.fetch(
                        f"EXPLAIN EXECUTE generic_read('daily', '{today()}', '{me['id']}')"
                    )
                finally:
                    await driver.execute("DEALLOCATE generic_read")
        lines = [r[0] for r in rows]
        # the bucket's range and the ties' as index conditions, never a filter over a scan of
        # the board
        filtered = [
            line
            for line in lines
            if "Filter:" in line and any(f"total_steps {op}" in line for op in "<>=")
        ]
        assert filtered == [], "\n".join(lines)
        assert any("ix_leaderboard_cache_board_order" in line for line in lines), "\n".join(lines)


def test_plan_counts_the_safety_net_from_the_last_full_build():
    """Every refresh moves computed_at: the interval counts from rebuilt_at."""
    now = utc(WED, 13)
    refreshed = now - timedelta(seconds=15)
    built = {
        b: BuildInfo(refreshed, 10, False, rebuilt_at=now - timedelta(minutes=4))
        for b in open_boards(now)
    }
    built |= {b: BuildInfo(now, 10, True) for b in previous_boards(now)}
    assert plan(now, built) == []
    assert plan(now + timedelta(minutes=1), built) == [(b, False) for b in sorted(open_boards(now))]


async def test_refreshes_do_not_hold_the_safety_net_back(app, client, engine):
    me = await walker(client, engine, "Safety Net", 100)
    database = app.state.database
    assert await service.rebuild_if_due(database) is not None  # the first build
    async with engine.connect() as conn:
        before = {
            (r.period, r.period_start): (r.computed_at, r.rebuilt_at)
            for r in await conn.execute(text("SELECT * FROM leaderboard_builds"))
        }
    assert all(rebuilt is not None and rebuilt <= at for at, rebuilt in before.values())
    await set_days(engine, me["id"], {today(): 200})
    await service.refresh_live(database)
    async with engine.connect() as conn:
        after = {
            (r.period, r.period_start): (r.computed_at, r.rebuilt_at)
            for r in await conn.execute(text("SELECT * FROM leaderboard_builds"))
        }
    live = {(b.period, b.start) for b in open_boards()}
    for board_key, (at, rebuilt) in after.items():
        assert rebuilt == before[board_key][1]
        assert at > before[board_key][0] or board_key not in live  # final snapshots stay
    due = max(rebuilt for _, rebuilt in after.values()) + timedelta(days=1, seconds=1)
    stats = await service.rebuild_if_due(database, now=due)
    assert stats is not None and stats.boards >= 1


async def test_a_rebuild_that_writes_many_rows_refreshes_the_boards_statistics(app, engine):
    """A new period's board written at once is analyzed in the same rebuild: the planner does
    not wait for autovacuum to learn that the board is no longer empty."""
    async with engine.connect() as conn:  # statistics that say "empty", as after a clean-up
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE leaderboard_cache"))
    walkers = repository.ANALYZE_AFTER_ROWS + 200
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "WITH u AS (INSERT INTO users (email, full_name) SELECT 's' || i || "
                "'@example.com', 'S' FROM generate_series(1, :n) i RETURNING id) "
                "INSERT INTO step_days (user_id, recorded_date, credited_source, credited_steps) "
                "SELECT id, :day, 'healthkit', 5000 FROM u"
            ),
            {"n": walkers, "day": today()},
        )
    await rebuild(app)
    async with engine.connect() as conn:
        estimated = (
            await conn.execute(
                text("SELECT reltuples FROM pg_class WHERE relname = 'leaderboard_cache'")
            )
        ).scalar_one()
    assert estimated >= walkers  # the open boards hold each walker at least once


async def test_the_walkers_above_are_counted_per_board_along_its_key(app, client, engine):
    """A refresh recounts `walkers_above` 8 times a minute, changes or not: per board one
    backward range of the counts' primary key feeding the window (its order: no sort over the
    boards' text keys), and no look-up of a bucket whose figure did not move."""
    await walker(client, engine, "Counts Reader", 100)
    await walker(client, engine, "Counts Other", 300)
    await rebuild(app)
    boards = sorted(open_boards())
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        async with driver.transaction():
            await driver.execute("SET LOCAL enable_seqscan = off")
            sql = str(repository._RANK_ABOVE).replace(":periods", "$1").replace(":starts", "$2")
            rows = await driver.fetch(
                "EXPLAIN (ANALYZE, COSTS OFF) " + sql,
                [b.period for b in boards],
                [b.start for b in boards],
            )
            moved = await driver.fetchval(
                "SELECT count(*) FROM leaderboard_rank_counts WHERE walkers_above <> 0"
            )
    plan_lines = [r[0] for r in rows]
    assert not any("Sort" in line for line in plan_lines), plan_lines
    assert any(
        "Index Scan Backward using pk_leaderboard_rank_counts" in line for line in plan_lines
    ), plan_lines
    # the rebuild counted them (on each open board, one walker above the other's bucket), so
    # nothing moved and nothing was written
    assert moved == len(boards)
    assert any(
        "Update on leaderboard_rank_counts" in line and "rows=0" in line for line in plan_lines
    )

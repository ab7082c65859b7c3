"""Live boards (issue 13): a sync shows after one refresh, a refresh touches only the walkers
whose days changed, and a refresh always leaves the boards exactly as a full rebuild would."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from stepcoin.db import session_scope
from stepcoin.leaderboards import repository, service
from stepcoin.leaderboards.periods import Board, open_boards, previous_boards
from tests.achievements.helpers import set_days
from tests.leaderboards.helpers import board, rebuild, walker
from tests.steps.helpers import rec, sync, today


async def refresh(app) -> repository.RefreshStats:
    async with session_scope(app.state.database) as session:
        return await service.refresh(session)


async def test_a_sync_shows_in_the_boards_after_one_refresh(app, client, engine):
    me = await walker(client, engine, "Fresh Walker")
    other = await walker(client, engine, "Other Walker", 3000)
    await rebuild(app)
    assert (await board(client, me["token"]))["me"] is None
    await sync(client, me["token"], rec(0, 5000))  # the real step sync, through the API
    before = await board(client, me["token"])
    assert before["me"] is None  # not yet: the boards change at the refresh
    stats = await refresh(app)
    assert stats.walkers == 1 and stats.inserted == 4  # daily, weekly, monthly, all time
    for period in ("daily", "weekly", "monthly", "all_time"):
        body = await board(client, me["token"], period)
        assert body["me"] == {"rank": 1, "total_steps": 5000}, period
        assert [e["user_id"] for e in body["entries"]] == [me["id"], other["id"]]
        assert body["computed_at"] > before["computed_at"]
    # a later sync of the same day moves the walker, again after one refresh
    await sync(client, me["token"], rec(0, 2000))
    await refresh(app)
    body = await board(client, me["token"])
    assert body["me"] == {"rank": 2, "total_steps": 2000}
    assert (await board(client, other["token"]))["me"] == {"rank": 1, "total_steps": 3000}


async def test_a_refresh_writes_only_the_walkers_whose_days_changed(app, client, engine):
    walkers = [await walker(client, engine, f"Walker {i}", 1000 + 100 * i) for i in range(12)]
    await rebuild(app)
    nothing = await refresh(app)  # the build took the log of the days set up before it
    assert (nothing.changes, nothing.recomputed) == (0, 0)
    async with engine.connect() as conn:
        before = dict(
            (await conn.execute(text("SELECT user_id, computed_at FROM leaderboard_cache"))).all()
        )
    # the lowest walker passes everyone: a stored rank would move for all twelve
    await set_days(engine, walkers[0]["id"], {today(): 9000})
    await set_days(engine, walkers[5]["id"], {today(): 1501})
    stats = await refresh(app)
    assert stats.walkers == 2
    assert stats.recomputed == 8  # two walkers x four live boards
    assert (stats.inserted, stats.updated, stats.deleted) == (0, 8, 0)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT user_id, computed_at FROM leaderboard_cache"))
        ).all()
    rewritten = {str(u) for u, at in rows if at != before[u]}
    assert rewritten == {walkers[0]["id"], walkers[5]["id"]}
    body = await board(client, walkers[11]["token"])
    assert body["me"] == {"rank": 2, "total_steps": 2100}
    assert body["entries"][0]["user_id"] == walkers[0]["id"]


async def test_only_a_change_of_credited_steps_is_logged(app, client, engine):
    me = await walker(client, engine, "Logged Walker", 1000)
    await rebuild(app)
    await refresh(app)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE step_days SET coins_paid = 7, version = version + 1 WHERE user_id = :u"),
            {"u": me["id"]},
        )
        await conn.execute(
            text("UPDATE users SET full_name = 'Renamed Walker' WHERE id = :u"), {"u": me["id"]}
        )
        logged = (await conn.execute(text("SELECT count(*) FROM leaderboard_dirty"))).scalar()
    assert logged == 0
    await set_days(engine, me["id"], {today(): 1000})  # the same count again: nothing moved
    await set_days(engine, me["id"], {today(): 1200})
    async with engine.connect() as conn:
        logged = (await conn.execute(text("SELECT count(*) FROM leaderboard_dirty"))).scalar()
    assert logged == 1


async def test_a_deactivated_walker_leaves_at_the_next_refresh_and_comes_back(app, client, engine):
    me = await walker(client, engine, "Leaving Walker", 5000)
    other = await walker(client, engine, "Staying Walker", 1000)
    await rebuild(app)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET is_active = false WHERE id = :u"), {"u": me["id"]}
        )
    stats = await refresh(app)
    assert stats.deleted == 4
    body = await board(client, other["token"])
    assert [e["user_id"] for e in body["entries"]] == [other["id"]]
    assert body["me"] == {"rank": 1, "total_steps": 1000}
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE users SET is_active = true WHERE id = :u"), {"u": me["id"]})
    await refresh(app)
    assert (await board(client, other["token"]))["me"] == {"rank": 2, "total_steps": 1000}


async def test_the_job_builds_new_boards_then_refreshes_the_live_ones(app, client, engine):
    me = await walker(client, engine, "Job Walker", 4000)
    database = app.state.database
    assert await service.rebuild_if_due(database) is not None  # first run: full builds
    assert await service.rebuild_if_due(database) is None  # then no full build is due
    await set_days(engine, me["id"], {today(): 6000})
    stats = await service.refresh_live(database)
    async with engine.connect() as conn:
        live = (
            await conn.execute(text("SELECT count(*) FROM leaderboard_builds WHERE NOT is_final"))
        ).scalar()
    assert stats.boards == live >= 4  # the open boards (and closed ones still in their grace)
    assert (await board(client, me["token"]))["me"] == {"rank": 1, "total_steps": 6000}


# --- the differential test: refresh == full rebuild -------------------------------------------

WALKERS = 6
# days around today: tomorrow (a walker ahead of UTC), today, this and last week, last month
OFFSETS = (-1, 0, 1, 2, 6, 9, 20, 35, 50)
# few distinct totals, so that ties happen; bucket edges (999/1000, 9990..10009, 99999/100000)
STEPS = st.one_of(
    st.sampled_from([0, 0, 500, 999, 1000, 1001, 9999, 10000, 10005, 99999, 100000]),
    st.integers(min_value=0, max_value=60000),
)
OPS = st.one_of(
    st.tuples(st.just("day"), st.integers(0, WALKERS - 1), st.sampled_from(OFFSETS), STEPS),
    st.tuples(st.just("forget"), st.integers(0, WALKERS - 1), st.sampled_from(OFFSETS)),
    st.tuples(st.just("active"), st.integers(0, WALKERS - 1), st.booleans()),
    st.tuples(st.just("delete"), st.integers(0, WALKERS - 1)),
    # a full rebuild of one live board between refreshes (its rows jump to the build's
    # snapshot while the log still holds changes the build has already counted)
    st.tuples(st.just("rebuild"), st.integers(0, 6)),
)


def _live_plan() -> list[tuple[Board, bool]]:
    return [(b, False) for b in open_boards()] + [(b, False) for b in previous_boards()]


async def _apply(engine, walkers: list[str], op: tuple[Any, ...]) -> None:
    kind, who = op[0], walkers[op[1]]
    async with engine.begin() as conn:
        if kind == "day":
            await conn.execute(
                text(
                    "INSERT INTO step_days (user_id, recorded_date, credited_source, "
                    "credited_steps) SELECT :u, :d, 'healthkit', :s WHERE EXISTS "
                    "(SELECT 1 FROM users WHERE id = :u) ON CONFLICT (user_id, recorded_date) "
                    "DO UPDATE SET credited_steps = EXCLUDED.credited_steps"
                ),
                {"u": who, "d": today() - timedelta(days=op[2]), "s": op[3]},
            )
        elif kind == "forget":
            await conn.execute(
                text("DELETE FROM step_days WHERE user_id = :u AND recorded_date = :d"),
                {"u": who, "d": today() - timedelta(days=op[2])},
            )
        elif kind == "active":
            await conn.execute(
                text("UPDATE users SET is_active = :a WHERE id = :u"), {"u": who, "a": op[2]}
            )
        else:
            await conn.execute(text("DELETE FROM users WHERE id = :u"), {"u": who})


async def _expected_ranks(engine) -> dict[tuple[str, Any, str], tuple[int, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT period, period_start, user_id, total_steps, CAST(rank() OVER "
                "(PARTITION BY period, period_start ORDER BY total_steps DESC) AS integer) "
                "FROM leaderboard_cache"
            )
        )
        return {(p, s, str(u)): (r, t) for p, s, u, t, r in rows}


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rounds=st.lists(st.lists(OPS, min_size=1, max_size=8), min_size=1, max_size=3))
async def test_a_refresh_leaves_the_boards_exactly_as_a_full_rebuild(app, engine, rounds):
    database = app.state.database
    walkers = [str(uuid.uuid4()) for _ in range(WALKERS)]
    async with engine.begin() as conn:  # examples share the boards: earlier walkers stay on
        for i, who in enumerate(walkers):
            await conn.execute(
                text("INSERT INTO users (id, email, full_name) VALUES (:u, :e, :n)"),
                {"u": who, "e": f"{who}@example.com", "n": f"Diff Walker{i}"},
            )
    async with session_scope(database) as session:
        await repository.rebuild(session, _live_plan())
    for batch in rounds:
        for op in batch:
            if op[0] == "rebuild":
                async with session_scope(database) as session:
                    await repository.rebuild(session, [_live_plan()[op[1]]])
            else:
                await _apply(engine, walkers, op)
        async with session_scope(database) as session:
            await repository.refresh(session)
    # 1. the rank buckets equal the rows they count, and every build counts its entries
    async with engine.connect() as conn:
        drift = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT period, period_start, "
                    "stepcoin_board_bucket(total_steps) AS bucket, count(*) AS walkers "
                    "FROM leaderboard_cache GROUP BY 1, 2, 3) c "
                    "FULL JOIN leaderboard_rank_counts k USING (period, period_start, bucket) "
                    "WHERE c.walkers IS DISTINCT FROM k.walkers OR k.walkers_above <> "
                    "coalesce((SELECT sum(a.walkers) FROM leaderboard_rank_counts a "
                    "WHERE a.period = k.period AND a.period_start = k.period_start "
                    "AND a.bucket > k.bucket), 0)"
                )
            )
        ).scalar()
        assert drift == 0
    # 2. every rank the read answers (me, top, neighbours) is RANK() over the board
    expected = await _expected_ranks(engine)
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        for b, _ in _live_plan():
            for who in walkers:
                rows = await repository.read_board(driver, b.period, b.start, uuid.UUID(who), 3)
                for row in rows:
                    if row["part"] == "me" and row["total_steps"] is not None:
                        assert (row["rank"], row["total_steps"]) == expected[
                            (b.period, b.start, who)
                        ]
                    elif row["part"] in ("top", "above", "below"):
                        key = (b.period, b.start, str(row["user_id"]))
                        assert (row["rank"], row["total_steps"]) == expected[key]
    # 3. and a full rebuild of the same boards finds nothing to change
    async with session_scope(database) as session:
        full = await repository.rebuild(session, _live_plan())
    assert full is not None
    assert (full.inserted, full.updated, full.deleted) == (0, 0, 0)


def test_the_job_runs_8_times_a_minute_6_to_9_seconds_apart():
    from datetime import UTC, datetime
    from itertools import pairwise

    from croniter import croniter

    from stepcoin.leaderboards.tasks import blueprint

    task = blueprint.periodic_registry.periodic_tasks["rebuild_if_due", "rebuild"]
    ticks = croniter(task.cron, datetime(2026, 12, 3, 18, 0, 7, tzinfo=UTC))
    runs = [ticks.get_next(datetime) for _ in range(9)]
    assert [t.second for t in runs] == [16, 23, 31, 37, 46, 55, 1, 7, 16]  # off the 3 s grid
    assert {(b - a).total_seconds() for a, b in pairwise(runs)} == {6, 7, 8, 9}


def test_the_refresh_jumps_a_backlog_of_other_jobs():
    """A backlog of order submissions held the boards still for over a minute in a benchmark
    run: the refresh is taken ahead of waiting jobs of default priority."""
    from stepcoin.worker import build_job_app

    app = build_job_app()
    task = app.tasks["leaderboards:rebuild_if_due"]
    job = task.configure().job
    assert task.priority > 0 and job.priority == task.priority and job.queueing_lock


async def test_refreshes_racing_syncs_lose_no_change(app, client, engine):
    """Syncs commit while refreshes drain the log: every change is counted exactly once."""
    import asyncio
    import random

    walkers = [await walker(client, engine, f"Racer {i}", 100 * i) for i in range(6)]
    database = app.state.database
    async with session_scope(database) as session:
        await repository.rebuild(session, _live_plan())
    rng = random.Random(13)
    stop = asyncio.Event()

    async def syncing() -> None:
        for _ in range(60):
            who = rng.choice(walkers)["id"]
            await set_days(
                engine,
                who,
                {today() - timedelta(days=rng.choice([0, 1, 3])): rng.randint(0, 20000)},
            )
            await asyncio.sleep(0)
        stop.set()

    async def refreshing() -> int:
        rounds = 0
        while not stop.is_set():
            async with session_scope(database) as session:
                await repository.refresh(session)
            rounds += 1
            await asyncio.sleep(0)
        return rounds

    _, _, rounds = await asyncio.gather(syncing(), syncing(), refreshing())
    assert rounds > 1
    async with session_scope(database) as session:
        await repository.refresh(session)
    async with session_scope(database) as session:
        full = await repository.rebuild(session, _live_plan())
    assert full is not None
    assert (full.inserted, full.updated, full.deleted) == (0, 0, 0)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(totals=st.lists(st.sampled_from([1, 2, 3, 999, 1000, 1001, 5000]), min_size=1, max_size=14))
async def test_every_rank_of_a_board_of_ties_is_its_rank(app, engine, totals):
    """A board of few distinct totals (ties everywhere, bucket edges): for every walker the
    read's own, top and neighbour ranks are RANK() over the board, in both reads (the caller's
    part, and the whole answer in one statement)."""
    walkers = [str(uuid.uuid4()) for _ in totals]
    async with engine.begin() as conn:  # examples share the board: earlier walkers stay on it
        for who, steps in zip(walkers, totals, strict=True):
            await conn.execute(
                text("INSERT INTO users (id, email, full_name) VALUES (:u, :e, 'Tie Walker')"),
                {"u": who, "e": f"{who}@example.com"},
            )
            await conn.execute(
                text(
                    "INSERT INTO step_days (user_id, recorded_date, credited_source, "
                    "credited_steps) VALUES (:u, :d, 'healthkit', :s)"
                ),
                {"u": who, "d": today(), "s": steps},
            )
    daily = next(b for b, _ in _live_plan() if b.period == "daily" and b.start == today())
    async with session_scope(app.state.database) as session:
        await repository.rebuild(session, [(daily, False)])
    expected = await _expected_ranks(engine)
    board_order = sorted(
        (who for (period, start, who) in expected if (period, start) == ("daily", today())),
        key=lambda who: (-expected[("daily", today(), who)][1], who),
    )
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        for who in walkers:
            at = board_order.index(who)
            window = set(board_order[max(at - 2, 0) : at] + board_order[at + 1 : at + 3])
            for rows in (
                await repository.read_mine(driver, "daily", today(), uuid.UUID(who)),
                await repository.read_board(driver, "daily", today(), uuid.UUID(who), 5),
            ):
                seen = {row["part"] for row in rows}
                for row in rows:
                    if row["part"] == "me":
                        assert (row["rank"], row["total_steps"]) == expected[
                            ("daily", today(), who)
                        ]
                    elif row["part"] in ("top", "above", "below"):
                        key = ("daily", today(), str(row["user_id"]))
                        assert (row["rank"], row["total_steps"]) == expected[key], row
                # the neighbours are the two entries before and the two after, in board order
                near = {str(r["user_id"]) for r in rows if r["part"] in ("above", "below")}
                assert near == window
                assert "me" in seen

"""The walkers' closed history summarised for the achievements (issue 13, migration 0048): one
fold whether seeded or not; the summary dropped in the transaction that changes a day it holds,
and only then; a builder that read before a change never writes over it; a reader whose
summary lacks a threshold reads every day; the periodic task."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from stepcoin.achievements import history, repository, service
from stepcoin.achievements.facts import NO_DAY, Fold, fold
from stepcoin.db import session_scope
from tests.achievements.helpers import achievement, set_days
from tests.conftest import register
from tests.fixtures.plans import plan_of

calendars = st.dictionaries(
    st.integers(min_value=0, max_value=60),
    st.sampled_from([1, 50, 99, 100, 101, 500, 5000, 12000]),
    max_size=45,
)


@given(
    days=calendars,
    cut=st.integers(min_value=-1, max_value=61),
    thresholds=st.sets(st.sampled_from([1, 100, 101, 500, 5000, 20000]), max_size=4),
)
def test_a_seeded_fold_is_the_fold_of_the_whole_history(days, cut, thresholds):
    ordered = sorted(days.items())
    whole = fold([d for d, _ in ordered], [s for _, s in ordered], sorted(thresholds))
    before = [(d, s) for d, s in ordered if d <= cut]
    after = [(d, s) for d, s in ordered if d > cut]
    seed = fold([d for d, _ in before], [s for _, s in before], sorted(thresholds))
    assert fold([d for d, _ in after], [s for _, s in after], sorted(thresholds), seed) == whole
    assert whole.approved_days == len(days) and whole.total_steps == sum(days.values())


def test_a_fold_without_days_holds_no_run():
    assert fold([], [], [100]) == Fold(0, 0, 0, {100: (0, 0, NO_DAY)})


def utc_today() -> date:
    return datetime.now(UTC).date()


async def _row(engine, user: str) -> dict | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT generation, through FROM achievement_history WHERE user_id = :u"),
                {"u": user},
            )
        ).first()
    return None if row is None else {"generation": row.generation, "through": row.through}


async def _walker(client, engine) -> str:
    user = (await register(client))["user"]["id"]
    start = utc_today() - timedelta(days=40)
    await set_days(engine, user, {start + timedelta(days=k): 6000 for k in range(41)})
    return user


async def test_a_change_of_a_summarised_day_drops_the_summary_in_its_transaction(
    app, client, engine
):
    await achievement(engine, "week", {"kind": "streak", "streak_days": 7, "min_steps": 5000})
    user = await _walker(client, engine)
    built = await history.build(app.state.database)
    assert built.walkers >= 1
    summary = await _row(engine, user)
    assert summary is not None and summary["through"] == utc_today() - timedelta(days=10)
    generation = summary["generation"]

    # the sync's own days (9 days back and later) never call the trigger
    await set_days(engine, user, {utc_today() - timedelta(days=k): 7000 for k in range(10)})
    assert await _row(engine, user) == summary

    # a day after `through` but 10 or more days back: the generation moves, the summary stays
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE achievement_history SET through = through - 5 WHERE user_id = :u"),
            {"u": user},
        )
    await set_days(engine, user, {utc_today() - timedelta(days=12): 100})
    moved = await _row(engine, user)
    assert moved == {"generation": generation + 1, "through": summary["through"] - timedelta(5)}

    # a day the summary holds: dropped, and a rollback keeps it
    day = utc_today() - timedelta(days=30)
    async with engine.connect() as conn:
        transaction = await conn.begin()
        await conn.execute(
            text(
                "UPDATE step_days SET credited_steps = 9 WHERE user_id = :u AND recorded_date = :d"
            ),
            {"u": user, "d": day},
        )
        row = (
            await conn.execute(
                text("SELECT through FROM achievement_history WHERE user_id = :u"), {"u": user}
            )
        ).scalar_one()
        assert row is None  # in the changing transaction itself
        await transaction.rollback()
    assert await _row(engine, user) == moved
    async with engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM step_days WHERE user_id = :u AND recorded_date = :d"),
            {"u": user, "d": day},
        )
    assert await _row(engine, user) == {"generation": generation + 2, "through": None}


async def test_the_reads_after_a_change_and_a_rebuild_equal_the_whole_history(app, client, engine):
    await achievement(engine, "week", {"kind": "streak", "streak_days": 7, "min_steps": 5000})
    await achievement(engine, "total", {"kind": "total_steps", "total_steps": 10**6})
    await achievement(engine, "best", {"kind": "single_day_steps", "min_steps": 50000})
    user = await _walker(client, engine)
    await history.build(app.state.database)
    await set_days(engine, user, {utc_today() - timedelta(days=20): 40000})  # drops it
    await history.build(app.state.database)
    assert (await _row(engine, user))["through"] is not None
    seeded = await _items(app, user)
    await _drop_summaries(engine)
    assert await _items(app, user) == seeded
    by_code = {item["code"]: item["progress"] for item in seeded}
    assert by_code["total"]["current"] == 40 * 6000 + 40000
    assert by_code["best"]["current"] == 40000
    assert by_code["week"]["current"] == 7  # the run goes on through today (capped at 7)


async def _items(app, user: str) -> list:
    async with (await app.state.database.fast_pool()).acquire() as driver:
        return await service.my_achievements(driver, uuid.UUID(user))


async def _drop_summaries(engine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM achievement_history"))


async def test_a_builder_that_read_before_a_change_writes_nothing(app, client, engine):
    await achievement(engine, "week", {"kind": "streak", "streak_days": 7, "min_steps": 5000})
    user = await _walker(client, engine)
    target = history.summary_target(utc_today(), 7)
    rows = await _candidates(app, stale_days=0)
    [row] = [r for r in rows if str(r["id"]) == user]
    read = fold(row["days"], row["steps"], [5000])
    # a reviewer's late decision of an old day commits while the builder computes
    await set_days(engine, user, {utc_today() - timedelta(days=25): 100})
    async with session_scope(app.state.database) as session:
        written = await repository.write_history(
            session, target, [5000], [(row["id"], row["generation"], read)]
        )
    assert written == 0
    assert (await _row(engine, user))["through"] is None
    # the next run reads the change and writes
    assert (await history.build(app.state.database)).walkers >= 1
    assert (await _row(engine, user))["through"] == target


async def test_a_summary_without_a_new_threshold_is_not_used(app, client, engine):
    await achievement(engine, "week", {"kind": "streak", "streak_days": 7, "min_steps": 5000})
    user = await _walker(client, engine)
    await history.build(app.state.database)
    # an achievement with a threshold the summaries do not hold: every day is read
    await achievement(engine, "fortnight", {"kind": "streak", "streak_days": 14, "min_steps": 6000})
    seeded = await _items(app, user)
    by_code = {item["code"]: item["progress"] for item in seeded}
    assert by_code["fortnight"] == {"current": 14, "target": 14}
    async with session_scope(app.state.database) as session:
        facts = await repository.user_facts(session, [uuid.UUID(user)], [6000])
    assert facts[uuid.UUID(user)].streaks[6000].longest == 41
    await _drop_summaries(engine)
    assert await _items(app, user) == seeded
    # the next run covers the new threshold
    await history.build(app.state.database)
    async with engine.connect() as conn:
        held = (
            await conn.execute(
                text("SELECT thresholds FROM achievement_history WHERE user_id = :u"), {"u": user}
            )
        ).scalar_one()
    assert held == [5000, 6000]


async def test_a_summary_is_carried_forward_a_week_later(app, client, engine):
    await achievement(engine, "week", {"kind": "streak", "streak_days": 7, "min_steps": 5000})
    user = await _walker(client, engine)
    first = await history.build(app.state.database, today=utc_today() - timedelta(days=8))
    assert first.walkers >= 1
    assert (await history.build(app.state.database, today=utc_today() - timedelta(days=3))) == (
        history.Built(0, 0)
    )  # less than a week behind: nothing due
    await history.build(app.state.database)  # 8 days later: carried forward from the seed
    assert (await _row(engine, user))["through"] == utc_today() - timedelta(days=10)
    seeded = await _items(app, user)
    await _drop_summaries(engine)
    assert await _items(app, user) == seeded


def test_the_task_runs_every_five_minutes():
    from stepcoin.worker import build_job_app

    app = build_job_app()
    task = app.tasks["achievements:summarise_history"]
    assert task.configure().job.queueing_lock
    crons = [p.cron for p in app.periodic_registry.periodic_tasks.values() if p.task is task]
    assert crons == ["*/5 * * * * 53"]  # at a second of its own (tests/test_jobs.py)


async def test_the_trigger_and_the_builder_agree_on_the_closed_days(engine):
    """The triggers' WHEN (10 days back, UTC) is history.CLOSED_AFTER_DAYS: a summary never
    holds a day whose change would not call the trigger."""
    async with engine.connect() as conn:
        definitions = (
            await conn.execute(
                text(
                    "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
                    "WHERE tgname LIKE 'achievement_history_day_%'"
                )
            )
        ).scalars()
        found = list(definitions)
    assert len(found) == 3
    for definition in found:
        assert f"- {history.CLOSED_AFTER_DAYS})" in definition, definition
    assert history.summary_target(date(2026, 1, 31), 7) == date(2026, 1, 21)
    assert history.summary_target(date(2026, 1, 31), 30) == date(2025, 12, 29)


async def _candidates(app, *, stale_days: int, full: bool = True) -> list:
    """The builder's next walkers, with a summary stale once `stale_days` behind the target."""
    target = history.summary_target(utc_today(), 7)
    async with session_scope(app.state.database) as session:
        return await repository.history_candidates(
            session,
            after=None,
            limit=100,
            target=target,
            stale_before=target - timedelta(days=stale_days),
            thresholds=[5000],
            full=full,
        )


async def _ids(app, *, full: bool) -> set[str]:
    rows = await _candidates(app, stale_days=history.ADVANCE_DAYS, full=full)
    return {str(r["id"]) for r in rows}


async def test_the_due_search_finds_dropped_and_behind_summaries_and_nothing_else(
    app, client, engine
):
    """Between full searches only the summaries that were dropped or fell a week behind are
    searched for (by index); a walker with no summary row yet waits for the full search."""
    await achievement(engine, "week", {"kind": "streak", "streak_days": 7, "min_steps": 5000})
    fresh, dropped, behind, new = [await _walker(client, engine) for _ in range(4)]
    assert (await history.build(app.state.database)).walkers >= 4
    assert await _ids(app, full=False) == set() == await _ids(app, full=True)
    await set_days(engine, dropped, {utc_today() - timedelta(days=20): 100})  # drops it
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE achievement_history SET through = through - 8 WHERE user_id = :u"),
            {"u": behind},
        )
        await conn.execute(text("DELETE FROM achievement_history WHERE user_id = :u"), {"u": new})
    assert await _ids(app, full=False) == {dropped, behind}
    assert await _ids(app, full=True) == {dropped, behind, new}
    assert fresh not in await _ids(app, full=True)
    # the due run summarises the two; the full one then the new walker
    due = await history.build(app.state.database, full=False)
    assert (due.walkers, due.complete) == (2, True)
    assert (await _row(engine, new)) is None
    assert (await history.build(app.state.database)).walkers == 1
    assert (await _row(engine, new))["through"] is not None


def test_the_full_search_runs_first_hourly_and_until_one_completes(monkeypatch):
    from stepcoin.achievements import tasks

    monkeypatch.setattr(tasks._Searches, "full_pending", True)
    hour = 1_796_605_200  # 2026-12-07 02:00 UTC
    assert hour % tasks.FULL_SEARCH_EVERY_S == 0
    assert tasks.full_search_due(hour + 5 * 60)  # a worker's first run searches everything
    tasks._Searches.full_pending = False  # ... and it completed
    assert not tasks.full_search_due(hour + 5 * 60)
    assert not tasks.full_search_due(hour + 55 * 60 + 53)
    assert tasks.full_search_due(hour + 53)  # the first run of each hour
    assert tasks.full_search_due(0)  # deferred by hand


async def test_a_full_search_stopped_at_its_batches_is_taken_up_by_the_next_run(
    app, client, engine, monkeypatch
):
    from stepcoin.achievements import tasks
    from stepcoin.queue import JobRuntime

    await achievement(engine, "week", {"kind": "streak", "streak_days": 7, "min_steps": 5000})
    for _ in range(3):
        await _walker(client, engine)
    JobRuntime.database = app.state.database
    monkeypatch.setattr(tasks, "HISTORY_MAX_BATCHES", 1)
    monkeypatch.setattr(history, "BATCH_SIZE", 2)
    monkeypatch.setattr(tasks._Searches, "full_pending", True)
    not_on_the_hour = 1_796_605_200 + 10 * 60
    first = await tasks.summarise_history(timestamp=not_on_the_hour)
    assert first["full"] == 1 and first["walkers"] == 2
    assert tasks._Searches.full_pending  # stopped at its one batch: the next run goes on
    second = await tasks.summarise_history(timestamp=not_on_the_hour + 300)
    assert second["full"] == 1 and second["walkers"] == 1
    assert not tasks._Searches.full_pending
    third = await tasks.summarise_history(timestamp=not_on_the_hour + 600)
    assert third == {"walkers": 0, "skipped": 0, "full": 0}


_NO_WALKER = "NOT EXISTS (SELECT 1 FROM users u WHERE u.id = h.user_id)"


async def test_the_batch_reads_each_walkers_summary_by_its_key_whatever_the_statistics(
    app, client, engine
):
    """Statistics taken while the summaries were dropped or not built (`through` NULL) made the
    planner expect one usable summary: it hashed every summary for a batch (by the index on
    `through`, which the facts read's `through IS NOT NULL` could take), 17-48 ms a batch at
    10,000 walkers. The read probes each walker's summary by primary key (a lateral), and the
    due search's index is on an expression no other query can take (migration 0055)."""
    await achievement(engine, "week", {"kind": "streak", "streak_days": 7, "min_steps": 5000})
    walkers = [await _walker(client, engine) for _ in range(3)]
    assert (await history.build(app.state.database)).walkers >= 3
    others = "SELECT gen_random_uuid() FROM generate_series(1, 3000)"  # no such walkers
    async with engine.begin() as conn:  # 3,000 dropped summaries, analysed so, then built
        await conn.execute(text(f"INSERT INTO achievement_history (user_id) {others}"))
        await conn.execute(text("ANALYZE achievement_history"))
        await conn.execute(
            text(
                "UPDATE achievement_history h SET through = current_date - 10, "
                f"thresholds = '{{5000}}' WHERE {_NO_WALKER}"
            )
        )
    try:
        async with engine.connect() as conn:
            facts = repository.FACTS_SQL.format(
                users="CAST(:users AS uuid[])", thresholds="ARRAY[5000]"
            )
            plan = await plan_of(conn, facts, {"users": walkers})
        assert "pk_achievement_history" in plan, plan
        assert "Seq Scan on achievement_history" not in plan, plan
        assert "ix_achievement_history" not in plan, plan
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DELETE FROM achievement_history h WHERE {_NO_WALKER}"))
            await conn.execute(text("ANALYZE achievement_history"))

"""Dirty marks instead of a job per sync (issue 13): a paid sync marks its user in its own
transaction; a batch claims marks, evaluates those users together, pays each unlock once and
deletes only the marks that no sync re-dirtied after the claim."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import text

from stepcoin.achievements import repository, service
from stepcoin.db import session_scope
from stepcoin.steps.payload import DayRow, SyncPayload
from tests.achievements.helpers import achievement, rewards, unlocked_codes
from tests.conftest import register
from tests.fixtures.plans import plan_of
from tests.steps.helpers import ledger_ok, rec, sync


async def marks(engine) -> dict[str, object]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT user_id::text, claimed_at FROM achievements_dirty"))
        return {r[0]: r[1] for r in rows}


async def test_an_unpaid_sync_marks_nobody(client, engine):
    me = await register(client)
    await sync(client, me["access_token"], rec(1, 0))
    assert await marks(engine) == {}


async def test_a_batch_evaluates_many_users_and_pays_each_once(client, app, engine):
    await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 30)
    await achievement(engine, "total", {"kind": "total_steps", "total_steps": 15000}, 5)
    users = [await register(client) for _ in range(3)]
    for i, me in enumerate(users):
        await sync(client, me["access_token"], rec(1, 9000 + 1000 * i))  # 9k, 10k, 11k
    assert set(await marks(engine)) == {me["user"]["id"] for me in users}
    batch = await service.evaluate_dirty(app.state.database, batch_size=2)  # two of three
    assert batch.users == 2
    assert len(await marks(engine)) == 1
    await service.evaluate_dirty(app.state.database, batch_size=2)
    assert await marks(engine) == {}
    assert [await unlocked_codes(engine, me["user"]["id"]) for me in users] == [
        set(),
        {"ten_k"},
        {"ten_k"},
    ]
    # a second sync re-marks; the batch pays the newly met total once, the old badge not again
    await sync(client, users[2]["access_token"], rec(2, 5000))
    assert (await service.evaluate_dirty(app.state.database)).users == 1
    assert await unlocked_codes(engine, users[2]["user"]["id"]) == {"ten_k", "total"}
    assert [r[0] for r in await rewards(engine, users[2]["user"]["id"])] == [30, 5]
    assert (await service.evaluate_dirty(app.state.database)).users == 0
    await ledger_ok(engine)


async def test_a_sync_after_the_claim_keeps_its_mark_for_the_next_batch(client, app, engine):
    """The race the claim exists for: the batch's facts may predate a sync that commits after
    the claim; that sync releases the mark, so this batch does not consume it."""
    await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 30)
    me = await register(client)
    user = uuid.UUID(me["user"]["id"])
    await sync(client, me["access_token"], rec(1, 5000))
    async with session_scope(app.state.database) as session:
        claimed, stamp = await repository.claim_dirty(session, 10, 60)
    assert claimed == [user] and stamp is not None
    async with session_scope(app.state.database) as session:
        # the batch reads its facts first (nothing met at 5,000 steps) ...
        assert await service.evaluate_users(session, claimed) == []
        # ... a paid sync commits meanwhile (its own transaction) ...
        await sync(client, me["access_token"], rec(2, 12000))
        # ... and the batch deletes only the marks no sync re-dirtied
        assert await repository.consume_dirty(session, claimed, stamp) == 0
    assert list(await marks(engine)) == [str(user)]
    await service.evaluate_dirty(app.state.database)
    assert await unlocked_codes(engine, str(user)) == {"ten_k"}
    assert await marks(engine) == {}
    await ledger_ok(engine)


async def test_a_failed_batch_gives_its_claims_back(client, app, engine, monkeypatch):
    await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 30)
    me = await register(client)
    await sync(client, me["access_token"], rec(1, 12000))

    async def broken(session, pairs):
        raise RuntimeError("evaluation failed")

    monkeypatch.setattr(service, "_pay", broken)
    try:
        await service.evaluate_dirty(app.state.database)
    except RuntimeError:
        pass
    else:
        raise AssertionError("the batch should have failed")
    assert await marks(engine) == {me["user"]["id"]: None}  # claimable again at once
    monkeypatch.undo()
    await service.evaluate_dirty(app.state.database)
    assert await unlocked_codes(engine, me["user"]["id"]) == {"ten_k"}
    await ledger_ok(engine)


async def test_a_stale_claim_is_taken_again(client, app, engine):
    """A batch that died between its claim and its evaluation leaves claimed marks; after
    DIRTY_CLAIM_STALE_SECONDS the next batch takes them."""
    me = await register(client)
    await sync(client, me["access_token"], rec(1, 12000))
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE achievements_dirty SET claimed_at = now() - interval '2 minutes'")
        )
    assert (await service.evaluate_dirty(app.state.database)).users == 1
    assert await marks(engine) == {}


async def test_a_batch_never_consumes_the_mark_of_a_sync_still_in_flight(client, app, engine):
    """A paying sync holds its (existing) mark locked until it commits: a batch that claims
    meanwhile skips it (it could not see the sync's days), and the next batch takes it."""
    me = await register(client)
    user = uuid.UUID(me["user"]["id"])
    await sync(client, me["access_token"], rec(1, 12000))  # an unclaimed mark exists
    payload = SyncPayload(days=[DayRow(date(2026, 1, 5), "healthkit", 15000, 150, 0)])
    async with engine.connect() as conn:
        in_flight = await conn.begin()
        version = (
            await conn.execute(text("SELECT version FROM wallets WHERE user_id = :u"), {"u": user})
        ).scalar_one()
        answer = (
            await conn.execute(
                text("SELECT stepcoin_apply_sync(:u, :v, CAST(:p AS jsonb))"),
                {"u": user, "v": version, "p": payload.to_json()},
            )
        ).scalar_one()
        assert not answer["conflict"] and answer["days"][0]["coins_delta"] == 150
        assert (await service.evaluate_dirty(app.state.database)).users == 0  # skipped
        await in_flight.commit()
    assert (await service.evaluate_dirty(app.state.database)).users == 1
    assert await marks(engine) == {}


def test_the_batch_runs_every_few_seconds_ahead_of_other_jobs():
    """Latency: the periodic task fires every 3 s and jumps the queue (a backlog of other
    jobs held it back behind them in an A/B run)."""
    from stepcoin.worker import build_job_app

    app = build_job_app()
    task = app.tasks["achievements:evaluate_dirty"]
    assert task.priority > 0
    job = task.configure().job
    assert job.priority == task.priority and job.queueing_lock
    crons = [p.cron for p in app.periodic_registry.periodic_tasks.values() if p.task is task]
    assert crons == ["* * * * * */3"]


async def test_batches_running_during_concurrent_syncs_pay_each_unlock_once(client, app, engine):
    """Syncs (wallet lock, then the mark) and batches (claim; wallet locks, then the marks'
    delete) at once: no deadlock, nothing lost, every unlock and reward exactly once."""
    import asyncio

    await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 30)
    await achievement(engine, "two_days", {"kind": "approved_days", "days": 2}, 7)
    accounts = [await register(client) for _ in range(6)]
    stop = asyncio.Event()

    async def batches() -> int:
        runs = 0
        while not stop.is_set():
            await service.evaluate_dirty(app.state.database, batch_size=3)
            runs += 1
            await asyncio.sleep(0)
        return runs

    async def walker(me: dict, offset: int) -> None:
        for i, steps in enumerate((4000, 9000, 10500, 12000)):
            await sync(client, me["access_token"], rec((offset + i) % 2, steps + offset))

    runner = asyncio.create_task(batches())
    await asyncio.gather(*(walker(me, i) for i, me in enumerate(accounts)))
    stop.set()
    assert await runner > 0
    await service.evaluate_dirty(app.state.database)  # what the batches had not seen yet
    assert await marks(engine) == {}
    for me in accounts:
        assert await unlocked_codes(engine, me["user"]["id"]) == {"ten_k", "two_days"}
        assert sorted(r[0] for r in await rewards(engine, me["user"]["id"])) == [7, 30]
    await ledger_ok(engine)


async def test_the_marks_are_deleted_outside_the_evaluation(client, app, engine, monkeypatch):
    """The DELETE of the claimed marks runs in a transaction of its own, after the evaluation
    (and its payments) committed: a sync of a claimed walker never waits for a whole batch's
    evaluation to end, only for that short DELETE (issue 13: the syncs' lock waits)."""
    await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 30)
    me = await register(client)
    await sync(client, me["access_token"], rec(1, 12000))
    seen: list[object] = []
    real = repository.consume_dirty

    async def watched(session, user_ids, claimed_at):
        # nothing written yet in this transaction: the unlock's payment is in another one
        seen.append(await session.scalar(text("SELECT pg_current_xact_id_if_assigned()")))
        seen.append(await unlocked_codes(engine, me["user"]["id"]))  # committed already
        return await real(session, user_ids, claimed_at)

    monkeypatch.setattr(repository, "consume_dirty", watched)
    assert (await service.evaluate_dirty(app.state.database)).users == 1
    assert seen == [None, {"ten_k"}]
    assert await marks(engine) == {}
    await ledger_ok(engine)


async def test_a_batch_pays_in_chunks_of_walkers_each_once(client, app, engine, monkeypatch):
    """The payments go PAY_CHUNK_WALKERS walkers per transaction (each chunk's wallets are
    locked for its few statements only); every unlock is still paid once, a later chunk's
    failure keeps the earlier chunks' payments and gives the marks back for a retry."""
    await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 30)
    await achievement(engine, "total", {"kind": "total_steps", "total_steps": 10000}, 5)
    users = [await register(client) for _ in range(5)]
    for me in users:
        await sync(client, me["access_token"], rec(1, 12000))
    monkeypatch.setattr(service, "PAY_CHUNK_WALKERS", 2)
    real_pay = service._pay
    chunks: list[int] = []

    async def pay(session, pairs):
        chunks.append(len({u for u, _ in pairs}))
        if len(chunks) == 3:
            raise RuntimeError("the last chunk fails once")
        return await real_pay(session, pairs)

    monkeypatch.setattr(service, "_pay", pay)
    try:
        await service.evaluate_dirty(app.state.database)
    except RuntimeError:
        pass
    else:
        raise AssertionError("the third chunk should have failed")
    assert chunks == [2, 2, 1]
    paid = [len(await rewards(engine, me["user"]["id"])) for me in users]
    assert sorted(paid) == [0, 2, 2, 2, 2]  # two chunks of two walkers, two unlocks each
    assert len(await marks(engine)) == 5  # every mark given back
    monkeypatch.setattr(service, "_pay", real_pay)
    assert (await service.evaluate_dirty(app.state.database)).users == 5
    assert [len(await rewards(engine, me["user"]["id"])) for me in users] == [2] * 5
    assert await marks(engine) == {}
    await ledger_ok(engine)


async def test_a_batch_reads_only_walkers_with_something_left_to_unlock(
    client, app, engine, monkeypatch
):
    """The facts read every credited day of a walker: a walker who has unlocked every active
    achievement is not read, and streak runs are computed only for thresholds still needed."""
    async with engine.begin() as conn:  # this test's achievements alone are active
        others = (
            (
                await conn.execute(
                    text("UPDATE achievements SET is_active = false WHERE is_active RETURNING id")
                )
            )
            .scalars()
            .all()
        )
    try:
        await achievement(engine, "left_day", {"kind": "single_day_steps", "min_steps": 5000}, 1)
        await achievement(
            engine, "left_streak", {"kind": "streak", "streak_days": 2, "min_steps": 9123}, 2
        )
        await achievement(
            engine, "left_other", {"kind": "streak", "streak_days": 3, "min_steps": 4321}, 3
        )
        me = await register(client)
        token, user_id = me["access_token"], me["user"]["id"]
        asked: list[tuple[list[str], list[int]]] = []
        real = repository.user_facts

        async def spied(session, user_ids, thresholds):
            asked.append((sorted(str(u) for u in user_ids), list(thresholds)))
            return await real(session, user_ids, thresholds)

        monkeypatch.setattr(repository, "user_facts", spied)
        await sync(client, token, rec(3, 4500), rec(2, 4500), rec(1, 6000))
        await service.evaluate_dirty(app.state.database)
        assert await unlocked_codes(engine, user_id) == {"left_day", "left_other"}
        assert asked == [([user_id], [4321, 9123])]  # nothing unlocked yet: every threshold
        await sync(client, token, rec(1, 9200), rec(0, 9300))
        await service.evaluate_dirty(app.state.database)
        assert await unlocked_codes(engine, user_id) == {"left_day", "left_other", "left_streak"}
        assert asked[1] == ([user_id], [9123])  # only the streak still locked
        await sync(client, token, rec(0, 9400))  # paid again: marked again, nothing left
        assert (await service.evaluate_dirty(app.state.database)).users == 1
        assert len(asked) == 2  # the walker was not read
        await ledger_ok(engine)
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE achievements SET is_active = false WHERE code LIKE 'left_%'")
            )
            await conn.execute(
                text("UPDATE achievements SET is_active = true WHERE id = ANY(:ids)"),
                {"ids": list(others)},
            )


async def test_the_claim_reads_the_marks_once_whatever_the_statistics(engine):
    """Autoanalyze finds the marks drained most of the time: with statistics of an empty table
    the claim, written as a join of the table with its own locked subquery, rescanned that
    subquery for every mark (a nested loop: 190 ms for 800 marks). The claim locks the marks
    once, as an array, and updates them by key."""
    async with engine.connect() as conn, conn.begin() as transaction:
        await conn.execute(text("DELETE FROM achievements_dirty"))
        await conn.execute(text("ANALYZE achievements_dirty"))  # drained: 0 rows
        await conn.execute(
            text(
                "INSERT INTO achievements_dirty (user_id) "
                "SELECT gen_random_uuid() FROM generate_series(1, 300)"
            )
        )
        plan = await plan_of(conn, repository.CLAIM_DIRTY_SQL, {"limit": 1000, "stale": 60})
        claimed = (
            await conn.execute(text(repository.CLAIM_DIRTY_SQL), {"limit": 1000, "stale": 60})
        ).all()
        await transaction.rollback()  # the statistics and the marks as they were
    assert "Nested Loop" not in plan and "InitPlan" in plan, plan
    assert len(claimed) == 300 and len({r.claimed_at for r in claimed}) == 1

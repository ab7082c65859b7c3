"""A new achievement reaches existing users through batched jobs, each batch on its own."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from stepcoin.achievements import service, tasks
from stepcoin.db import session_scope
from stepcoin.queue import JobRuntime
from tests.achievements.helpers import achievement, rewards, set_days
from tests.conftest import bearer, register
from tests.steps.helpers import ledger_ok, make_admin

D = date(2026, 5, 1)


async def walkers_with_days(client, engine, steps: list[int]) -> list[str]:
    users = []
    for s in steps:
        uid = (await register(client))["user"]["id"]
        await set_days(engine, uid, {D: s})
        users.append(uid)
    return users


async def test_backfill_batches_walk_every_user_once(app, client, engine):
    users = await walkers_with_days(client, engine, [12000, 500, 10000, 9999, 30000, 10000, 1])
    ach = await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 20)
    after = None
    checked = unlocked = batches = 0
    while True:
        async with session_scope(app.state.database) as session:
            batch = await service.backfill_batch(session, ach, after_user=after, batch_size=3)
        batches += 1
        checked += batch.users_checked
        unlocked += batch.unlocked
        if batch.next_after is None:
            break
        after = batch.next_after
    assert (checked, unlocked, batches) == (7, 4, 3)
    for uid, steps in zip(users, [12000, 500, 10000, 9999, 30000, 10000, 1], strict=True):
        assert len(await rewards(engine, uid)) == (1 if steps >= 10000 else 0)
    # a second pass skips the users who already have it
    async with session_scope(app.state.database) as session:
        again = await service.backfill_batch(session, ach, after_user=None, batch_size=3)
    assert (again.users_checked, again.unlocked) == (3, 0)
    await ledger_ok(engine)


async def test_backfill_of_an_inactive_or_missing_achievement_does_nothing(app, client, engine):
    await walkers_with_days(client, engine, [20000])
    ach = await achievement(engine, "off", {"kind": "approved_days", "days": 1}, active=False)
    async with session_scope(app.state.database) as session:
        for achievement_id in (ach, 999):
            batch = await service.backfill_batch(session, achievement_id, after_user=None)
            assert batch == service.BackfillBatch(0, 0, None)


@pytest.fixture
def job_runtime(app, monkeypatch, no_queued_achievement_jobs):
    monkeypatch.setattr(JobRuntime, "database", app.state.database)
    monkeypatch.setattr(service, "BACKFILL_BATCH_SIZE", 2)


async def queued_backfills(engine, achievement_id: int) -> list[dict]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT args FROM procrastinate_jobs WHERE task_name = 'achievements:backfill' "
                "AND (args->>'achievement_id')::bigint = :a AND status = 'todo' ORDER BY id"
            ),
            {"a": achievement_id},
        )
        return [r.args for r in rows]


async def test_the_admin_created_achievement_is_backfilled_job_by_job(
    app, client, engine, job_runtime
):
    users = await walkers_with_days(client, engine, [100, 200, 300, 400, 500])
    admin_token = await make_admin(client, engine)
    created = await client.post(
        "/v1/admin/achievements",
        json={
            "code": "first_day",
            "name": "First day",
            "unlock_criteria": {"kind": "approved_days", "days": 1},
            "reward_coins": 10,
        },
        headers=bearer(admin_token),
    )
    assert created.status_code == 201
    ach = created.json()["id"]
    runs = 0
    while queue := await queued_backfills(engine, ach):
        assert len(queue) == 1  # each batch queues only the next one
        async with engine.begin() as conn:  # what the worker does when it takes the job
            await conn.execute(
                text(
                    "UPDATE procrastinate_jobs SET status = 'succeeded' "
                    "WHERE task_name = 'achievements:backfill' AND status = 'todo'"
                )
            )
        await tasks.backfill(**queue[0])
        runs += 1
    # 6 active users (5 walkers + the admin, who has no steps) in batches of 2
    assert runs == 3
    for uid in users:
        assert [r[0] for r in await rewards(engine, uid)] == [10]
    listed = await client.get(f"/v1/admin/achievements/{ach}", headers=bearer(admin_token))
    assert listed.json()["unlocked_count"] == 5
    await ledger_ok(engine)


async def test_the_evaluate_task_unlocks_for_one_user(app, client, engine, job_runtime):
    await achievement(engine, "any_day", {"kind": "approved_days", "days": 1}, 5)
    [uid] = await walkers_with_days(client, engine, [10])
    assert await tasks.evaluate_user(uid) == ["any_day"]
    assert await tasks.evaluate_user(uid) == []


async def test_reactivating_or_new_criteria_queue_a_backfill(
    client, engine, no_queued_achievement_jobs
):
    admin = await make_admin(client, engine)
    ach = await achievement(engine, "later", {"kind": "approved_days", "days": 9}, active=False)
    path = f"/v1/admin/achievements/{ach}"
    await client.patch(path, json={"name": "Renamed"}, headers=bearer(admin))
    assert await queued_backfills(engine, ach) == []
    await client.patch(path, json={"is_active": True}, headers=bearer(admin))
    await client.patch(
        path, json={"unlock_criteria": {"kind": "approved_days", "days": 3}}, headers=bearer(admin)
    )
    assert len(await queued_backfills(engine, ach)) == 2

"""The step loop and the shop mark users dirty (evaluated in batches); a batch pays once."""

from __future__ import annotations

import json

from sqlalchemy import text

from stepcoin.achievements import tasks
from stepcoin.queue import JobRuntime
from stepcoin.worker import open_jobs
from tests.conftest import bearer, register
from tests.shop.helpers import order, product, walker_with_coins
from tests.steps.helpers import ledger_ok, rec, sync, wallet


async def add_achievement(engine, code: str, criteria: dict, reward: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO achievements (code, name, unlock_criteria, reward_coins) "
                "VALUES (:c, :c, CAST(:u AS jsonb), :r)"
            ),
            {"c": code, "u": json.dumps(criteria), "r": reward},
        )


async def unlocked(client, token: str) -> set[str]:
    listed = (await client.get("/v1/achievements", headers=bearer(token))).json()
    items = listed["items"] if isinstance(listed, dict) else listed
    return {a["code"] for a in items if a["unlocked_at"]}


async def run_dirty_batch(app) -> dict[str, int]:
    """What the periodic task `achievements:evaluate_dirty` does every few seconds."""
    JobRuntime.database = app.state.database
    return await tasks.run_dirty_batches()


async def marks(engine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT user_id::text FROM achievements_dirty"))
        return [r[0] for r in rows]


async def evaluation_jobs(engine) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT count(*) FROM procrastinate_jobs WHERE "
                    "task_name = 'achievements:evaluate_user' AND status = 'todo'"
                )
            )
        ).scalar_one()


async def test_a_paid_sync_marks_the_user_once_and_a_batch_pays_once(
    client, app, engine, no_queued_achievement_jobs
):
    await add_achievement(engine, "first_10k", {"kind": "single_day_steps", "min_steps": 10000}, 50)
    me = await register(client)
    token = me["access_token"]
    await sync(client, token, rec(1, 10000))
    await sync(client, token, rec(1, 10500))  # a second paid sync while the mark waits
    assert await marks(engine) == [me["user"]["id"]]
    assert await evaluation_jobs(engine) == 0  # issue 13: no job per sync
    assert (await run_dirty_batch(app))["unlocked"] >= 1
    assert await marks(engine) == []
    assert "first_10k" in await unlocked(client, token)
    assert (await wallet(client, token))["available_coins"] == 105 + 50
    await sync(client, token, rec(2, 12000))
    await run_dirty_batch(app)
    assert (await wallet(client, token))["available_coins"] == 105 + 120 + 50  # reward once
    await ledger_ok(engine)


async def test_the_periodic_task_runs_the_dirty_batch(client, app, engine):
    await add_achievement(engine, "first_11k", {"kind": "single_day_steps", "min_steps": 11000}, 7)
    me = await register(client)
    await sync(client, me["access_token"], rec(1, 11000))
    async with open_jobs(app.state.database) as jobs:
        await jobs.configure_task("achievements:evaluate_dirty").defer_async(timestamp=0)
        await jobs.run_worker_async(wait=False, install_signal_handlers=False)
    assert "first_11k" in await unlocked(client, me["access_token"])
    assert me["user"]["id"] not in await marks(engine)
    await ledger_ok(engine)


async def test_a_first_order_unlocks_first_redemption(
    client, app, engine, no_queued_achievement_jobs
):
    """The order marks its walker (place_order.v2, no job per order); the next batch pays."""
    await add_achievement(engine, "first_buy", {"kind": "first_redemption"}, 25)
    bottle = await product(engine, price=100)
    me = await walker_with_coins(client, engine, 100)
    placed = await order(client, me["access_token"], [(bottle, 1)])
    assert placed.status_code == 201
    assert me["user"]["id"] in await marks(engine)
    assert await evaluation_jobs(engine) == 0
    await run_dirty_batch(app)
    assert "first_buy" in await unlocked(client, me["access_token"])
    assert (await wallet(client, me["access_token"]))["available_coins"] == 25
    await ledger_ok(engine)


async def test_an_approval_marks_the_user_dirty(client, app, engine, no_queued_achievement_jobs):
    """Approving a flagged record pays through the step loop, which marks the user dirty; the
    review queues no job."""
    from tests.steps.helpers import make_admin

    await add_achievement(engine, "first_9k", {"kind": "single_day_steps", "min_steps": 9000}, 10)
    me = await register(client)
    flagged = await sync(client, me["access_token"], rec(1, 9000, manual=True))
    assert flagged[0]["status"] == "flagged"
    admin = await make_admin(client, engine)
    queued = (
        await client.get(
            "/v1/admin/validations", params={"status": "flagged"}, headers=bearer(admin)
        )
    ).json()["items"]
    approve = await client.post(
        f"/v1/admin/validations/{queued[0]['id']}/approve", json={}, headers=bearer(admin)
    )
    assert approve.status_code == 200, approve.text
    assert me["user"]["id"] in await marks(engine)
    assert await evaluation_jobs(engine) == 0
    await run_dirty_batch(app)
    assert "first_9k" in await unlocked(client, me["access_token"])
    assert (await wallet(client, me["access_token"]))["available_coins"] == 90 + 10
    await ledger_ok(engine)

"""The step loop and the shop enqueue achievement evaluations; a real worker pays once."""

from __future__ import annotations

import json

from sqlalchemy import text

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


async def run_default_queue(app) -> None:
    async with open_jobs(app.state.database) as jobs:
        await jobs.run_worker_async(wait=False, install_signal_handlers=False, queues=["default"])


async def unlocked(client, token: str) -> set[str]:
    listed = (await client.get("/v1/achievements", headers=bearer(token))).json()
    items = listed["items"] if isinstance(listed, dict) else listed
    return {a["code"] for a in items if a["unlocked_at"]}


async def test_a_paid_sync_enqueues_one_evaluation_that_pays_once(client, app, engine):
    await add_achievement(engine, "first_10k", {"kind": "single_day_steps", "min_steps": 10000}, 50)
    me = await register(client)
    token = me["access_token"]
    await sync(client, token, rec(1, 10000))
    await sync(client, token, rec(1, 10500))  # a second paid sync while one evaluation waits
    async with engine.connect() as conn:
        waiting = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM procrastinate_jobs WHERE "
                    "task_name = 'achievements:evaluate_user' AND status = 'todo'"
                )
            )
        ).scalar_one()
    assert waiting == 1
    await run_default_queue(app)
    assert "first_10k" in await unlocked(client, token)
    assert (await wallet(client, token))["available_coins"] == 105 + 50
    await sync(client, token, rec(2, 12000))
    await run_default_queue(app)
    assert (await wallet(client, token))["available_coins"] == 105 + 120 + 50  # reward once
    await ledger_ok(engine)


async def test_a_first_order_unlocks_first_redemption(client, app, engine):
    await add_achievement(engine, "first_buy", {"kind": "first_redemption"}, 25)
    bottle = await product(engine, price=100)
    me = await walker_with_coins(client, engine, 100)
    placed = await order(client, me["access_token"], [(bottle, 1)])
    assert placed.status_code == 201
    await run_default_queue(app)
    assert "first_buy" in await unlocked(client, me["access_token"])
    assert (await wallet(client, me["access_token"]))["available_coins"] == 25
    await ledger_ok(engine)


async def test_an_approval_queues_one_evaluation(client, app, engine):
    """Approving a flagged record pays through the step loop, which queues the user's
    evaluation once (its queueing lock); the review adds no second, unlocked job."""
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
    async with engine.connect() as conn:
        jobs = (
            await conn.execute(
                text(
                    "SELECT queueing_lock FROM procrastinate_jobs "
                    "WHERE task_name = 'achievements:evaluate_user' AND status = 'todo'"
                )
            )
        ).all()
    assert [j.queueing_lock for j in jobs] == [f"achievements:{me['user']['id']}"]
    await run_default_queue(app)
    assert "first_9k" in await unlocked(client, me["access_token"])
    assert (await wallet(client, me["access_token"]))["available_coins"] == 90 + 10
    await ledger_ok(engine)

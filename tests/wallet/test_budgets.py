"""Issuance budgets (issue 15, item 2; stepcoin.wallet.budgets): a cap per source and period,
checked atomically when rewards are paid; at the cap rewards are held as pending, never lost,
and paid once when there is room."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

from sqlalchemy import text

from stepcoin import metrics
from stepcoin.db import session_scope
from stepcoin.queue import JobRuntime
from stepcoin.wallet import budgets
from stepcoin.wallet.service import ACHIEVEMENT_REWARD, Entry
from stepcoin.wallet.tasks import release_held_job
from tests.achievements.test_hooks import add_achievement, run_dirty_batch
from tests.admin.helpers import count
from tests.conftest import bearer, register
from tests.steps.helpers import ledger_ok, make_admin, rec, sync, wallet

URL = "/v1/admin/economy/budgets"


async def set_cap(client, admin: str, cap: int, period: str = "day", source: str = "achievements"):
    answer = await client.put(
        f"{URL}/{source}/{period}",
        json={"cap_coins": cap, "alert_percent": 80},
        headers=bearer(admin),
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def budget_actions(engine) -> list[str]:
    """The audit log's budget actions, oldest first."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT action FROM admin_logs WHERE entity_type = 'issuance_budget' "
                "ORDER BY created_at"
            )
        )
        return [str(r[0]) for r in rows]


def reward(coins: int, ref: str | None = None) -> Entry:
    return Entry(coins, ACHIEVEMENT_REWARD, ref or f"test:{uuid.uuid4()}", "Budget test")


async def issue(app, entries, **kw):
    async with session_scope(app.state.database) as session:
        return await budgets.issue_many(session, "achievements", entries, **kw)


async def walkers(client, n: int) -> list[dict]:
    return [await register(client) for _ in range(n)]


def uid(walker: dict) -> uuid.UUID:
    return uuid.UUID(walker["user"]["id"])


async def test_at_the_cap_rewards_are_held_as_pending_and_paid_once_when_room_comes(
    client, app, engine, caplog
):
    admin = await make_admin(client, engine)
    await set_cap(client, admin, 60)
    a, b, c = await walkers(client, 3)
    refs = {w["user"]["id"]: f"test:{uuid.uuid4()}" for w in (a, b, c)}
    entries = {uid(w): [reward(25, refs[w["user"]["id"]])] for w in (a, b, c)}
    with caplog.at_level(logging.WARNING, logger="stepcoin.wallet.budgets"):
        result = await issue(app, entries)
    assert sorted(result.held.values()) == [25]  # 25 + 25 fit under 60, the third does not
    held_user = next(iter(result.held))
    assert any("issuance budget alert" in r.getMessage() for r in caplog.records)  # 50/60
    assert any("budget reached" in r.getMessage() for r in caplog.records)
    coins = {w["user"]["id"]: await wallet(client, w["access_token"]) for w in (a, b, c)}
    for user, figures in coins.items():
        if uuid.UUID(user) == held_user:
            assert figures["available_coins"] == 0 and figures["pending_coins"] == 25
        else:
            assert figures["available_coins"] == 25 and figures["pending_coins"] == 0
    listed = (await client.get(URL, headers=bearer(admin))).json()["items"]
    assert listed[0]["issued_coins"] == 50
    assert listed[0]["held_coins"] == 25 and listed[0]["held_rewards"] == 1
    assert listed[0]["exhausted_at"] is not None
    await ledger_ok(engine)  # pending = days in review + budget holds

    again = await issue(app, entries)  # a retried payout: nothing paid or held twice
    assert again.held == {}
    assert await count(engine, "SELECT count(*) FROM issuance_holds") == 1
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == 2

    await set_cap(client, admin, 100)  # room again: the next release pays the held reward
    JobRuntime.database = app.state.database
    assert await release_held_job(timestamp=0) == 1
    after = await wallet(client, next(w for w in (a, b, c) if uid(w) == held_user)["access_token"])
    assert after == {**after, "available_coins": 25, "pending_coins": 0}
    assert (
        await count(
            engine,
            "SELECT count(*) FROM coin_transactions WHERE reference_id = :r",
            r=refs[str(held_user)],
        )
        == 1
    )
    assert await release_held_job(timestamp=0) == 0
    assert (await client.get(URL, headers=bearer(admin))).json()["items"][0]["issued_coins"] == 75
    await ledger_ok(engine)


async def test_a_hold_is_per_walker_and_each_is_paid_once(client, app, engine):
    """issuance_holds is unique by (transaction_type, reference_id, user_id): a walker's held
    reward does not pass for another walker's with the same reference, and a retried payout or
    release pays each walker's once."""
    admin = await make_admin(client, engine)
    await set_cap(client, admin, 10)
    a, b = await walkers(client, 2)
    ref = f"test:{uuid.uuid4()}"
    first = await issue(app, {uid(a): [reward(25, ref)]})
    second = await issue(app, {uid(b): [reward(25, ref)]})
    assert (first.held, second.held) == ({uid(a): 25}, {uid(b): 25})
    again = await issue(app, {uid(a): [reward(25, ref)], uid(b): [reward(25, ref)]})
    assert (again.held, again.paid) == ({}, {})
    assert await count(engine, "SELECT count(*) FROM issuance_holds") == 2
    await set_cap(client, admin, 100)
    JobRuntime.database = app.state.database
    assert await release_held_job(timestamp=0) == 2
    assert await release_held_job(timestamp=0) == 0
    paid = await issue(app, {uid(a): [reward(25, ref)], uid(b): [reward(25, ref)]})
    assert all(p.replayed for rows in paid.paid.values() for p in rows)
    assert (
        await count(engine, "SELECT count(*) FROM coin_transactions WHERE reference_id = :r", r=ref)
        == 2
    )
    for w in (a, b):
        figures = await wallet(client, w["access_token"])
        assert (figures["available_coins"], figures["pending_coins"]) == (25, 0)
    await ledger_ok(engine)


async def test_two_payouts_racing_for_the_last_room_never_overspend(client, app, engine):
    admin = await make_admin(client, engine)
    await set_cap(client, admin, 100)
    a, b = await walkers(client, 2)
    first, second = await asyncio.gather(
        issue(app, {uid(a): [reward(60)]}), issue(app, {uid(b): [reward(60)]})
    )
    assert sorted([sum(first.held.values()), sum(second.held.values())]) == [0, 60]
    assert await count(engine, "SELECT coalesce(sum(amount), 0) FROM coin_transactions") == 60
    assert await count(engine, "SELECT issued FROM issuance_usage") == 60
    await ledger_ok(engine)


async def test_a_new_period_pays_what_the_last_one_held(client, app, engine):
    admin = await make_admin(client, engine)
    await set_cap(client, admin, 10, period="week")
    a, b = await walkers(client, 2)
    result = await issue(app, {uid(a): [reward(10)], uid(b): [reward(10)]})
    assert sum(result.held.values()) == 10
    async with session_scope(app.state.database) as session:
        assert await budgets.release_held(session) == 0  # still this week: no room
    next_week = budgets.utc_today() + timedelta(days=7)
    async with session_scope(app.state.database) as session:
        assert await budgets.release_held(session, today=next_week) == 1
    assert await count(engine, "SELECT coalesce(sum(amount), 0) FROM coin_transactions") == 20
    await ledger_ok(engine)


async def test_the_achievements_batch_pays_under_its_budget(client, app, engine):
    """End to end: walkers unlock an achievement through their syncs; the batch pays the
    first within the cap and holds the rest as pending."""
    admin = await make_admin(client, engine)
    await set_cap(client, admin, 30)
    await add_achievement(engine, "first_12k", {"kind": "single_day_steps", "min_steps": 12000}, 30)
    a, b = await walkers(client, 2)
    for w in (a, b):
        await sync(client, w["access_token"], rec(1, 12000))
    await run_dirty_batch(app)
    rewards = await count(
        engine,
        "SELECT count(*) FROM coin_transactions WHERE transaction_type = 'achievement_reward'",
    )
    assert rewards == 1
    assert await count(engine, "SELECT count(*) FROM issuance_holds") == 1
    pending = [(await wallet(client, w["access_token"]))["pending_coins"] for w in (a, b)]
    assert sorted(pending) == [0, 30]
    await ledger_ok(engine)
    removed = await client.delete(f"{URL}/achievements/day", headers=bearer(admin))
    assert removed.status_code == 204  # no cap any more: the next release pays it
    async with session_scope(app.state.database) as session:
        assert await budgets.release_held(session) == 1
    await ledger_ok(engine)


async def test_only_admins_set_budgets_and_every_change_is_audited(client, engine):
    admin = await make_admin(client, engine)
    support = await make_admin(client, engine, role="support")
    walker = await register(client)
    body = {"cap_coins": 1000, "alert_percent": 90}
    assert (await client.get(URL, headers=bearer(walker["access_token"]))).status_code == 403
    assert (await client.get(URL, headers=bearer(support))).status_code == 200
    refused = await client.put(f"{URL}/steps/day", json=body, headers=bearer(support))
    assert refused.status_code == 403
    unknown = await client.put(f"{URL}/gifts/day", json=body, headers=bearer(admin))
    assert unknown.status_code == 422
    negative = await client.put(f"{URL}/steps/day", json={"cap_coins": -1}, headers=bearer(admin))
    assert negative.status_code == 422
    assert (
        await client.put(f"{URL}/campaigns/month", json=body, headers=bearer(admin))
    ).status_code == 200
    gone = await client.delete(f"{URL}/campaigns/week", headers=bearer(admin))
    assert gone.status_code == 404 and gone.json()["code"] == "budget_not_found"
    assert (await client.delete(f"{URL}/campaigns/month", headers=bearer(admin))).status_code == 204
    assert await budget_actions(engine) == ["economy.budget_set", "economy.budget_removed"]


async def test_metrics_show_each_budgets_use_and_its_held_coins(client, app, engine, scraper):
    admin = await make_admin(client, engine)
    await set_cap(client, admin, 40, period="month")
    a, b = await walkers(client, 2)
    await issue(app, {uid(a): [reward(30)], uid(b): [reward(30)]})
    metrics.DATABASE_COLLECTOR.snapshot.taken = float("-inf")  # no snapshot of an earlier test
    text_ = (await scraper.get("/metrics")).text
    assert 'stepcoin_issuance_budget_used_ratio{period="month",source="achievements"} 0.75' in text_
    assert 'stepcoin_issuance_held_coins{period="month",source="achievements"} 30.0' in text_

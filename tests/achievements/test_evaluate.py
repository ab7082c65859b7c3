"""Evaluating a user: each kind unlocks exactly at its threshold, rewards are paid once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from stepcoin.achievements.criteria import local_today
from stepcoin.db import session_scope
from stepcoin.wallet.service import check_ledger
from tests.achievements.helpers import (
    achievement,
    evaluate,
    rewards,
    set_days,
    unlocked_codes,
)
from tests.conftest import bearer, register
from tests.shop.helpers import order, product, walker_with_coins
from tests.steps.helpers import ledger_ok, rec, sync, today, wallet

D = date(2026, 3, 10)


async def walker(client) -> str:
    return (await register(client))["user"]["id"]


async def test_single_day_steps_unlocks_at_exactly_min_steps(app, client, engine):
    await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 50)
    me = await walker(client)
    await set_days(engine, me, {D: 9999, D + timedelta(days=1): 4000})
    assert await evaluate(app, me) == []
    await set_days(engine, me, {D: 10000})
    assert await evaluate(app, me) == ["ten_k"]
    assert await rewards(engine, me) == [(50, f"achievement:1:{me}", 50)]
    await ledger_ok(engine)


async def test_total_steps_unlocks_at_exactly_the_total(app, client, engine):
    await achievement(engine, "total", {"kind": "total_steps", "total_steps": 30000}, 100)
    me = await walker(client)
    await set_days(engine, me, {D: 10000, D + timedelta(days=1): 10000, D + timedelta(2): 9999})
    assert await evaluate(app, me) == []
    await set_days(engine, me, {D + timedelta(days=2): 10000})
    assert await evaluate(app, me) == ["total"]
    await ledger_ok(engine)


async def test_streak_needs_consecutive_days_each_at_min_steps(app, client, engine):
    await achievement(engine, "streak", {"kind": "streak", "streak_days": 3, "min_steps": 5000})
    me = await walker(client)
    # a gap (D+2 missing) and a day one step short (D+5) break the run
    await set_days(
        engine,
        me,
        {
            D: 5000,
            D + timedelta(days=1): 9000,
            D + timedelta(days=3): 5000,
            D + timedelta(days=4): 5000,
            D + timedelta(days=5): 4999,
        },
    )
    assert await evaluate(app, me) == []
    await set_days(engine, me, {D + timedelta(days=5): 5000})
    assert await evaluate(app, me) == ["streak"]


async def test_streak_across_month_and_year_boundaries(app, client, engine):
    await achievement(engine, "streak4", {"kind": "streak", "streak_days": 4, "min_steps": 1000})
    march = await walker(client)
    await set_days(
        engine, march, {date(2026, 2, 27): 2000, date(2026, 2, 28): 2000, date(2026, 3, 1): 2000}
    )
    assert await evaluate(app, march) == []
    await set_days(engine, march, {date(2026, 3, 2): 2000})
    assert await evaluate(app, march) == ["streak4"]
    new_year = await walker(client)
    await set_days(
        engine,
        new_year,
        {
            date(2025, 12, 30): 1000,
            date(2025, 12, 31): 1000,
            date(2026, 1, 1): 1000,
            date(2026, 1, 2): 1000,
        },
    )
    assert await evaluate(app, new_year) == ["streak4"]


async def test_approved_days_counts_days_with_approved_steps(app, client, engine):
    await achievement(engine, "days3", {"kind": "approved_days", "days": 3})
    me = await walker(client)
    await set_days(engine, me, {D: 1, D + timedelta(days=5): 20000, D + timedelta(days=9): 0})
    assert await evaluate(app, me) == []  # a day with nothing credited does not count
    await set_days(engine, me, {D + timedelta(days=9): 1})
    assert await evaluate(app, me) == ["days3"]


async def test_first_redemption_ignores_cancelled_orders(app, client, engine):
    await achievement(engine, "first_order", {"kind": "first_redemption"}, 25)
    bottle = await product(engine, price=100, stock=5)
    me = await walker_with_coins(client, engine, 500)
    placed = await order(client, me["access_token"], [(bottle, 1)])
    assert placed.status_code == 201, placed.text
    cancel = await client.post(
        f"/v1/orders/{placed.json()['id']}/cancel", headers=bearer(me["access_token"])
    )
    assert cancel.status_code == 200, cancel.text
    assert await evaluate(app, me["user"]["id"]) == []
    assert (await order(client, me["access_token"], [(bottle, 1)])).status_code == 201
    assert await evaluate(app, me["user"]["id"]) == ["first_order"]
    assert (await wallet(client, me["access_token"]))["available_coins"] == 500 - 100 + 25
    await ledger_ok(engine)


async def test_streak_days_are_the_users_local_days(app, client, engine):
    """A walker at UTC+14 syncs seven local days up to their local today (which is already
    tomorrow in UTC for most of the day): the days are theirs, the streak counts them."""
    await achievement(engine, "week", {"kind": "streak", "streak_days": 7, "min_steps": 5000}, 70)
    me = await register(client)
    token = me["access_token"]
    patched = await client.patch(
        "/v1/me", json={"timezone": "Pacific/Kiritimati"}, headers=bearer(token)
    )
    assert patched.status_code == 200
    day0 = local_today("Pacific/Kiritimati")
    records = [
        {"date": (day0 - timedelta(days=i)).isoformat(), "steps": 6000, "source": "healthkit"}
        for i in range(6)
    ]
    results = await sync(client, token, *records)
    assert {r["status"] for r in results} == {"approved"}
    listed = (await client.get("/v1/achievements", headers=bearer(token))).json()["items"]
    assert listed[0]["progress"] == {"current": 6, "target": 7}
    assert await evaluate(app, me["user"]["id"]) == []
    seventh = {"date": (day0 - timedelta(days=6)).isoformat(), "steps": 6000, "source": "healthkit"}
    assert (await sync(client, token, seventh))[0]["status"] == "approved"
    assert await evaluate(app, me["user"]["id"]) == ["week"]
    listed = (await client.get("/v1/achievements", headers=bearer(token))).json()["items"]
    assert listed[0]["unlocked_at"] is not None
    assert listed[0]["progress"] == {"current": 7, "target": 7}
    await ledger_ok(engine)


async def test_evaluating_again_pays_nothing_more(app, client, engine):
    await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 50)
    await achievement(engine, "total", {"kind": "total_steps", "total_steps": 10000}, 30)
    me = await walker(client)
    await set_days(engine, me, {D: 12000})
    assert await evaluate(app, me) == ["ten_k", "total"]
    assert await evaluate(app, me) == []
    assert await evaluate(app, me) == []
    # two rewards at once: each ledger row carries the running balance
    assert await rewards(engine, me) == [
        (50, f"achievement:1:{me}", 50),
        (30, f"achievement:2:{me}", 80),
    ]
    async with session_scope(app.state.database) as session:
        assert (await check_ledger(session)).ok
    await ledger_ok(engine)


async def test_concurrent_evaluations_pay_the_reward_once(app, client, engine):
    await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 50)
    await achievement(engine, "streak", {"kind": "streak", "streak_days": 2, "min_steps": 100}, 5)
    users = [await walker(client) for _ in range(3)]
    for user in users:
        await set_days(engine, user, {D: 10000, D + timedelta(days=1): 100})
    results = await asyncio.gather(*(evaluate(app, u) for u in users for _ in range(6)))
    assert sorted(code for codes in results for code in codes) == sorted(
        ["ten_k", "streak"] * len(users)
    )
    for user in users:
        assert [r[0] for r in await rewards(engine, user)] == [50, 5]
    await ledger_ok(engine)


async def test_concurrent_evaluation_and_step_sync_keep_the_ledger(app, client, engine):
    """Evaluations racing real syncs of the same walker: both take the wallet lock first."""
    await achievement(engine, "five_k", {"kind": "single_day_steps", "min_steps": 5000}, 40)
    me = await register(client)
    token = me["access_token"]
    await sync(client, token, rec(1, 6000))

    async def sync_more(i: int) -> None:
        await sync(client, token, rec(0, 1000 + i * 500))

    await asyncio.gather(
        *(evaluate(app, me["user"]["id"]) for _ in range(5)), *(sync_more(i) for i in range(5))
    )
    assert len(await rewards(engine, me["user"]["id"])) == 1
    await ledger_ok(engine)


async def test_clawed_back_steps_do_not_take_the_badge_away(app, client, engine):
    await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 50)
    me = await register(client)
    token = me["access_token"]
    await sync(client, token, rec(1, 10500))
    assert await evaluate(app, me["user"]["id"]) == ["ten_k"]
    lower = await sync(client, token, rec(1, 3000))
    assert lower[0]["coins_awarded"] < 0  # the step coins are clawed back...
    assert await evaluate(app, me["user"]["id"]) == []
    listed = (await client.get("/v1/achievements", headers=bearer(token))).json()["items"]
    assert listed[0]["unlocked_at"] is not None  # ...the badge and its reward stay
    assert listed[0]["progress"] == {"current": 10000, "target": 10000}
    assert await rewards(engine, me["user"]["id"]) == [
        (50, f"achievement:1:{me['user']['id']}", 105 + 50)
    ]
    await ledger_ok(engine)


async def test_inactive_achievements_and_users_unlock_nothing(app, client, engine):
    await achievement(engine, "off", {"kind": "approved_days", "days": 1}, 10, active=False)
    me = await walker(client)
    await set_days(engine, me, {D: 100})
    assert await evaluate(app, me) == []
    await achievement(engine, "on", {"kind": "approved_days", "days": 1}, 10)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE users SET is_active = false WHERE id = :u"), {"u": me})
    assert await evaluate(app, me) == []
    assert await evaluate(app, str(uuid.uuid4())) == []  # no such user


async def test_a_reward_of_zero_unlocks_without_a_ledger_row(app, client, engine):
    await achievement(engine, "badge", {"kind": "approved_days", "days": 1}, 0)
    me = await walker(client)
    await set_days(engine, me, {D: 100})
    assert await evaluate(app, me) == ["badge"]
    assert await rewards(engine, me) == []
    assert await unlocked_codes(engine, me) == {"badge"}


@pytest.mark.parametrize(
    ("criteria", "days", "expected"),
    [
        ({"kind": "single_day_steps", "min_steps": 8000}, {0: 7999}, {"current": 7999}),
        ({"kind": "total_steps", "total_steps": 50000}, {0: 7000, 3: 8000}, {"current": 15000}),
        ({"kind": "approved_days", "days": 30}, {0: 5, 1: 5, 9: 5}, {"current": 3}),
        # the run still alive: ending today or yesterday
        (
            {"kind": "streak", "streak_days": 7, "min_steps": 5000},
            {1: 5000, 2: 5000, 3: 9000, 5: 6000},
            {"current": 3},
        ),
        (
            {"kind": "streak", "streak_days": 7, "min_steps": 5000},
            {2: 5000, 3: 5000},
            {"current": 0},
        ),
    ],
)
async def test_progress_of_locked_achievements(client, engine, criteria, days, expected):
    await achievement(engine, "goal", criteria)
    me = await register(client)
    await set_days(
        engine, me["user"]["id"], {today() - timedelta(days=k): v for k, v in days.items()}
    )
    listed = (await client.get("/v1/achievements", headers=bearer(me["access_token"]))).json()
    item = listed["items"][0]
    assert item["unlocked_at"] is None
    assert item["progress"]["current"] == expected["current"]

"""A steps issuance budget (issue 15, item 2): the sync's new coins must fit under the
walker's stripe's share of the cap (stepcoin_apply_sync v6); beyond it they are held as a
review of reason `issuance_budget` (pending for the walker) and paid once, by the release job,
when there is room."""

from __future__ import annotations

import asyncio
import logging
import uuid

from sqlalchemy import text

from stepcoin.db import session_scope
from stepcoin.queue import JobRuntime
from stepcoin.steps.review import _HELD_BY_BUDGET, held_by_budget
from stepcoin.steps.tasks import release_budget_holds
from stepcoin.wallet import budgets
from tests.admin.helpers import count
from tests.conftest import bearer, register
from tests.fixtures.plans import plan_of
from tests.steps.helpers import ledger_ok, make_admin, rec, sync, wallet

URL = "/v1/admin/economy/budgets/steps/day"


async def cap(client, admin: str, per_stripe: int) -> None:
    """A daily steps budget whose every stripe's share is `per_stripe` coins."""
    answer = await client.put(
        URL,
        json={"cap_coins": per_stripe * budgets.STRIPES, "alert_percent": 50},
        headers=bearer(admin),
    )
    assert answer.status_code == 200, answer.text


async def release(app) -> int:
    JobRuntime.database = app.state.database
    return await release_budget_holds(timestamp=0)


async def test_coins_beyond_the_share_are_held_then_paid_once_when_room_comes(
    client, app, engine, caplog
):
    admin = await make_admin(client, engine)
    await cap(client, admin, 100)
    me = await register(client)
    token = me["access_token"]
    first = await sync(client, token, rec(1, 10_000))  # 100 coins: exactly the share
    assert first[0]["status"] == "approved" and first[0]["coins_awarded"] == 100
    more = await sync(client, token, rec(1, 12_000), rec(2, 5_000))  # +20 and 50: no room
    assert {r["status"] for r in more} == {"flagged"}
    assert all("issuance_budget" in r["reasons"] for r in more)
    assert sum(r["coins_pending"] for r in more) == 70
    assert await wallet(client, token) == {
        **(await wallet(client, token)),
        "available_coins": 100,
        "pending_coins": 70,
    }
    await ledger_ok(engine)

    review = await client.get("/v1/admin/validations", headers=bearer(admin))
    held = [v for v in review.json()["items"] if v["user"]["id"] == me["user"]["id"]]
    assert len(held) == 2
    refused = await client.post(
        f"/v1/admin/validations/{held[0]['id']}/approve", json={}, headers=bearer(admin)
    )
    assert refused.status_code == 409 and refused.json()["code"] == "issuance_budget_reached"

    with caplog.at_level(logging.WARNING, logger="stepcoin.wallet.budgets"):
        assert await release(app) == 0  # still no room: nothing paid
    assert any("budget reached" in r.getMessage() for r in caplog.records)

    await cap(client, admin, 200)  # room for 100 more: both held days are paid
    assert await release(app) == 2
    figures = await wallet(client, token)
    assert figures["available_coins"] == 170 and figures["pending_coins"] == 0
    assert await release(app) == 0  # paid once
    days = (await client.get("/v1/steps", headers=bearer(token))).json()["items"]
    assert {d["status"] for d in days} == {"approved"}
    issued = await count(
        engine, "SELECT coalesce(sum(issued), 0) FROM issuance_usage WHERE source = 'steps'"
    )
    assert issued == 170
    await ledger_ok(engine)


async def test_two_walkers_of_one_stripe_racing_for_its_last_room(client, app, engine):
    admin = await make_admin(client, engine)
    await cap(client, admin, 100)
    seen: dict[int, dict] = {}
    pair: tuple[dict, dict] | None = None
    while pair is None:  # walkers until two count on the same stripe (a few on average)
        walker = await register(client)
        stripe = budgets.stripe_of(uuid.UUID(walker["user"]["id"]))
        if stripe in seen:
            pair = (seen[stripe], walker)
        seen[stripe] = walker
    answers = await asyncio.gather(*(sync(client, w["access_token"], rec(1, 10_000)) for w in pair))
    statuses = sorted(a[0]["status"] for a in answers)
    assert statuses == ["approved", "flagged"]
    paid = [(await wallet(client, w["access_token"]))["available_coins"] for w in pair]
    assert sorted(paid) == [0, 100]
    await ledger_ok(engine)


async def test_without_a_budget_nothing_is_held(client, engine):
    me = await register(client)
    answer = await sync(client, me["access_token"], rec(1, 10_000))
    assert answer[0]["status"] == "approved" and answer[0]["coins_awarded"] == 100
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT count(*) FROM issuance_usage"))).scalar_one()
    assert rows == 0  # no budget: the sync touches no counter


async def test_the_held_decisions_are_found_without_reading_the_review_queue(client, app, engine):
    """The job runs every minute: it reads ix_step_validations_budget_held (only the decisions
    a budget holds, by id), never the flagged queue's other decisions and their rule hits."""
    admin = await make_admin(client, engine)
    await cap(client, admin, 100)
    me = await register(client)
    await sync(client, me["access_token"], rec(1, 10_000))
    held = await sync(client, me["access_token"], rec(2, 5_000))  # no room: held
    assert held[0]["status"] == "flagged" and "issuance_budget" in held[0]["reasons"]
    other = await register(client)
    async with engine.begin() as conn:  # a review queue of 300 decisions flagged by a rule
        await conn.execute(
            text(
                "INSERT INTO step_validations (user_id, recorded_date, source, steps, status, "
                "rule_hits) SELECT :u, current_date - n % 20, 'healthkit', 90000, 'flagged', "
                """'[{"code": "daily_max", "action": "flag"}]' FROM generate_series(1, 300) n"""
            ),
            {"u": other["user"]["id"]},
        )
        await conn.execute(text("ANALYZE step_validations"))
    async with session_scope(app.state.database) as session:
        held = f"SELECT id FROM step_validations WHERE {_HELD_BY_BUDGET} LIMIT 9"
        plan = (await plan_of(session, held)).splitlines()
        found = await held_by_budget(session, limit=9)
    assert any("ix_step_validations_budget_held" in line for line in plan), plan
    mine = await count(
        engine,
        "SELECT count(*) FROM step_validations WHERE id = ANY(CAST(:ids AS bigint[])) "
        "AND user_id = :u",
        ids=found,
        u=me["user"]["id"],
    )
    assert len(found) == 1 and mine == 1

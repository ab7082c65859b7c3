"""Issue 16 item 3: qualification on approved days, expiry, the hold, paying once (also under
two settles at once), the referrer's monthly cap, the terms of the claim, the referrer's list."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests.referrals.helpers import (
    approved_days,
    backdate,
    invite,
    later,
    rewards,
    row,
    set_terms,
    settle,
    walker,
)
from tests.steps.helpers import ledger_ok, today


def days_back(*offsets: int) -> list:
    return [today() - timedelta(days=o) for o in offsets]


async def qualified(app, client, engine, referrer, name="Invited Walker"):
    """An invitee who claimed 10 days ago and walked 5 approved days since: held after settle."""
    invitee, referral = await invite(client, referrer, name)
    await backdate(engine, referral["id"], 10)
    await approved_days(engine, invitee["id"], days_back(9, 8, 7, 6, 5))
    return invitee, referral


async def test_only_approved_days_from_the_claim_day_count(app, client, engine):
    referrer = await walker(client)
    invitee, referral = await invite(client, referrer)
    await backdate(engine, referral["id"], 10)
    await approved_days(engine, invitee["id"], days_back(12, 11, 9, 8, 7, 6))  # 12, 11: before
    async with engine.begin() as conn:  # a day in review or rejected credits no steps
        await conn.execute(
            text(
                "INSERT INTO step_days (user_id, recorded_date, credited_steps, coins_pending) "
                "VALUES (:u, :d, 0, 90)"
            ),
            {"u": invitee["id"], "d": today() - timedelta(days=5)},
        )
    assert (await settle(app))["qualified"] == 0
    pending = await row(engine, referral["id"])
    assert pending.status == "pending" and pending.approved_days == 4
    await approved_days(engine, invitee["id"], days_back(5))  # approved after review
    now = datetime.now(UTC)
    assert (await settle(app, now))["qualified"] == 1
    held = await row(engine, referral["id"])
    assert held.status == "held" and held.approved_days == 5
    assert held.hold_until == now + timedelta(days=7)


async def test_the_window_passing_without_enough_days_expires_it(app, client, engine):
    referrer = await walker(client)
    invitee, referral = await invite(client, referrer)
    await backdate(engine, referral["id"], 31)
    await approved_days(engine, invitee["id"], days_back(30, 29))
    assert (await settle(app))["expired"] == 1
    expired = await row(engine, referral["id"])
    assert expired.status == "expired" and expired.reasons == ["not_enough_days"]
    assert expired.approved_days == 2
    listed = (await client.get("/v1/me/referrals", headers=referrer["headers"])).json()
    assert listed["items"][0]["status"] == "expired"
    assert "2 of the 5 days" in listed["items"][0]["reason"]
    assert listed["items"][0]["coins"] == 0


async def test_held_then_paid_once_to_both_sides(app, client, engine):
    referrer = await walker(client)
    invitee, referral = await qualified(app, client, engine, referrer)
    await settle(app)
    assert (await row(engine, referral["id"])).status == "held"
    assert (await settle(app, later(6)))["paid"] == 0  # still on hold
    assert (await settle(app, later(8)))["paid"] == 1
    paid = await row(engine, referral["id"])
    assert paid.status == "paid" and paid.referrer_coins == 500 and paid.invitee_coins == 250
    for _ in range(2):
        assert (await settle(app, later(9)))["paid"] == 0
    rid = referral["id"]
    assert await rewards(engine, referrer["id"]) == [(500, f"referral:{rid}:referrer")]
    assert await rewards(engine, invitee["id"]) == [(250, f"referral:{rid}:invitee")]
    await ledger_ok(engine)


async def test_two_settles_at_once_pay_each_referral_once(app, client, engine):
    referrers = [await walker(client) for _ in range(3)]
    invitees = []
    for referrer in referrers:
        for _ in range(2):
            invitees.append(await qualified(app, client, engine, referrer))
    await settle(app)
    results = await asyncio.gather(settle(app, later(8)), settle(app, later(8)))
    assert sum(r["paid"] for r in results) == 6
    async with engine.connect() as conn:
        counted = (
            await conn.execute(
                text(
                    "SELECT count(*), count(DISTINCT reference_id), sum(amount) "
                    "FROM coin_transactions WHERE transaction_type = 'referral_reward'"
                )
            )
        ).one()
    assert tuple(counted) == (12, 12, 6 * 750)
    await ledger_ok(engine)


async def test_the_monthly_cap_pays_the_invitee_but_not_the_referrer(app, client, engine):
    await set_terms(engine, monthly_cap=1)
    referrer = await walker(client)
    first, one = await qualified(app, client, engine, referrer, "First Friend")
    second, two = await qualified(app, client, engine, referrer, "Second Friend")
    await settle(app)
    assert (await settle(app, later(8)))["capped"] == 1
    rows = {r.id: r for r in [await row(engine, one["id"]), await row(engine, two["id"])]}
    assert all(r.status == "paid" and r.invitee_coins == 250 for r in rows.values())
    assert sorted(r.referrer_coins for r in rows.values()) == [0, 500]
    capped = next(r for r in rows.values() if r.referrer_coins == 0)
    assert capped.reasons == ["referrer_monthly_cap"]
    assert [a for a, _ in await rewards(engine, referrer["id"])] == [500]
    assert await rewards(engine, first["id"]) and await rewards(engine, second["id"])
    listed = (await client.get("/v1/me/referrals", headers=referrer["headers"])).json()
    reasons = {i["id"]: i["reason"] for i in listed["items"]}
    assert "this month's limit of 1" in reasons[capped.id]


async def test_a_claim_keeps_its_terms_when_they_change(app, client, engine):
    referrer = await walker(client)
    _, referral = await qualified(app, client, engine, referrer)
    await set_terms(engine, referrer_coins=9000, invitee_coins=9000, hold_days=30)
    await settle(app)
    await settle(app, later(8))
    paid = await row(engine, referral["id"])
    assert (paid.status, paid.referrer_coins, paid.invitee_coins) == ("paid", 500, 250)


async def test_the_referrers_list_shows_each_invitee_status_and_why(app, client, engine):
    referrer = await walker(client)
    _, waiting = await invite(client, referrer, "Walter Waiting")
    _, held = await qualified(app, client, engine, referrer, "Hilda Held")
    await settle(app)
    first = await client.get("/v1/me/referrals?limit=1", headers=referrer["headers"])
    assert first.status_code == 200, first.text
    page = first.json()
    assert [i["id"] for i in page["items"]] == [waiting["id"]]  # newest claim first
    item = page["items"][0]
    assert item["invitee"] == {"display_name": "Walter"}
    assert item["status"] == "pending" and item["days_needed"] == 5
    assert item["approved_days"] == 0 and item["coins"] == 500
    assert item["qualifies_by"] == (today() + timedelta(days=29)).isoformat()
    assert "Waiting for 5 days with approved steps" in item["reason"]
    rest = await client.get(
        f"/v1/me/referrals?limit=1&cursor={page['next_cursor']}", headers=referrer["headers"]
    )
    second = rest.json()
    assert rest.json()["next_cursor"] is None
    assert second["items"][0]["id"] == held["id"] and second["items"][0]["status"] == "held"
    assert second["items"][0]["invitee"]["display_name"] == "Hilda"
    assert "Qualified" in second["items"][0]["reason"] and second["items"][0]["pays_on"]
    # the invitee sees none of it; a bad cursor is 422
    bad = await client.get("/v1/me/referrals?cursor=nonsense", headers=referrer["headers"])
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"

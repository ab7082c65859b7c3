"""Issue 16's done-when, end to end through the API: a simulated farm (one device, 10 accounts,
a referral ring of 5) is caught and no coin of it is paid without review; an honest family (two
phones, one home address, referring each other) is not flagged."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from stepcoin.db import session_scope
from stepcoin.fairplay import links
from tests.conftest import bearer, register
from tests.referrals.helpers import later, rewards, row, set_terms, settle
from tests.steps.helpers import ledger_ok, make_admin, rec, sync

FARM_ADDRESS = "198.51.100.66"
HOME_ADDRESS = "198.51.100.10"
SERIES = [(6, 9100), (5, 8800), (4, 9400), (3, 9000), (2, 8700), (1, 9300)]


async def coins_of(engine: Any, user_ids: list[str]) -> tuple[int, int]:
    """(paid, pending) coins of these walkers together."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT coalesce(sum(available_coins), 0), coalesce(sum(pending_coins), 0) "
                    "FROM wallets WHERE user_id = ANY(CAST(:ids AS uuid[]))"
                ),
                {"ids": user_ids},
            )
        ).one()
    return int(row[0]), int(row[1])


async def claim_each_others(client: Any, pairs: list[tuple[dict, dict]]) -> list[dict]:
    """Each (referrer, invitee): the invitee claims the referrer's code through the API."""
    made = []
    for referrer, invitee in pairs:
        mine = await client.get("/v1/me/referral", headers=bearer(referrer["access_token"]))
        claimed = await client.post(
            "/v1/referrals/claim",
            json={"code": mine.json()["code"]},
            headers=bearer(invitee["access_token"]),
        )
        assert claimed.status_code == 201, claimed.text
        made.append(claimed.json())
    return made


async def test_a_farm_is_caught_and_paid_nothing_without_review(client, app, engine):
    admin = await make_admin(client, engine)
    await set_terms(engine, qualifying_days=1)  # one approved day would qualify a referral
    farm = [await register(client, address=FARM_ADDRESS) for _ in range(10)]
    ids = [account["user"]["id"] for account in farm]
    ring = farm[:5]  # each invites the next, the last invites the first
    referrals = await claim_each_others(client, [(ring[i], ring[(i + 1) % 5]) for i in range(5)])
    for account in farm:  # the same phone replays the same week on every account
        answers = await sync(
            client,
            account["access_token"],
            *(rec(offset, steps, device_id="farm-phone") for offset, steps in SERIES),
        )
        assert {a["status"] for a in answers} == {"flagged"}, answers
        assert all("signup_burst" in a["reasons"] for a in answers)
    async with session_scope(app.state.database) as session:
        assert (await links.scan_series(session))["flags"] == 10
    for account in farm:
        today = await sync(client, account["access_token"], rec(0, 9200, device_id="farm-phone"))
        assert today[0]["status"] == "flagged"
        assert {"shared_device", "signup_burst", "same_series"} <= set(today[0]["reasons"])

    for now in (None, later(8), later(31)):  # the settle job, before and after the hold
        await settle(app, now)
    for referral in referrals:
        state = await row(engine, referral["id"])
        assert state.status == "review", state
        assert "shared_address" in state.reasons  # ten accounts from one address
    assert (await row(engine, referrals[-1]["id"])).reasons.count("referral_ring") == 1
    assert all([await rewards(engine, i) == [] for i in ids])
    listed = await client.get("/v1/admin/referrals?status=review", headers=bearer(admin))
    assert {r["id"] for r in listed.json()["items"]} >= {r["id"] for r in referrals}

    paid, pending = await coins_of(engine, ids)
    assert paid == 0 and pending > 0  # every coin waits for a reviewer
    queue = await client.get(
        "/v1/admin/validations?status=flagged&limit=200", headers=bearer(admin)
    )
    mine = [item for item in queue.json()["items"] if item["user"]["id"] in ids]
    assert len(mine) == 10 * (len(SERIES) + 1)
    assert all(len(item["linked_accounts"]) == 9 for item in mine)
    for account in farm:
        told = await client.get("/v1/me/standing", headers=bearer(account["access_token"]))
        assert told.json()["standing"] == "limited"
    await ledger_ok(engine)


async def test_an_honest_family_is_not_flagged(client, app, engine):
    await set_terms(engine, qualifying_days=1)
    parent = await register(client, address=HOME_ADDRESS)
    child = await register(client, address=HOME_ADDRESS)
    referrals = await claim_each_others(client, [(parent, child), (child, parent)])
    for who, phone, shift in ((parent, "parent-phone", 0), (child, "child-phone", 1700)):
        answers = await sync(
            client,
            who["access_token"],
            *(rec(offset, steps - shift, device_id=phone) for offset, steps in SERIES),
        )
        assert {a["status"] for a in answers} == {"approved"}, answers
    paid, pending = await coins_of(engine, [parent["user"]["id"], child["user"]["id"]])
    assert paid > 0 and pending == 0
    for who in (parent, child):
        told = await client.get("/v1/me/standing", headers=bearer(who["access_token"]))
        assert told.json()["checks"] == []
    for who, phone in ((parent, "parent-phone"), (child, "child-phone")):
        today = await sync(client, who["access_token"], rec(0, 5200, device_id=phone))
        assert today[0]["status"] == "approved"  # a day walked since the claim
    await settle(app)
    await settle(app, later(8))  # past the hold: each referral paid, both sides, once
    for referral in referrals:
        assert (await row(engine, referral["id"])).status == "paid"
    for who in (parent, child):
        amounts = sorted(amount for amount, _ in await rewards(engine, who["user"]["id"]))
        assert amounts == [250, 500]  # invited by the other, and invited the other
    await ledger_ok(engine)

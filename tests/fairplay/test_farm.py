"""Issue 16's done-when, end to end through the API: a simulated farm (one device, 10 accounts,
a referral ring of 5) is caught and no coin of it is paid without review; an honest family (two
phones, one home address, referring each other) is not flagged."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from stepcoin.db import session_scope
from stepcoin.fairplay import links
from tests.conftest import bearer, register
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


async def test_a_farm_is_caught_and_paid_nothing_without_review(client, app, engine):
    admin = await make_admin(client, engine)
    farm = [await register(client, address=FARM_ADDRESS) for _ in range(10)]
    ids = [account["user"]["id"] for account in farm]
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


async def test_an_honest_family_is_not_flagged(client, engine):
    parent = await register(client, address=HOME_ADDRESS)
    child = await register(client, address=HOME_ADDRESS)
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

"""Issue 16 item 3: each self-referral signal of stepcoin.fairplay sends a referral to review,
at the claim or again before paying; the reviewer sees the reason, the referrer plain words."""

from __future__ import annotations

from stepcoin.db import session_scope
from stepcoin.fairplay import links
from tests.conftest import bearer, fresh_address, register
from tests.referrals.helpers import (
    approved_days,
    backdate,
    claim,
    code_of,
    invite,
    later,
    rewards,
    row,
    set_setting,
    settle,
    walker,
)
from tests.referrals.test_settle import days_back
from tests.steps.helpers import rec, sync


def on(device: str, offset: int = 0, steps: int = 4000) -> dict:
    return rec(offset, steps, device_id=device)


async def test_two_accounts_syncing_one_device_go_to_review_at_the_claim(client, engine):
    referrer, invitee = await walker(client, "Rolf Referrer"), await walker(client, "Ines")
    await sync(client, referrer["access_token"], on("pixel-7-shared"))
    await sync(client, invitee["access_token"], on("pixel-7-shared"))
    referral = await claim(client, invitee, await code_of(client, referrer))
    assert referral["status"] == "review"
    # the shared device also costs both their trust (a linked account, a flagged day)
    assert (await row(engine, referral["id"])).reasons[0] == "shared_device"
    listed = (await client.get("/v1/me/referrals", headers=referrer["headers"])).json()
    assert "device" not in listed["items"][0]["reason"]


async def test_a_device_shared_after_the_claim_is_seen_before_paying(app, client, engine):
    referrer = await walker(client)
    invitee, referral = await invite(client, referrer)
    assert referral["status"] == "pending"
    await backdate(engine, referral["id"], 10)
    await approved_days(engine, invitee["id"], days_back(9, 8, 7, 6, 5))
    await settle(app)
    await sync(client, referrer["access_token"], on("old-iphone"))
    await sync(client, invitee["access_token"], on("old-iphone"))
    assert (await settle(app, later(8)))["to_review"] == 1
    held = await row(engine, referral["id"])
    assert held.status == "review" and held.reasons == ["shared_device"]
    assert await rewards(engine, referrer["id"]) == []


async def test_accounts_from_one_busy_address_go_to_review(client, engine):
    address = fresh_address()
    accounts = [await register(client, address=address, full_name=f"W{i}") for i in range(5)]
    referrer, invitee = accounts[0], accounts[4]
    for account in (referrer, invitee):
        account["headers"] = bearer(account["access_token"])
    referral = await claim(client, invitee, await code_of(client, referrer))
    assert referral["status"] == "review"
    assert (await row(engine, referral["id"])).reasons == ["shared_address"]


async def test_a_household_address_alone_is_no_signal(client):
    address = fresh_address()
    referrer, invitee = [await register(client, address=address) for _ in range(2)]
    for account in (referrer, invitee):
        account["headers"] = bearer(account["access_token"])
    referral = await claim(client, invitee, await code_of(client, referrer))
    assert referral["status"] == "pending"


async def test_the_same_series_of_steps_goes_to_review(app, client, engine):
    referrer, invitee = await walker(client), await walker(client)
    series = [rec(offset, 3000 + 111 * offset) for offset in range(5)]
    await sync(client, referrer["access_token"], *series)
    await sync(client, invitee["access_token"], *series)
    async with session_scope(app.state.database) as session:
        assert (await links.scan_series(session))["flags"] == 2
    referral = await claim(client, invitee, await code_of(client, referrer))
    assert referral["status"] == "review"
    assert "same_series" in (await row(engine, referral["id"])).reasons


async def test_a_low_trust_score_on_either_side_goes_to_review(client, engine):
    await set_setting(engine, "referrals.review_below_trust", 51)  # a new walker scores 50
    referrer = await walker(client)
    _, referral = await invite(client, referrer)
    assert referral["status"] == "review"
    assert (await row(engine, referral["id"])).reasons == ["low_trust"]
    await set_setting(engine, "referrals.review_below_trust", 0)  # 0: never
    _, other = await invite(client, referrer)
    assert other["status"] == "pending"

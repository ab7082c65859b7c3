"""Issue 16 item 3: the walker's referrals in the data export; deletion ends what is not paid
(cancelled), keeps what was paid, and the deleted walker's code can no longer be claimed."""

from __future__ import annotations

from tests.accounts.helpers import delete_me
from tests.conftest import TEST_PASSWORD
from tests.referrals.helpers import (
    approved_days,
    backdate,
    claim,
    code_of,
    invite,
    later,
    rewards,
    row,
    settle,
    walker,
)
from tests.referrals.test_settle import days_back


async def test_the_export_holds_the_code_the_claim_and_the_invitees(client):
    referrer = await walker(client)
    invitee, referral = await invite(client, referrer, "Ella Export")
    mine = await client.get("/v1/me/export", headers=referrer["headers"])
    assert mine.status_code == 200, mine.text
    part = mine.json()["referrals"]
    assert part["code"] == await code_of(client, referrer)
    assert part["claimed"] is None
    assert [(i["id"], i["invitee"]["display_name"]) for i in part["invited"]] == [
        (referral["id"], "Ella")
    ]
    theirs = (await client.get("/v1/me/export", headers=invitee["headers"])).json()["referrals"]
    assert theirs["claimed"]["code"] == part["code"]
    assert theirs["claimed"]["status"] == "pending" and theirs["invited"] == []


async def test_deletion_cancels_open_referrals_keeps_paid_ones_and_retires_the_code(
    app, client, engine
):
    referrer = await walker(client)
    paid_invitee, paid = await invite(client, referrer, "Paula Paid")
    await backdate(engine, paid["id"], 10)
    await approved_days(engine, paid_invitee["id"], days_back(9, 8, 7, 6, 5))
    await settle(app)
    await settle(app, later(8))
    assert (await row(engine, paid["id"])).status == "paid"
    _, waiting = await invite(client, referrer, "Walter Waiting")
    code = await code_of(client, referrer)

    gone = await delete_me(client, referrer["access_token"], password=TEST_PASSWORD)
    assert gone.status_code == 204, gone.text
    cancelled = await row(engine, waiting["id"])
    assert cancelled.status == "cancelled" and cancelled.reasons == ["account_deleted"]
    kept = await row(engine, paid["id"])
    assert kept.status == "paid" and kept.referrer_coins == 500
    assert len(await rewards(engine, referrer["id"])) == 1  # the books stay
    latecomer = await walker(client)
    response = await client.post(
        "/v1/referrals/claim", json={"code": code}, headers=latecomer["headers"]
    )
    assert response.status_code == 404 and response.json()["code"] == "referral_code_unknown"


async def test_a_deleted_invitee_ends_the_referral_and_shows_as_deleted(client):
    referrer = await walker(client)
    invitee = await walker(client, "Dora Deleted")
    referral = await claim(client, invitee, await code_of(client, referrer))
    gone = await delete_me(client, invitee["access_token"], password=TEST_PASSWORD)
    assert gone.status_code == 204
    item = (await client.get("/v1/me/referrals", headers=referrer["headers"])).json()["items"][0]
    assert item["id"] == referral["id"] and item["status"] == "cancelled"
    assert item["invitee"]["display_name"] == "A deleted account"
    assert "deleted" in item["reason"]

"""Issue 12 hole 7 (rest): wallet adjustments above `admin.adjustment_approval_threshold_coins`
wait for a second admin; the requester (and the walker adjusted) never approve; an approval
moves the coins exactly once, however many arrive at once."""

from __future__ import annotations

import asyncio

from tests.admin.helpers import adjust, count, ledger_report, make_staff, wallet_row
from tests.conftest import register

THRESHOLD = 10_000  # the setting's default


async def test_below_the_threshold_applies_at_once(client, engine):
    admin = await make_staff(client, engine)
    walker = await register(client)
    response = await adjust(client, admin, walker["user"]["id"], THRESHOLD)
    assert response.status_code == 201, response.text
    assert (await wallet_row(engine, walker["user"]["id"])).available_coins == THRESHOLD
    assert await count(engine, "SELECT count(*) FROM adjustment_requests") == 0


async def test_above_the_threshold_waits_for_a_second_admin(client, engine):
    requester = await make_staff(client, engine)
    second = await make_staff(client, engine)
    walker = await register(client)
    user_id = walker["user"]["id"]
    asked = await adjust(client, requester, user_id, 1_000_000, "bonus for the marathon")
    assert asked.status_code == 202, asked.text
    pending = asked.json()
    assert pending["status"] == "pending" and pending["amount"] == 1_000_000
    assert pending["requested_by"] == requester["user"]["id"]
    assert (await wallet_row(engine, user_id)).available_coins == 0
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == 0

    listed = await client.get("/v1/admin/adjustments?status=pending", headers=second["headers"])
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()["items"]] == [pending["id"]]

    own = await client.post(
        f"/v1/admin/adjustments/{pending['id']}/approve", headers=requester["headers"]
    )
    assert own.status_code == 403 and own.json()["code"] == "own_request"
    walker_token = {"Authorization": f"Bearer {walker['access_token']}"}
    not_staff = await client.post(
        f"/v1/admin/adjustments/{pending['id']}/approve", headers=walker_token
    )
    assert not_staff.status_code == 403
    assert (await wallet_row(engine, user_id)).available_coins == 0

    approved = await client.post(
        f"/v1/admin/adjustments/{pending['id']}/approve", headers=second["headers"]
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["decided_by"] == second["user"]["id"]
    assert (await wallet_row(engine, user_id)).available_coins == 1_000_000
    again = await client.post(
        f"/v1/admin/adjustments/{pending['id']}/approve", headers=second["headers"]
    )
    assert again.status_code == 409 and again.json()["code"] == "adjustment_already_decided"
    assert (
        await count(
            engine, "SELECT count(*) FROM admin_logs WHERE action = 'wallet.adjustment_requested'"
        )
        == 1
    )
    assert (
        await count(engine, "SELECT count(*) FROM admin_logs WHERE action = 'wallet.adjust'") == 1
    )
    assert (await ledger_report(engine)).ok


async def test_an_admin_cannot_approve_a_request_for_their_own_wallet(client, engine):
    requester = await make_staff(client, engine)
    beneficiary = await make_staff(client, engine)
    asked = await adjust(client, requester, beneficiary["user"]["id"], 50_000)
    assert asked.status_code == 202
    own = await client.post(
        f"/v1/admin/adjustments/{asked.json()['id']}/approve", headers=beneficiary["headers"]
    )
    assert own.status_code == 403 and own.json()["code"] == "own_wallet"
    assert (await wallet_row(engine, beneficiary["user"]["id"])).available_coins == 0


async def test_two_parallel_approvals_move_the_coins_once(client, engine):
    requester = await make_staff(client, engine)
    approvers = [await make_staff(client, engine) for _ in range(2)]
    walker = await register(client)
    asked = await adjust(client, requester, walker["user"]["id"], 20_000)
    request_id = asked.json()["id"]
    answers = await asyncio.gather(
        *[
            client.post(f"/v1/admin/adjustments/{request_id}/approve", headers=a["headers"])
            for a in approvers * 2
        ]
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 409, 409, 409], [r.text for r in answers]
    assert (await wallet_row(engine, walker["user"]["id"])).available_coins == 20_000
    assert (
        await count(
            engine,
            "SELECT count(*) FROM coin_transactions WHERE reference_id = :r",
            r=f"adjreq:{request_id}",
        )
        == 1
    )


async def test_a_rejected_request_moves_nothing(client, engine):
    requester = await make_staff(client, engine)
    second = await make_staff(client, engine)
    walker = await register(client)
    asked = await adjust(client, requester, walker["user"]["id"], -20_000, "clawback")
    request_id = asked.json()["id"]
    own = await client.post(
        f"/v1/admin/adjustments/{request_id}/reject", headers=requester["headers"]
    )
    assert own.status_code == 403
    rejected = await client.post(
        f"/v1/admin/adjustments/{request_id}/reject", headers=second["headers"]
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    late = await client.post(
        f"/v1/admin/adjustments/{request_id}/approve", headers=second["headers"]
    )
    assert late.status_code == 409
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == 0
    assert (
        await count(
            engine, "SELECT count(*) FROM admin_logs WHERE action = 'wallet.adjustment_rejected'"
        )
        == 1
    )


async def test_a_retried_request_with_the_same_key_is_one_request(client, engine):
    requester = await make_staff(client, engine)
    walker = await register(client)
    first = await adjust(client, requester, walker["user"]["id"], 30_000, key="big-1")
    again = await adjust(client, requester, walker["user"]["id"], 30_000, key="big-1")
    assert first.status_code == again.status_code == 202
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert first.json()["id"] == again.json()["id"]
    assert await count(engine, "SELECT count(*) FROM adjustment_requests") == 1


async def test_a_request_key_reused_for_another_walker_is_refused(client, engine):
    """The request's id comes from (admin, key); its primary key is (id, user_id) (issue 19
    item 4), so request() itself refuses the key for a second walker, under a lock."""
    admin = await make_staff(client, engine)
    walker, other = await register(client), await register(client)
    first = await adjust(client, admin, walker["user"]["id"], 1_000_000, key="req-1")
    replay = await adjust(client, admin, walker["user"]["id"], 1_000_000, key="req-1")
    assert (first.status_code, replay.status_code) == (202, 202), replay.text
    assert replay.json()["id"] == first.json()["id"]
    racing = await asyncio.gather(
        *(adjust(client, admin, other["user"]["id"], 1_000_000, key="req-1") for _ in range(3))
    )
    assert [(r.status_code, r.json()["code"]) for r in racing] == [
        (422, "idempotency_key_reused")
    ] * 3
    assert await count(engine, "SELECT count(*) FROM adjustment_requests") == 1

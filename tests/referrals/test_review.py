"""Issue 16 item 3: signals send a referral to review (a ring of three, a burst of claims);
staff approve or reject it (audited), never their own; the referrer sees the outcome."""

from __future__ import annotations

from sqlalchemy import text

from tests.admin.helpers import make_staff
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


async def audit_rows(engine) -> list[tuple[str, str, str | None]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT action, entity_id, admin_id::text AS admin FROM admin_logs "
                "WHERE entity_type = 'referral' ORDER BY id"
            )
        )
        return [(r.action, r.entity_id, r.admin) for r in rows]


async def ring_of_three(client):
    """A invites B, B invites C, then A (still new) claims C's code: the chain comes back."""
    a, b, c = [await walker(client, n) for n in ("Anna A", "Bert B", "Carl C")]
    ab = await claim(client, b, await code_of(client, a))
    bc = await claim(client, c, await code_of(client, b))
    ca = await claim(client, a, await code_of(client, c))
    return (a, b, c), (ab, bc, ca)


async def test_a_ring_of_three_goes_to_review_at_the_claim_and_before_paying(app, client, engine):
    (a, b, c), (ab, bc, ca) = await ring_of_three(client)
    assert (ab["status"], bc["status"]) == ("pending", "pending")
    assert ca["status"] == "review"
    assert (await row(engine, ca["id"])).reasons == ["referral_ring"]
    # the first two qualify; before paying, the ring is seen again
    for walker_, referral in ((b, ab), (c, bc)):
        await backdate(engine, referral["id"], 10)
        await approved_days(engine, walker_["id"], days_back(9, 8, 7, 6, 5))
    await settle(app)
    assert (await settle(app, later(8)))["to_review"] == 2
    for referral in (ab, bc):
        again = await row(engine, referral["id"])
        assert again.status == "review" and again.reasons == ["referral_ring"]
    assert await rewards(engine, a["id"]) == [] and await rewards(engine, b["id"]) == []
    listed = (await client.get("/v1/me/referrals", headers=a["headers"])).json()
    assert listed["items"][0]["status"] == "review"
    assert "checking this invitation" in listed["items"][0]["reason"]
    assert "ring" not in listed["items"][0]["reason"]  # plain words, not the signal


async def test_a_burst_of_claims_of_one_code_goes_to_review(client, engine):
    await set_setting(engine, "referrals.burst_claims_per_day", 2)
    referrer = await walker(client)
    statuses = [(await invite(client, referrer))[1]["status"] for _ in range(4)]
    assert statuses == ["pending", "pending", "review", "review"]
    async with engine.connect() as conn:
        reasons = (
            await conn.execute(text("SELECT reasons FROM referrals ORDER BY id DESC LIMIT 1"))
        ).scalar_one()
    assert reasons == ["referral_burst"]


async def test_staff_list_approve_and_reject_with_audit(app, client, engine):
    support = await make_staff(client, engine, "support")
    (a, b, c), (ab, bc, ca) = await ring_of_three(client)
    plain = await client.get("/v1/admin/referrals", headers=a["headers"])
    assert plain.status_code == 403
    queue = await client.get("/v1/admin/referrals", headers=support["headers"])
    assert queue.status_code == 200, queue.text
    items = queue.json()["items"]
    assert [i["id"] for i in items] == [ca["id"]]
    assert items[0]["reasons"] == ["referral_ring"]
    assert items[0]["referrer"]["id"] == c["id"] and items[0]["invitee"]["id"] == a["id"]
    everything = await client.get("/v1/admin/referrals?status=pending", headers=support["headers"])
    assert {i["id"] for i in everything.json()["items"]} == {ab["id"], bc["id"]}

    missing = await client.post("/v1/admin/referrals/999999/approve", headers=support["headers"])
    assert missing.status_code == 404 and missing.json()["code"] == "referral_not_found"
    not_in_review = await client.post(
        f"/v1/admin/referrals/{ab['id']}/approve", headers=support["headers"]
    )
    assert not_in_review.status_code == 409
    assert not_in_review.json()["code"] == "referral_not_in_review"

    approved = await client.post(
        f"/v1/admin/referrals/{ca['id']}/approve",
        json={"note": "family, checked"},
        headers=support["headers"],
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "pending"  # not qualified yet: it goes on as usual
    assert approved.json()["reviewed_by"] == support["user"]["id"]
    twice = await client.post(f"/v1/admin/referrals/{ca['id']}/reject", headers=support["headers"])
    assert twice.status_code == 409

    # the other two go to review before paying; one is rejected with a note for the referrer
    for walker_, referral in ((b, ab), (c, bc)):
        await backdate(engine, referral["id"], 10)
        await approved_days(engine, walker_["id"], days_back(9, 8, 7, 6, 5))
    await settle(app)
    await settle(app, later(8))
    rejected = await client.post(
        f"/v1/admin/referrals/{bc['id']}/reject",
        json={"note": "The same person signed up twice."},
        headers=support["headers"],
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    seen = (await client.get("/v1/me/referrals", headers=b["headers"])).json()["items"][0]
    assert seen["status"] == "rejected" and "The same person signed up twice." in seen["reason"]
    assert seen["coins"] == 0

    # approved while its hold runs: held, then paid; the accepted signal does not send it back
    held = await client.post(f"/v1/admin/referrals/{ab['id']}/approve", headers=support["headers"])
    assert held.status_code == 200 and held.json()["status"] == "held", held.text
    assert (await settle(app, later(9)))["paid"] == 1
    assert [x for x, _ in await rewards(engine, a["id"])] == [500]
    assert [x for x, _ in await rewards(engine, b["id"])] == [250]
    assert (await settle(app, later(10)))["paid"] == 0

    assert await audit_rows(engine) == [
        ("referral.approved", str(ca["id"]), support["user"]["id"]),
        ("referral.rejected", str(bc["id"]), support["user"]["id"]),
        ("referral.approved", str(ab["id"]), support["user"]["id"]),
    ]


async def test_staff_never_decide_their_own_referral(client, engine):
    await set_setting(engine, "referrals.burst_claims_per_day", 1)
    admin = await make_staff(client, engine)
    admin["id"] = admin["user"]["id"]
    await invite(client, admin)
    _, mine = await invite(client, admin)
    assert mine["status"] == "review"
    for action in ("approve", "reject"):
        response = await client.post(
            f"/v1/admin/referrals/{mine['id']}/{action}", headers=admin["headers"]
        )
        assert response.status_code == 403
        assert response.json()["code"] == "own_referral"
    assert await audit_rows(engine) == []


async def test_two_walkers_claiming_each_others_code_are_no_ring(app, client, engine):
    first, second = await walker(client, "Ada One"), await walker(client, "Bo Two")
    one = await claim(client, second, await code_of(client, first))
    other = await claim(client, first, await code_of(client, second))
    for referral in (one, other):
        assert (await row(engine, referral["id"])).status == "pending"

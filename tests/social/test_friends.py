"""Issue 17 item 1: the friends list with private aliases, removal, blocks that hide both
sides, reports to the moderation queue and their resolution (audited)."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.admin.helpers import make_staff
from tests.social.helpers import befriend, friend_ids, invitation, walker


async def test_list_alias_and_remove(client):
    ada, bob, carl = [await walker(client, n) for n in ("Ada Lovelace", "Bob", "Carl")]
    await befriend(client, ada, bob)
    await befriend(client, carl, ada)
    set_ = await client.put(
        f"/v1/friends/{bob['id']}/alias", json={"alias": "  Bobby  "}, headers=ada["headers"]
    )
    assert set_.status_code == 200 and set_.json()["alias"] == "Bobby"
    listed = (await client.get("/v1/friends", headers=ada["headers"])).json()["items"]
    assert {i["user_id"]: i["alias"] for i in listed} == {bob["id"]: "Bobby", carl["id"]: None}
    # the alias is ada's alone
    bobs = (await client.get("/v1/friends", headers=bob["headers"])).json()["items"]
    assert bobs[0]["display_name"] == "Ada" and bobs[0]["alias"] is None
    cleared = await client.put(
        f"/v1/friends/{bob['id']}/alias", json={"alias": None}, headers=ada["headers"]
    )
    assert cleared.json()["alias"] is None
    # not a friend
    nobody = await client.put(
        f"/v1/friends/{uuid.uuid4()}/alias", json={"alias": "x"}, headers=ada["headers"]
    )
    assert nobody.status_code == 404 and nobody.json()["code"] == "friend_not_found"

    assert (
        await client.delete(f"/v1/friends/{bob['id']}", headers=ada["headers"])
    ).status_code == 204
    assert await friend_ids(client, ada) == [carl["id"]]
    assert await friend_ids(client, bob) == []
    again = await client.delete(f"/v1/friends/{bob['id']}", headers=ada["headers"])
    assert again.status_code == 404 and again.json()["code"] == "friend_not_found"


async def test_a_block_ends_the_friendship_and_hides_both_sides(client):
    ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
    await befriend(client, ada, bob)
    bobs_code = (await invitation(client, bob))["code"]
    blocked = await client.post("/v1/blocks", json={"user_id": bob["id"]}, headers=ada["headers"])
    assert blocked.status_code == 200 and blocked.json() == {"user_id": bob["id"]}
    assert await friend_ids(client, ada) == [] and await friend_ids(client, bob) == []
    # the blocker does not see the blocked walker's codes either
    hidden = await client.get(f"/v1/friends/invitations/{bobs_code}", headers=ada["headers"])
    assert hidden.status_code == 404
    # idempotent, listed, and lifted
    again = await client.post("/v1/blocks", json={"user_id": bob["id"]}, headers=ada["headers"])
    assert again.status_code == 200
    listed = (await client.get("/v1/blocks", headers=ada["headers"])).json()["items"]
    assert [i["user_id"] for i in listed] == [bob["id"]]
    assert (
        await client.delete(f"/v1/blocks/{bob['id']}", headers=ada["headers"])
    ).status_code == 204
    assert (await client.get("/v1/blocks", headers=ada["headers"])).json()["items"] == []
    # the friendship does not come back; the code works again
    assert await friend_ids(client, ada) == []
    seen = await client.get(f"/v1/friends/invitations/{bobs_code}", headers=ada["headers"])
    assert seen.status_code == 200


async def test_blocking_oneself_or_nobody(client):
    ada = await walker(client)
    own = await client.post("/v1/blocks", json={"user_id": ada["id"]}, headers=ada["headers"])
    assert own.status_code == 422 and own.json()["code"] == "self_block"
    nobody = await client.post(
        "/v1/blocks", json={"user_id": str(uuid.uuid4())}, headers=ada["headers"]
    )
    assert nobody.status_code == 404 and nobody.json()["code"] == "user_not_found"


async def test_reports_go_to_the_queue_and_staff_resolve_them_audited(client, engine):
    ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
    support = await make_staff(client, engine, "support")
    made = await client.post(
        "/v1/reports",
        json={"user_id": bob["id"], "reason": "rude messages"},
        headers=ada["headers"],
    )
    assert made.status_code == 201, made.text
    report = made.json()
    assert report["status"] == "open" and report["user_id"] == bob["id"]
    own = await client.post("/v1/reports", json={"user_id": ada["id"]}, headers=ada["headers"])
    assert own.status_code == 422 and own.json()["code"] == "self_report"

    # walkers cannot read the queue
    assert (await client.get("/v1/admin/reports", headers=ada["headers"])).status_code == 403
    queue = await client.get("/v1/admin/reports?status=open", headers=support["headers"])
    assert queue.status_code == 200, queue.text
    [item] = queue.json()["items"]
    assert item["id"] == report["id"] and item["reason"] == "rude messages"
    assert item["reporter"]["id"] == ada["id"] and item["reported"]["id"] == bob["id"]

    resolved = await client.post(
        f"/v1/admin/reports/{report['id']}/resolve",
        json={"note": "warned"},
        headers=support["headers"],
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved" and resolved.json()["note"] == "warned"
    assert resolved.json()["resolved_by"] == support["user"]["id"]
    twice = await client.post(
        f"/v1/admin/reports/{report['id']}/resolve", headers=support["headers"]
    )
    assert twice.status_code == 409 and twice.json()["code"] == "report_already_resolved"
    assert (await client.get("/v1/admin/reports", headers=support["headers"])).json()["items"] == []
    missing = await client.post("/v1/admin/reports/999999/resolve", headers=support["headers"])
    assert missing.status_code == 404 and missing.json()["code"] == "report_not_found"
    async with engine.connect() as conn:
        logs = (
            await conn.execute(
                text(
                    "SELECT action, entity_id, admin_id::text FROM admin_logs "
                    "WHERE entity_type = 'report'"
                )
            )
        ).all()
    assert logs == [("report.resolved", str(report["id"]), support["user"]["id"])]


async def test_staff_never_resolve_a_report_about_themselves(client, engine):
    ada = await walker(client, "Ada")
    admin = await make_staff(client, engine, "admin")
    made = await client.post(
        "/v1/reports", json={"user_id": admin["user"]["id"]}, headers=ada["headers"]
    )
    report_id = made.json()["id"]
    own = await client.post(f"/v1/admin/reports/{report_id}/resolve", headers=admin["headers"])
    assert own.status_code == 403 and own.json()["code"] == "own_report"
    other = await make_staff(client, engine, "support")
    done = await client.post(f"/v1/admin/reports/{report_id}/resolve", headers=other["headers"])
    assert done.status_code == 200

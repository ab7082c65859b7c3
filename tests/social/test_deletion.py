"""Issue 17 item 1: account deletion removes the walker's friendships, invitations, requests
and blocks (reports made stay for moderation); the export lists friends, blocks, reports."""

from __future__ import annotations

from sqlalchemy import text

from tests.accounts.helpers import delete_me
from tests.social.helpers import befriend, friend_ids, invitation, walker


async def test_export_lists_friends_blocks_and_reports(client):
    ada, bob, carl = [await walker(client, n) for n in ("Ada", "Bob", "Carl")]
    await befriend(client, ada, bob)
    await client.put(f"/v1/friends/{bob['id']}/alias", json={"alias": "B"}, headers=ada["headers"])
    await client.post("/v1/blocks", json={"user_id": carl["id"]}, headers=ada["headers"])
    await client.post(
        "/v1/reports", json={"user_id": carl["id"], "reason": "spam"}, headers=ada["headers"]
    )
    export = await client.get("/v1/me/export", headers=ada["headers"])
    assert export.status_code == 200, export.text
    friends = export.json()["friends"]
    assert [(f["user_id"], f["alias"]) for f in friends["friends"]] == [(bob["id"], "B")]
    assert [b["user_id"] for b in friends["blocks"]] == [carl["id"]]
    assert [(r["user_id"], r["reason"]) for r in friends["reports"]] == [(carl["id"], "spam")]


async def test_deletion_removes_the_social_graph(client, engine):
    ada, bob, carl = [await walker(client, n) for n in ("Ada", "Bob", "Carl")]
    await befriend(client, ada, bob)
    await invitation(client, ada)
    await client.post("/v1/friends/requests", json={"email": carl["email"]}, headers=ada["headers"])
    await client.post("/v1/friends/requests", json={"email": ada["email"]}, headers=carl["headers"])
    await client.post("/v1/blocks", json={"user_id": ada["id"]}, headers=carl["headers"])
    await client.post("/v1/reports", json={"user_id": carl["id"]}, headers=ada["headers"])

    deleted = await delete_me(client, ada["access_token"], password=ada["password"])
    assert deleted.status_code in (200, 204), deleted.text
    assert await friend_ids(client, bob) == []
    async with engine.connect() as conn:
        counts = {
            table: (
                await conn.execute(
                    text(f"SELECT count(*) FROM {table} WHERE {where}"), {"u": ada["id"]}
                )
            ).scalar_one()
            for table, where in (
                ("friendships", "user_id = :u OR friend_id = :u"),
                ("friend_invitations", "inviter_id = :u"),
                ("friend_requests", "from_id = :u OR to_id = :u"),
                ("blocks", "blocker_id = :u OR blocked_id = :u"),
                ("reports", "reporter_id = :u"),
            )
        }
        audit = (
            await conn.execute(
                text(
                    "SELECT changes ->> 'friends_removed' FROM admin_logs "
                    "WHERE action = 'account.deleted'"
                )
            )
        ).scalar_one()
    assert counts == {
        "friendships": 0,
        "friend_invitations": 0,
        "friend_requests": 0,
        "blocks": 0,
        "reports": 1,
    }
    assert audit == "1"

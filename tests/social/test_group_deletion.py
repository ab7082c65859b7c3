"""Account deletion and export cover groups: an owned group goes to its oldest admin (else its
oldest member) or away when its owner was alone; memberships, requests and bans go."""

from __future__ import annotations

from sqlalchemy import text

from tests.accounts.helpers import delete_me
from tests.social.helpers import walker


async def make(client, owner, name, open_=True):
    response = await client.post(
        "/v1/groups", json={"name": name, "kind": "club", "open": open_}, headers=owner["headers"]
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_export_lists_groups_and_requests(client):
    ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
    mine = await make(client, ada, "Mine")
    closed = await make(client, bob, "Closed", open_=False)
    await client.post(f"/v1/groups/{closed}/join", headers=ada["headers"])
    export = await client.get("/v1/me/export", headers=ada["headers"])
    assert export.status_code == 200, export.text
    groups = export.json()["groups"]
    assert groups["memberships"] == [{"group_id": mine, "name": "Mine", "role": "owner"}]
    assert [r["group_id"] for r in groups["join_requests"]] == [closed]


async def test_deletion_hands_owned_groups_over_or_deletes_them(client, engine):
    ada, bob, carl, dan = [await walker(client, n) for n in ("Ada", "Bob", "Carl", "Dan")]
    shared = await make(client, ada, "Shared")
    alone = await make(client, ada, "Alone")
    others = await make(client, dan, "Dan's", open_=False)
    for account in (bob, carl):
        await client.post(f"/v1/groups/{shared}/join", headers=account["headers"])
    # carl joined later but is an admin: an admin comes first
    promoted = await client.put(
        f"/v1/groups/{shared}/members/{carl['id']}/role",
        json={"role": "admin"},
        headers=ada["headers"],
    )
    assert promoted.status_code == 200
    await client.post(f"/v1/groups/{others}/join", headers=ada["headers"])
    await client.post(f"/v1/groups/{others}/members/{ada['id']}/ban", headers=dan["headers"])

    deleted = await delete_me(client, ada["access_token"], password=ada["password"])
    assert deleted.status_code in (200, 204), deleted.text

    group = (await client.get(f"/v1/groups/{shared}", headers=bob["headers"])).json()
    assert group["owner_id"] == carl["id"] and group["member_count"] == 2
    gone = await client.get(f"/v1/groups/{alone}", headers=bob["headers"])
    assert gone.status_code == 404
    async with engine.connect() as conn:
        left = {
            table: (
                await conn.execute(
                    text(f"SELECT count(*) FROM {table} WHERE user_id = :u"), {"u": ada["id"]}
                )
            ).scalar_one()
            for table in ("group_members", "group_join_requests", "group_bans")
        }
    assert left == {"group_members": 0, "group_join_requests": 0, "group_bans": 0}

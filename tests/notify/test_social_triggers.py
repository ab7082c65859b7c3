"""Issue 18 item 6, the walkers' graph: a friend request tells the addressee once, an
accepted request or invitation tells the walker who asked once."""

from __future__ import annotations

from tests.notify.helpers import rows
from tests.social.helpers import accept, invitation, walker


async def inbox(engine, user_id):
    return [
        (r.kind, r.title, r.dedupe_key, r.data)
        for r in await rows(
            engine,
            "SELECT kind, title, dedupe_key, data FROM notifications WHERE user_id = :u "
            "ORDER BY id",
            u=user_id,
        )
    ]


async def ask(client, account, email):
    response = await client.post(
        "/v1/friends/requests", json={"email": email}, headers=account["headers"]
    )
    assert response.status_code == 202, response.text


async def test_a_request_and_its_acceptance_notify_once_each(client, engine):
    ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
    await ask(client, ada, bob["email"])
    await ask(client, ada, bob["email"].upper())  # asked twice: one notification
    [(kind, title, key, data)] = await inbox(engine, bob["id"])
    assert (kind, title, key) == ("friend", "New friend request", f"friend_request:{ada['id']}")
    assert data["from_id"] == ada["id"]
    await ask(client, bob, "nobody-here@example.com")  # no account: nobody to tell

    requests = (await client.get("/v1/friends/requests", headers=bob["headers"])).json()
    [request] = requests["incoming"]
    accepted = await client.post(
        f"/v1/friends/requests/{request['id']}/accept", headers=bob["headers"]
    )
    assert accepted.status_code == 200, accepted.text
    [(kind, title, key, data)] = await inbox(engine, ada["id"])
    assert (kind, title, key) == ("friend", "You have a new friend", f"friend_accepted:{bob['id']}")
    assert data["friend_id"] == bob["id"]
    # asking a friend again tells nobody anything
    await ask(client, ada, bob["email"])
    assert len(await inbox(engine, bob["id"])) == 1


async def test_a_blocked_walker_is_not_told(client, engine):
    ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
    blocked = await client.post("/v1/blocks", json={"user_id": ada["id"]}, headers=bob["headers"])
    assert blocked.status_code in (200, 201, 204), blocked.text
    await ask(client, ada, bob["email"])
    assert await inbox(engine, bob["id"]) == []


async def test_an_accepted_invitation_tells_the_inviter_once(client, engine):
    ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
    code = (await invitation(client, ada))["code"]
    assert (await accept(client, bob, code)).status_code == 200
    assert (await accept(client, bob, code)).status_code == 200  # again: the same friendship
    [(kind, _, key, _)] = await inbox(engine, ada["id"])
    assert (kind, key) == ("friend", f"friend_accepted:{bob['id']}")
    assert await inbox(engine, bob["id"]) == []

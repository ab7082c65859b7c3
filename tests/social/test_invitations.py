"""Issue 17 item 1: invitation codes that expire, can be revoked, are stored hashed, are
throttled, and answer one 404 for unknown, expired, revoked, used and blocked codes."""

from __future__ import annotations

import hashlib

from sqlalchemy import text

from tests.conftest import CLIENT_ADDRESS_HEADER, fresh_address
from tests.social.helpers import (
    accept,
    befriend,
    friend_ids,
    invitation,
    set_setting,
    walker,
    without_instance,
)


async def test_create_view_accept_makes_both_friends(client, engine):
    ada = await walker(client, "Ada Lovelace")
    bob = await walker(client, "Bob Builder")
    made = await invitation(client, ada)
    code = made["code"]
    assert len(code) >= 10 and made["url"] == f"stepcoin://friends/{code}"
    # only the hash is stored
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT code_hash FROM friend_invitations"))).all()
    assert stored == [(hashlib.sha256(code.encode()).hexdigest(),)]

    seen = await client.get(f"/v1/friends/invitations/{code}", headers=bob["headers"])
    assert seen.status_code == 200, seen.text
    assert seen.json()["inviter"] == {"user_id": ada["id"], "display_name": "Ada"}
    assert seen.json()["own"] is False and seen.json()["already_friends"] is False
    # typed with dashes and in lower case: the same code
    typed = f"{code[:4]}-{code[4:8]}-{code[8:]}".lower()
    answer = await accept(client, bob, typed)
    assert answer.status_code == 200, answer.text
    assert answer.json()["user_id"] == ada["id"] and answer.json()["display_name"] == "Ada"
    assert await friend_ids(client, ada) == [bob["id"]]
    assert await friend_ids(client, bob) == [ada["id"]]
    # accepted again by the same walker: the same friendship (idempotent 200)
    again = await accept(client, bob, code)
    assert again.status_code == 200 and again.json()["user_id"] == ada["id"]
    # used: to anyone else it is gone
    carl = await walker(client, "Carl")
    used = await accept(client, carl, code)
    assert used.status_code == 404 and used.json()["code"] == "invitation_not_found"


async def test_own_invitation_is_422_and_friends_already_keeps_the_code_open(client):
    ada, bob, carl = [await walker(client, n) for n in ("Ada", "Bob", "Carl")]
    code = (await invitation(client, ada))["code"]
    own = await accept(client, ada, code)
    assert own.status_code == 422 and own.json()["code"] == "own_invitation"
    await befriend(client, ada, bob)
    # bob, a friend already, answers the open code: 200, and the code still works for carl
    assert (await accept(client, bob, code)).status_code == 200
    assert (await accept(client, carl, code)).status_code == 200
    assert sorted(await friend_ids(client, ada)) == sorted([bob["id"], carl["id"]])


async def test_unknown_expired_revoked_and_blocked_codes_answer_the_same_404(client, engine):
    ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
    unknown = "ABCDEFGHJKMN"
    expired = (await invitation(client, ada))["code"]
    revoked = (await invitation(client, ada))["code"]
    blocked = (await invitation(client, ada))["code"]
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE friend_invitations SET expires_at = now() - interval '1 second' "
                "WHERE code_hash = :h"
            ),
            {"h": hashlib.sha256(expired.encode()).hexdigest()},
        )
    gone = await client.delete(f"/v1/friends/invitations/{revoked}", headers=ada["headers"])
    assert gone.status_code == 204
    # ada blocks bob: ada's codes are hidden from bob
    assert (
        await client.post("/v1/blocks", json={"user_id": bob["id"]}, headers=ada["headers"])
    ).status_code == 200

    bodies = []
    for code in (unknown, expired, revoked, blocked, "not-a-code"):
        for method, path in (
            ("GET", f"/v1/friends/invitations/{code}"),
            ("POST", f"/v1/friends/invitations/{code}/accept"),
        ):
            response = await client.request(method, path, headers=bob["headers"])
            assert response.status_code == 404, (code, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            bodies.append(without_instance(response.json()))
    assert all(body == bodies[0] for body in bodies)
    assert bodies[0]["code"] == "invitation_not_found"
    assert await friend_ids(client, bob) == []
    # blocked the other way too: bob blocks carl, carl's code is hidden from bob
    carl = await walker(client, "Carl")
    carls = (await invitation(client, carl))["code"]
    await client.post("/v1/blocks", json={"user_id": carl["id"]}, headers=bob["headers"])
    hidden = await client.get(f"/v1/friends/invitations/{carls}", headers=bob["headers"])
    assert hidden.status_code == 404 and without_instance(hidden.json()) == bodies[0]


async def test_revoke_only_ones_own_open_invitation(client):
    ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
    code = (await invitation(client, ada))["code"]
    other = await client.delete(f"/v1/friends/invitations/{code}", headers=bob["headers"])
    assert other.status_code == 404 and other.json()["code"] == "invitation_not_found"
    assert (
        await client.delete(f"/v1/friends/invitations/{code}", headers=ada["headers"])
    ).status_code == 204
    twice = await client.delete(f"/v1/friends/invitations/{code}", headers=ada["headers"])
    assert twice.status_code == 404


async def test_caps_on_open_invitations_and_friends(client, engine):
    await set_setting(engine, "friends.max_open_invitations", 2)
    ada = await walker(client, "Ada")
    first = await invitation(client, ada)
    await invitation(client, ada)
    third = await client.post("/v1/friends/invitations", headers=ada["headers"])
    assert third.status_code == 409 and third.json()["code"] == "too_many_open_invitations"
    # revoking one makes room
    await client.delete(f"/v1/friends/invitations/{first['code']}", headers=ada["headers"])
    code = (await invitation(client, ada))["code"]

    await set_setting(engine, "friends.max_friends", 1)
    bob, carl = await walker(client, "Bob"), await walker(client, "Carl")
    assert (await accept(client, bob, code)).status_code == 200
    other = (await client.post("/v1/friends/invitations", headers=ada["headers"])).json()["code"]
    full = await accept(client, carl, other)
    assert full.status_code == 409 and full.json()["code"] == "friend_limit_reached"
    assert await friend_ids(client, carl) == []


async def test_expiry_is_the_setting(client, engine):
    await set_setting(engine, "friends.invitation_days", 3)
    ada = await walker(client)
    made = await invitation(client, ada)
    async with engine.connect() as conn:
        days = (
            await conn.execute(
                text(
                    "SELECT extract(epoch FROM expires_at - created_at) / 86400 "
                    "FROM friend_invitations"
                )
            )
        ).scalar_one()
    assert round(float(days), 3) == 3
    assert made["expires_at"]


async def test_guessing_codes_is_throttled_per_account(client, engine):
    await set_setting(engine, "ratelimit.friend_codes_per_account", "3/hour")
    guesser = await walker(client)
    answers = [
        (
            await client.get(f"/v1/friends/invitations/ABCDEFGHJK{n}2", headers=guesser["headers"])
        ).status_code
        for n in range(3)
    ]
    refused = await client.post(
        "/v1/friends/invitations/ABCDEFGHJKMN/accept", headers=guesser["headers"]
    )
    assert answers == [404, 404, 404]
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert refused.json()["code"] == "rate_limited"


async def test_anonymous_is_401(client):
    for method, path in (
        ("POST", "/v1/friends/invitations"),
        ("GET", "/v1/friends/invitations/ABCDEFGHJKMN"),
        ("GET", "/v1/friends"),
        ("POST", "/v1/blocks"),
    ):
        assert (await client.request(method, path)).status_code == 401


async def test_guessing_codes_is_throttled_per_address(client, engine):
    """Many accounts from one network share the address's budget (policy friend_codes); another
    address is not affected."""
    await set_setting(engine, "ratelimit.friend_codes_per_address", "4/hour")
    address, elsewhere = fresh_address(), fresh_address()
    guessers = [await walker(client, f"G{i}") for i in range(3)]

    def at(account, where):
        return {**account["headers"], CLIENT_ADDRESS_HEADER: where}

    answers = [
        (
            await client.get(
                f"/v1/friends/invitations/ABCDEFGHJK{n}2", headers=at(guessers[n % 3], address)
            )
        ).status_code
        for n in range(4)
    ]
    assert answers == [404, 404, 404, 404]  # no account is near its own limit of 30
    refused = await client.post(
        "/v1/friends/invitations/ABCDEFGHJKMN/accept", headers=at(guessers[2], address)
    )
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert refused.json()["code"] == "rate_limited"
    asked = await client.post(
        "/v1/friends/requests", json={"email": "x@example.com"}, headers=at(guessers[0], address)
    )
    assert asked.status_code == 429
    # the same walker from another network still gets through
    other = await client.get(
        "/v1/friends/invitations/ABCDEFGHJKMN", headers=at(guessers[2], elsewhere)
    )
    assert other.status_code == 404

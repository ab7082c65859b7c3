"""Issue 17 item 1: friend requests by exact email answer the same whether or not an account
has the email; the addressee accepts or declines; a blocked sender's request does nothing."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import bearer, register, unique_email
from tests.fixtures.smtp import token_in
from tests.social.helpers import befriend, friend_ids, walker


async def ask(client, account, email):
    response = await client.post(
        "/v1/friends/requests", json={"email": email}, headers=account["headers"]
    )
    assert response.status_code == 202, response.text
    return response.json()


async def requests_of(client, account):
    response = await client.get("/v1/friends/requests", headers=account["headers"])
    assert response.status_code == 200, response.text
    return response.json()


async def test_unknown_email_answers_the_same_as_a_walker(client):
    ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
    real = await ask(client, ada, bob["email"].upper())
    unknown = await ask(client, ada, "nobody-here@example.com")
    assert real == unknown
    # the sender's list shows both the same way
    outgoing = (await requests_of(client, ada))["outgoing"]
    assert sorted(o["email"] for o in outgoing) == sorted([bob["email"], "nobody-here@example.com"])
    assert all(set(o) == {"id", "email", "created_at"} for o in outgoing)
    # asking again opens nothing new
    await ask(client, ada, bob["email"])
    incoming = (await requests_of(client, bob))["incoming"]
    assert len(incoming) == 1
    assert incoming[0]["sender"] == {"user_id": ada["id"], "display_name": "Ada"}


async def test_accept_makes_friends_and_decline_is_not_told(client):
    ada, bob, carl = [await walker(client, n) for n in ("Ada", "Bob", "Carl")]
    await ask(client, ada, bob["email"])
    await ask(client, carl, bob["email"])
    incoming = {
        i["sender"]["user_id"]: i["id"] for i in (await requests_of(client, bob))["incoming"]
    }

    # only the addressee answers
    stranger = await client.post(
        f"/v1/friends/requests/{incoming[ada['id']]}/accept", headers=carl["headers"]
    )
    assert stranger.status_code == 404 and stranger.json()["code"] == "friend_request_not_found"

    accepted = await client.post(
        f"/v1/friends/requests/{incoming[ada['id']]}/accept", headers=bob["headers"]
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["user_id"] == ada["id"]
    assert await friend_ids(client, ada) == [bob["id"]]
    assert (await requests_of(client, ada))["outgoing"] == []

    declined = await client.post(
        f"/v1/friends/requests/{incoming[carl['id']]}/decline", headers=bob["headers"]
    )
    assert declined.status_code == 204
    assert (await requests_of(client, bob))["incoming"] == []
    # carl still sees the request waiting, and asking again reaches bob no more
    assert [o["email"] for o in (await requests_of(client, carl))["outgoing"]] == [bob["email"]]
    await ask(client, carl, bob["email"])
    assert (await requests_of(client, bob))["incoming"] == []
    again = await client.post(
        f"/v1/friends/requests/{incoming[carl['id']]}/accept", headers=bob["headers"]
    )
    assert again.status_code == 404


async def test_requests_to_oneself_or_a_friend_do_nothing(client, engine):
    ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
    await befriend(client, ada, bob)
    await ask(client, ada, ada["email"])
    await ask(client, ada, bob["email"])
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM friend_requests"))).scalar_one()
    assert count == 0


async def test_a_blocked_walkers_request_answers_the_same_and_does_nothing(client):
    ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
    await client.post("/v1/blocks", json={"user_id": ada["id"]}, headers=bob["headers"])
    assert await ask(client, ada, bob["email"]) == await ask(client, ada, "x@example.com")
    assert (await requests_of(client, bob))["incoming"] == []
    # ada's list looks as for any request
    assert bob["email"] in [o["email"] for o in (await requests_of(client, ada))["outgoing"]]


async def test_a_block_cancels_open_requests_both_ways(client):
    ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
    await ask(client, ada, bob["email"])
    await ask(client, bob, ada["email"])
    request_id = (await requests_of(client, bob))["incoming"][0]["id"]
    await client.post("/v1/blocks", json={"user_id": ada["id"]}, headers=bob["headers"])
    assert (await requests_of(client, bob))["incoming"] == []
    assert (await requests_of(client, ada))["incoming"] == []
    late = await client.post(f"/v1/friends/requests/{request_id}/accept", headers=bob["headers"])
    assert late.status_code == 404


async def test_a_request_to_an_address_without_an_account_waits_for_its_verified_owner(
    client, engine, mailbox
):
    ada, cy = await walker(client, "Ada"), await walker(client, "Cy")
    email = unique_email("later")
    await ask(client, ada, email.upper())
    await ask(client, cy, email)
    bob = await register(client, email=email, full_name="Bob", verified=False)
    bob["headers"] = bearer(bob["access_token"])
    bob["id"] = bob["user"]["id"]
    # signed up but not verified: someone who only typed the address in learns nothing
    assert (await requests_of(client, bob))["incoming"] == []
    async with engine.connect() as conn:
        request_ids = [
            r[0]
            for r in await conn.execute(
                text("SELECT id FROM friend_requests WHERE to_email = :e ORDER BY id"),
                {"e": email},
            )
        ]
    early = await client.post(
        f"/v1/friends/requests/{request_ids[0]}/accept", headers=bob["headers"]
    )
    assert early.status_code == 404 and early.json()["code"] == "friend_request_not_found"

    await mailbox.deliver(1)
    [mail] = mailbox.to(email)
    verified = await client.post("/v1/auth/verify-email", json={"token": token_in(mail)})
    assert verified.status_code == 200, verified.text
    incoming = (await requests_of(client, bob))["incoming"]
    assert sorted(i["sender"]["display_name"] for i in incoming) == ["Ada", "Cy"]
    by_sender = {i["sender"]["user_id"]: i["id"] for i in incoming}

    # a block still hides: bob blocks cy, cy's request is gone
    await client.post("/v1/blocks", json={"user_id": cy["id"]}, headers=bob["headers"])
    assert [i["sender"]["user_id"] for i in (await requests_of(client, bob))["incoming"]] == [
        ada["id"]
    ]
    hidden = await client.post(
        f"/v1/friends/requests/{by_sender[cy['id']]}/accept", headers=bob["headers"]
    )
    assert hidden.status_code == 404
    # another walker cannot answer it
    other = await client.post(
        f"/v1/friends/requests/{by_sender[ada['id']]}/accept", headers=cy["headers"]
    )
    assert other.status_code == 404

    accepted = await client.post(
        f"/v1/friends/requests/{by_sender[ada['id']]}/accept", headers=bob["headers"]
    )
    assert accepted.status_code == 200, accepted.text
    assert await friend_ids(client, bob) == [ada["id"]]
    assert (await requests_of(client, ada))["outgoing"] == []
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT to_id, status FROM friend_requests WHERE id = :i"),
                {"i": by_sender[ada["id"]]},
            )
        ).one()
    assert (str(row[0]), row[1]) == (bob["id"], "accepted")  # attached when answered


async def test_a_request_waiting_for_an_address_closes_when_friends_by_a_code_first(client, engine):
    ada = await walker(client, "Ada")
    email = unique_email("later")
    await ask(client, ada, email)
    bob = await register(client, email=email, full_name="Bob")
    bob["headers"] = bearer(bob["access_token"])
    bob["id"] = bob["user"]["id"]
    [waiting] = (await requests_of(client, bob))["incoming"]
    await befriend(client, ada, bob)  # by a code: the request is answered with it
    assert (await requests_of(client, bob))["incoming"] == []
    assert (await requests_of(client, ada))["outgoing"] == []
    answered = await client.post(
        f"/v1/friends/requests/{waiting['id']}/accept", headers=bob["headers"]
    )
    assert answered.status_code == 404
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT to_id, status FROM friend_requests WHERE id = :i"),
                {"i": waiting["id"]},
            )
        ).one()
    assert (str(row[0]), row[1]) == (bob["id"], "accepted")

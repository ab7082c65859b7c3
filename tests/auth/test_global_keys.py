"""Keys unique across walkers (issue 19 item 4): an email is claimed in global_keys in the
sign-up's transaction, and tokens name their walker while older ones keep working."""

from __future__ import annotations

import asyncio
import secrets
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import global_keys
from stepcoin.auth.email_tokens import hash_token
from stepcoin.auth.tokens import hash_refresh_token
from stepcoin.distribution import route_of, routed_token, walker_condition
from tests.accounts.helpers import delete_me
from tests.conftest import CLIENT_ADDRESS_HEADER, TEST_PASSWORD, bearer, register, unique_email


async def _count(engine, sql, **params):
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def test_a_second_claim_waits_for_the_first_and_then_loses(engine):
    email = unique_email("race")
    async with AsyncSession(engine) as first, AsyncSession(engine) as second:
        assert await global_keys.claim(first, "email", email, uuid.uuid4())
        racing = asyncio.create_task(global_keys.claim(second, "email", email, uuid.uuid4()))
        await asyncio.sleep(0.3)
        assert not racing.done()  # the primary key holds it until the first one ends
        await first.commit()
        assert await racing is False
        await second.rollback()


async def test_two_registrations_of_one_email_at_once_are_refused_exactly_once(client, engine):
    email = unique_email("twice")
    body = {"email": email, "password": TEST_PASSWORD, "full_name": "Twice"}
    answers = await asyncio.gather(
        *(
            client.post("/v1/auth/register", json=body, headers={CLIENT_ADDRESS_HEADER: address})
            for address in ("198.51.100.21", "198.51.100.22")
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 409]
    refused = next(a for a in answers if a.status_code == 409)
    assert refused.json()["code"] == "email_taken"
    assert await _count(engine, "SELECT count(*) FROM users WHERE email = :e", e=email) == 1
    owner = await _count(
        engine, "SELECT user_id::text FROM global_keys WHERE kind = 'email' AND key = :e", e=email
    )
    assert owner == next(a for a in answers if a.status_code == 201).json()["user"]["id"]


async def test_a_deleted_account_frees_its_email(client, engine):
    email = unique_email("again")
    first = await register(client, email)
    assert (await delete_me(client, first["access_token"], password=TEST_PASSWORD)).status_code in (
        202,
        204,
    )
    second = await register(client, email)
    assert second["user"]["id"] != first["user"]["id"]
    keys = await _count(
        engine, "SELECT count(*) FROM global_keys WHERE user_id = :u", u=first["user"]["id"]
    )
    assert keys == 1  # the tombstone's own address


async def test_refresh_tokens_name_their_walker_and_older_ones_still_work(client, engine):
    walker = await register(client)
    user_id = uuid.UUID(walker["user"]["id"])
    assert route_of(walker["refresh_token"]) == user_id
    rotated = await client.post("/v1/auth/refresh", json={"refresh_token": walker["refresh_token"]})
    assert rotated.status_code == 200
    assert route_of(rotated.json()["refresh_token"]) == user_id

    # a token issued before tokens were routed: found by its hash alone
    old = secrets.token_urlsafe(32)
    assert route_of(old) is None
    family = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO refresh_tokens (user_id, token_hash, family_id, expires_at, "
                "family_expires_at) VALUES (:u, :h, :f, now() + interval '1 day', "
                "now() + interval '30 days')"
            ),
            {"u": user_id, "h": hash_refresh_token(old), "f": family},
        )
    again = await client.post("/v1/auth/refresh", json={"refresh_token": old})
    assert again.status_code == 200, again.text
    assert route_of(again.json()["refresh_token"]) == user_id
    replayed = await client.post("/v1/auth/refresh", json={"refresh_token": old})
    assert replayed.status_code == 401  # reuse: the family ends
    live = await _count(
        engine,
        "SELECT count(*) FROM refresh_tokens WHERE family_id = :f AND revoked_at IS NULL",
        f=family,
    )
    assert live == 0

    older = secrets.token_urlsafe(32)
    other_family = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO refresh_tokens (user_id, token_hash, family_id, expires_at, "
                "family_expires_at) VALUES (:u, :h, :f, now() + interval '1 day', "
                "now() + interval '30 days')"
            ),
            {"u": user_id, "h": hash_refresh_token(older), "f": other_family},
        )
    assert (await client.post("/v1/auth/logout", json={"refresh_token": older})).status_code == 204
    ended = await _count(
        engine,
        "SELECT revoked_reason FROM refresh_tokens WHERE family_id = :f",
        f=other_family,
    )
    assert ended == "logout"


async def test_a_routed_token_of_another_walker_is_refused(client):
    ada, bob = await register(client), await register(client)
    secret = ada["refresh_token"].split("-", 1)[1]
    forged = f"{uuid.UUID(bob['user']['id']).hex}-{secret}"
    answer = await client.post("/v1/auth/refresh", json={"refresh_token": forged})
    assert answer.status_code == 401


async def test_a_mailed_link_from_before_still_verifies(client, engine):
    walker = await register(client, verified=False)
    raw = secrets.token_urlsafe(32)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO email_tokens (purpose, user_id, token_hash, expires_at) "
                "VALUES ('verify_email', :u, :h, now() + interval '1 hour')"
            ),
            {"u": walker["user"]["id"], "h": hash_token(raw)},
        )
    answer = await client.post("/v1/auth/verify-email", json={"token": raw})
    assert answer.status_code == 200, answer.text
    me = await client.get("/v1/me", headers=bearer(walker["access_token"]))
    assert me.json()["email_verified"] is True


def test_a_token_is_looked_up_by_its_walker_only_when_it_names_one():
    walker = uuid.uuid4()
    routed = routed_token(walker, secrets.token_urlsafe(32))
    assert walker_condition(routed) == ("user_id = :user_id AND ", walker)
    assert walker_condition(routed, "s.user_id") == ("s.user_id = :user_id AND ", walker)
    # issued before tokens named their walker, or a head that is no walker's id: by hash alone
    for token in (secrets.token_urlsafe(32), "Z" * 32 + "-" + secrets.token_urlsafe(8)):
        assert walker_condition(token) == ("", None)

"""POST /v1/me/password: the current password is asked, the other devices are signed out."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from stepcoin.auth.credentials import REAUTH_MAX_FAILURES
from tests.accounts.helpers import refreshes, sign_in_again
from tests.conftest import GOOGLE_CLIENT_ID, TEST_PASSWORD, bearer, register, unique_email

NEW_PASSWORD = "a much better passphrase 42"


async def change(client, token, current=TEST_PASSWORD, new=NEW_PASSWORD):
    return await client.post(
        "/v1/me/password",
        json={"current_password": current, "new_password": new},
        headers=bearer(token),
    )


async def password_hash(engine, user_id) -> str:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT password_hash FROM users WHERE id = :id"), {"id": user_id}
            )
        ).scalar_one()


async def test_a_new_password_signs_out_the_other_device_but_not_this_one(client):
    phone = await register(client)
    email = phone["user"]["email"]
    tablet = await sign_in_again(client, email, user_agent="tablet")

    response = await change(client, phone["access_token"])
    assert response.status_code == 200, response.text
    assert response.json() == {"other_sessions_ended": 1}

    assert await refreshes(client, tablet) is False
    assert await refreshes(client, phone) is True
    old = await client.post("/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
    assert old.status_code == 401
    new = await client.post("/v1/auth/login", json={"email": email, "password": NEW_PASSWORD})
    assert new.status_code == 200


async def test_a_wrong_current_password_changes_nothing(client, engine):
    phone = await register(client)
    tablet = await sign_in_again(client, phone["user"]["email"], user_agent="tablet")
    before = await password_hash(engine, phone["user"]["id"])

    response = await change(client, phone["access_token"], current="not my password at all")
    assert response.status_code == 403
    assert response.json()["code"] == "wrong_password"

    assert await password_hash(engine, phone["user"]["id"]) == before
    assert await refreshes(client, tablet) is True
    assert await refreshes(client, phone) is True


async def test_a_weak_new_password_is_refused_and_changes_nothing(client, engine):
    phone = await register(client)
    tablet = await sign_in_again(client, phone["user"]["email"], user_agent="tablet")
    before = await password_hash(engine, phone["user"]["id"])
    for weak in ("short", "password123", TEST_PASSWORD):
        response = await change(client, phone["access_token"], new=weak)
        assert response.status_code == 422, weak
    assert await password_hash(engine, phone["user"]["id"]) == before
    assert await refreshes(client, tablet) is True


async def test_parallel_guesses_are_capped_and_then_even_the_right_one_waits(client):
    phone = await register(client)
    guesses = await asyncio.gather(
        *(change(client, phone["access_token"], current=f"guess number {i}") for i in range(12))
    )
    codes = sorted(r.status_code for r in guesses)
    assert codes.count(403) == REAUTH_MAX_FAILURES  # at most the cap was ever checked
    assert codes.count(429) == 12 - REAUTH_MAX_FAILURES
    blocked = await change(client, phone["access_token"])
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "reauth_throttled"
    assert int(blocked.headers["Retry-After"]) > 0


async def test_a_social_only_account_has_no_password_to_change(client, keyset):
    token = keyset.id_token(
        issuer="https://accounts.google.com",
        audience=GOOGLE_CLIENT_ID,
        subject="google-pw-1",
        email=unique_email("g"),
    )
    account = (await client.post("/v1/auth/google", json={"id_token": token})).json()
    response = await change(client, account["access_token"], current="anything at all")
    assert response.status_code == 409
    assert response.json()["code"] == "no_password"


async def test_password_change_needs_a_token_and_an_active_account(client, engine):
    assert (await client.post("/v1/me/password", json={})).status_code == 401
    phone = await register(client)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET is_active = false WHERE id = :id"), {"id": phone["user"]["id"]}
        )
    response = await change(client, phone["access_token"])
    assert response.status_code == 401

"""Google and Apple sign-in against a locally served JSON Web Key Set."""

from __future__ import annotations

import time
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text

from tests.conftest import APPLE_CLIENT_ID, GOOGLE_CLIENT_ID, TEST_PASSWORD, register, unique_email

GOOGLE_ISSUER = "https://accounts.google.com"
APPLE_ISSUER = "https://appleid.apple.com"


async def test_google_sign_in_creates_then_finds_the_user(client, keyset, engine):
    email = unique_email("g")
    token = keyset.id_token(
        issuer=GOOGLE_ISSUER,
        audience=GOOGLE_CLIENT_ID,
        subject="google-123",
        email=email,
        name="Grace Google",
    )
    first = await client.post("/v1/auth/google", json={"id_token": token})
    assert first.status_code == 200, first.text
    user = first.json()["user"]
    assert user["auth_method"] == "google"
    assert user["email"] == email
    assert user["full_name"] == "Grace Google"

    again = await client.post("/v1/auth/google", json={"id_token": token})
    assert again.status_code == 200
    assert again.json()["user"]["id"] == user["id"]
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT u.password_hash, w.user_id FROM users u "
                    "JOIN wallets w ON w.user_id = u.id WHERE u.id = :id"
                ),
                {"id": user["id"]},
            )
        ).one()
    assert row.password_hash is None


async def test_apple_sign_in_links_an_existing_verified_email(client, keyset):
    account = await register(client)
    token = keyset.id_token(
        issuer=APPLE_ISSUER,
        audience=APPLE_CLIENT_ID,
        subject="apple-001.abc",
        email=account["user"]["email"],
        email_verified="true",
    )
    response = await client.post("/v1/auth/apple", json={"id_token": token})
    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == account["user"]["id"]
    # the password still works too
    login = await client.post(
        "/v1/auth/login", json={"email": account["user"]["email"], "password": TEST_PASSWORD}
    )
    assert login.status_code == 200


async def test_unverified_email_never_takes_over_an_account(client, keyset):
    account = await register(client)
    token = keyset.id_token(
        issuer=GOOGLE_ISSUER,
        audience=GOOGLE_CLIENT_ID,
        subject="attacker",
        email=account["user"]["email"],
        email_verified=False,
    )
    response = await client.post("/v1/auth/google", json={"id_token": token})
    assert response.status_code == 409


def _bad_tokens(keyset):
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    base = {
        "iss": GOOGLE_ISSUER,
        "aud": GOOGLE_CLIENT_ID,
        "sub": "s1",
        "iat": now,
        "exp": now + 600,
        "email": "x@example.com",
        "email_verified": True,
    }
    return {
        "wrong audience": keyset.sign({**base, "aud": "another-app"}),
        "wrong issuer": keyset.sign({**base, "iss": "https://evil.example.com"}),
        "expired": keyset.sign({**base, "iat": now - 7200, "exp": now - 3600}),
        "foreign key": keyset.sign(base, key=other_key),
        "unknown kid": keyset.sign(base, key=other_key, kid="nope"),
        "apple token at google": keyset.sign({**base, "iss": APPLE_ISSUER, "aud": APPLE_CLIENT_ID}),
        "garbage": "abc.def.ghi",
    }


@pytest.mark.parametrize(
    "name",
    [
        "wrong audience",
        "wrong issuer",
        "expired",
        "foreign key",
        "unknown kid",
        "apple token at google",
        "garbage",
    ],
)
async def test_bad_id_tokens_are_refused(client, keyset, engine, name):
    token = _bad_tokens(keyset)[name]
    response = await client.post("/v1/auth/google", json={"id_token": token})
    assert response.status_code == 401, (name, response.text)
    assert response.json()["code"] == "invalid_id_token"
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one() == 0


async def test_nonce_must_match_when_given(client, keyset):
    token = keyset.id_token(
        issuer=GOOGLE_ISSUER,
        audience=GOOGLE_CLIENT_ID,
        subject=str(uuid.uuid4()),
        email=unique_email(),
        nonce="n-1",
    )
    bad = await client.post("/v1/auth/google", json={"id_token": token, "nonce": "n-2"})
    assert bad.status_code == 401
    good = await client.post("/v1/auth/google", json={"id_token": token, "nonce": "n-1"})
    assert good.status_code == 200

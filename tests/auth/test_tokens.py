"""Register, login, refresh rotation with reuse detection, logout, and access-token checks."""

from __future__ import annotations

import asyncio
import time
import uuid

import jwt
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from stepcoin.auth.dependencies import get_app_settings
from stepcoin.config import Settings
from stepcoin.db import session_scope
from stepcoin.users.service import set_active
from tests.conftest import TEST_PASSWORD, bearer, register, unique_email


async def test_full_session_lifecycle(client):
    email = unique_email()
    registered = await register(client, email=email)
    assert registered["token_type"] == "bearer"
    assert 0 < registered["expires_in"] <= 900

    login = await client.post("/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
    assert login.status_code == 200
    first = login.json()
    assert first["user"]["email"] == email

    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]

    # The old token again: reuse. Refused, and the whole family (the newer token) dies with it.
    reused = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert reused.json()["code"] == "invalid_refresh_token"
    newer = await client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert newer.status_code == 401

    # The registration's own session is a different family and still works; logout ends it.
    third = await client.post(
        "/v1/auth/refresh", json={"refresh_token": registered["refresh_token"]}
    )
    assert third.status_code == 200
    token = third.json()["refresh_token"]
    logout = await client.post("/v1/auth/logout", json={"refresh_token": token})
    assert logout.status_code == 204
    after_logout = await client.post("/v1/auth/refresh", json={"refresh_token": token})
    assert after_logout.status_code == 401


async def test_parallel_refreshes_exactly_one_succeeds(client):
    account = await register(client)
    token = account["refresh_token"]
    responses = await asyncio.gather(
        *[client.post("/v1/auth/refresh", json={"refresh_token": token}) for _ in range(8)]
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert statuses.count(401) == 7


async def test_refresh_token_stored_only_as_hash(client, engine):
    account = await register(client)
    login = await client.post(
        "/v1/auth/login", json={"email": account["user"]["email"], "password": TEST_PASSWORD}
    )
    raw_tokens = {account["refresh_token"], login.json()["refresh_token"]}
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM refresh_tokens"))).mappings().all()
    assert len(rows) == 2
    for row in rows:
        for value in row.values():
            for raw in raw_tokens:
                assert raw not in str(value)
                if isinstance(value, bytes):
                    assert raw.encode() not in value
        assert len(row["token_hash"]) == 32


async def test_password_stored_as_argon2id_with_owasp_parameters(app, client, engine, settings):
    """The suite's app hashes with the cheap test profile; sign up here with the profile a
    production process gets (the default, and the only one production accepts)."""
    production = Settings(env="production", jwt_secret="p" * 40, database_url="postgresql://x/y")
    assert production.password_hashing == "owasp"
    app.dependency_overrides[get_app_settings] = lambda: settings.model_copy(
        update={"password_hashing": production.password_hashing}
    )
    try:
        account = await register(client)
    finally:
        app.dependency_overrides.pop(get_app_settings)
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT password_hash FROM users WHERE id = :id"),
                {"id": account["user"]["id"]},
            )
        ).scalar_one()
    assert stored.startswith("$argon2id$")
    params = stored.split("$")[3]
    parsed = dict(p.split("=") for p in params.split(","))
    assert int(parsed["m"]) >= 19 * 1024 and int(parsed["t"]) >= 2 and int(parsed["p"]) >= 1
    assert TEST_PASSWORD not in stored
    login = await client.post(
        "/v1/auth/login", json={"email": account["user"]["email"], "password": TEST_PASSWORD}
    )
    assert login.status_code == 200, login.text


@pytest.mark.parametrize("env", ["production", "development"])
def test_the_cheap_test_password_profile_is_refused_outside_tests(monkeypatch, env):
    monkeypatch.setenv("STEPCOIN_ENV", env)
    monkeypatch.setenv("STEPCOIN_PASSWORD_HASHING", "test")
    monkeypatch.setenv("STEPCOIN_JWT_SECRET", "s" * 40)
    with pytest.raises(ValidationError, match="test suite only"):
        Settings()


def _claims(settings, **overrides):
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "role": "user",
        "typ": "access",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return claims


async def test_forged_access_tokens_are_refused(client, settings):
    account = await register(client)
    secret = settings.signing_secret()
    sub = account["user"]["id"]
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    import json

    payload = jwt.utils.base64url_encode(json.dumps(_claims(settings, sub=sub)).encode()).decode()
    forged = {
        "alg none": f"{header}.{payload}.",
        "wrong key": jwt.encode(_claims(settings, sub=sub), "another-secret-" * 4, "HS256"),
        "expired": jwt.encode(
            _claims(settings, sub=sub, iat=int(time.time()) - 3600, exp=int(time.time()) - 60),
            secret,
            "HS256",
        ),
        "wrong audience": jwt.encode(
            _claims(settings, sub=sub, aud="someone-else"), secret, "HS256"
        ),
        "wrong issuer": jwt.encode(_claims(settings, sub=sub, iss="evil"), secret, "HS256"),
        "wrong type": jwt.encode(_claims(settings, sub=sub, typ="refresh"), secret, "HS256"),
        "no exp": jwt.encode(
            {k: v for k, v in _claims(settings, sub=sub).items() if k != "exp"}, secret, "HS256"
        ),
        "HS512 not allowed": jwt.encode(_claims(settings, sub=sub), secret, "HS512"),
        "refresh token as access token": account["refresh_token"],
        "garbage": "not.a.jwt",
    }
    for name, token in forged.items():
        response = await client.get("/v1/me", headers=bearer(token))
        assert response.status_code == 401, name
        assert response.json()["code"] == "invalid_token", name
    # and the genuine one still works
    ok = await client.get("/v1/me", headers=bearer(account["access_token"]))
    assert ok.status_code == 200


async def test_deactivated_user_loses_refresh_and_access(client, app):
    account = await register(client)
    user_id = uuid.UUID(account["user"]["id"])
    async with session_scope(app.state.database) as session:
        await set_active(session, user_id, False, admin_id=None)

    me = await client.get("/v1/me", headers=bearer(account["access_token"]))
    assert me.status_code == 401
    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": account["refresh_token"]}
    )
    assert refreshed.status_code == 401
    login = await client.post(
        "/v1/auth/login", json={"email": account["user"]["email"], "password": TEST_PASSWORD}
    )
    assert login.status_code == 403
    assert login.json()["code"] == "account_disabled"


async def test_refresh_token_expiry_idle_and_absolute(client, engine):
    account = await register(client)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
        )
    idle = await client.post("/v1/auth/refresh", json={"refresh_token": account["refresh_token"]})
    assert idle.status_code == 401

    other = await register(client)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE refresh_tokens SET family_expires_at = now() - interval '1 second' "
                "WHERE user_id = :id"
            ),
            {"id": other["user"]["id"]},
        )
    absolute = await client.post("/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert absolute.status_code == 401


async def test_rotation_never_extends_the_absolute_expiry(client, engine):
    account = await register(client)
    new = await client.post("/v1/auth/refresh", json={"refresh_token": account["refresh_token"]})
    assert new.status_code == 200
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT family_expires_at, expires_at FROM refresh_tokens ORDER BY issued_at")
            )
        ).all()
    assert len({r.family_expires_at for r in rows}) == 1
    assert all(r.expires_at <= r.family_expires_at for r in rows)


@pytest.mark.parametrize("token", ["", "x" * 600])
async def test_refresh_with_malformed_token_is_422(client, token):
    response = await client.post("/v1/auth/refresh", json={"refresh_token": token})
    assert response.status_code == 422

"""Registration rules, the uniform login failure, and throttling."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import TEST_PASSWORD, register, unique_email


async def test_unknown_email_and_wrong_password_get_the_same_answer(client):
    account = await register(client)
    wrong = await client.post(
        "/v1/auth/login", json={"email": account["user"]["email"], "password": "not the password"}
    )
    unknown = await client.post(
        "/v1/auth/login", json={"email": unique_email(), "password": "not the password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda body: {k: v for k, v in body.items() if k != "instance"}  # noqa: E731
    assert strip(wrong.json()) == strip(unknown.json())
    assert wrong.json()["code"] == "invalid_credentials"


async def test_email_is_case_insensitive(client):
    email = unique_email()
    await register(client, email=email)
    duplicate = await client.post(
        "/v1/auth/register",
        json={"email": email.upper(), "password": TEST_PASSWORD, "full_name": "X"},
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "email_taken"
    login = await client.post(
        "/v1/auth/login", json={"email": email.upper(), "password": TEST_PASSWORD}
    )
    assert login.status_code == 200


async def test_the_password_is_kept_as_sent(client):
    """Every character counts, also at the ends: sign-in compares the password as sent, so
    registration must not strip it (it did, with the model's str_strip_whitespace)."""
    email, password = unique_email(), f"  {TEST_PASSWORD} "
    await register(client, email=email, password=password)
    login = await client.post("/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    stripped = await client.post(
        "/v1/auth/login", json={"email": email, "password": password.strip()}
    )
    assert stripped.status_code == 401


@pytest.mark.parametrize(
    "password,code",
    [
        ("short1!", "weak_password"),
        ("password123", "weak_password"),
        ("P@ssw0rd", "weak_password"),
        ("x" * 129, "weak_password"),
    ],
)
async def test_weak_passwords_are_refused(client, engine, password, code):
    email = unique_email()
    response = await client.post(
        "/v1/auth/register", json={"email": email, "password": password, "full_name": "X"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == code
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one()
    assert count == 0


async def test_long_passwords_are_used_whole(client):
    password = "a long passphrase that goes on " * 3 + "and on until the end 12345"
    assert len(password) > 64
    account = await register(client, password=password)
    email = account["user"]["email"]
    ok = await client.post("/v1/auth/login", json={"email": email, "password": password})
    assert ok.status_code == 200
    truncated = await client.post(
        "/v1/auth/login", json={"email": email, "password": password[:72]}
    )
    assert truncated.status_code == 401


async def test_login_is_throttled_per_account_and_address(client, engine):
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE settings SET value = '3' "
                "WHERE key = 'auth.login_max_failures_per_account_and_address'"
            )
        )
    from stepcoin.runtime_settings.service import runtime_settings

    runtime_settings.invalidate()
    account = await register(client)
    email = account["user"]["email"]
    for _ in range(3):
        failed = await client.post(
            "/v1/auth/login", json={"email": email, "password": "wrong-pw-1"}
        )
        assert failed.status_code == 401
    blocked = await client.post("/v1/auth/login", json={"email": email, "password": "wrong-pw-1"})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert blocked.json()["code"] == "login_throttled"
    # even the right password waits out the block
    right = await client.post("/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
    assert right.status_code == 429
    # another account from the same address is not blocked by this account's counter
    other = await register(client)
    ok = await client.post(
        "/v1/auth/login", json={"email": other["user"]["email"], "password": TEST_PASSWORD}
    )
    assert ok.status_code == 200


async def test_login_is_throttled_per_address(client, engine):
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE settings SET value = '4' WHERE key = 'auth.login_max_failures_per_ip'")
        )
    from stepcoin.runtime_settings.service import runtime_settings

    runtime_settings.invalidate()
    for _ in range(4):
        failed = await client.post(
            "/v1/auth/login", json={"email": unique_email(), "password": "wrong-pw-1"}
        )
        assert failed.status_code == 401
    blocked = await client.post(
        "/v1/auth/login", json={"email": unique_email(), "password": "wrong-pw-1"}
    )
    assert blocked.status_code == 429


async def test_successful_login_clears_its_address_count_and_gives_its_attempt_back(client, engine):
    account = await register(client)
    email = account["user"]["email"]
    for _ in range(4):
        await client.post("/v1/auth/login", json={"email": email, "password": "wrong-pw-1"})
    ok = await client.post("/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
    assert ok.status_code == 200
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT key, failures FROM login_throttle"))
        counts = {key: failures for key, failures in rows}
    assert f"account_address:{email}|203.0.113.7" not in counts  # this address starts over
    # the four failures stay counted on the account's and the address's wide counts
    assert counts[f"account:{email}"] == 4
    assert counts["address:203.0.113.7"] == 4


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": TEST_PASSWORD, "full_name": "X"},
        {"email": "a@example.com", "password": TEST_PASSWORD},
        {"email": "a@example.com", "password": TEST_PASSWORD, "full_name": "X", "role": "admin"},
        {"email": "a@example.com", "password": 12345678, "full_name": "X"},
    ],
)
async def test_register_bad_input_is_422_and_stores_nothing(client, engine, body):
    response = await client.post("/v1/auth/register", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one() == 0

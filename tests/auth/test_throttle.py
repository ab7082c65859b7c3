"""Throttles reserve each attempt before checking it (issue 12, holes 2 and 10): parallel
requests never get more checks than the limit, and an attack on an account from elsewhere
does not lock its owner out."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from stepcoin.auth import service
from stepcoin.runtime_settings.service import runtime_settings
from tests.conftest import TEST_PASSWORD, register, unique_email

_addresses = (f"198.18.{n // 250}.{n % 250 + 1}" for n in itertools.count())


@asynccontextmanager
async def client_at(app: Any, address: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from `address` (a fresh one by default)."""
    transport = httpx.ASGITransport(app=app, client=(address or next(_addresses), 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://stepcoin.test") as c:
        yield c


async def set_setting(engine: Any, key: str, value: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE settings SET value = to_jsonb(CAST(:v AS int)) WHERE key = :k"),
            {"k": key, "v": value},
        )
    runtime_settings.invalidate()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the password checks and hashes the sign-in code runs (each one slowed down a
    little, in its worker thread, so parallel requests surely overlap)."""
    calls = {"verify": 0, "hash": 0}
    verify, hash_ = service.verify_password, service.hash_password

    def counting_verify(*args: Any) -> bool:
        calls["verify"] += 1
        time.sleep(0.05)
        return verify(*args)

    def counting_hash(*args: Any) -> str:
        calls["hash"] += 1
        time.sleep(0.05)
        return hash_(*args)

    monkeypatch.setattr(service, "verify_password", counting_verify)
    monkeypatch.setattr(service, "hash_password", counting_hash)
    return calls


async def test_parallel_wrong_passwords_get_at_most_the_limit_of_checks(client, counted):
    account = await register(client)
    email = account["user"]["email"]
    responses = await asyncio.gather(
        *[
            client.post("/v1/auth/login", json={"email": email, "password": f"wrong-{n}"})
            for n in range(20)
        ]
    )
    statuses = sorted(r.status_code for r in responses)
    assert counted["verify"] <= 5
    assert statuses == [401] * counted["verify"] + [429] * (20 - counted["verify"])
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["code"] == "login_throttled"
    assert int(refused.headers["retry-after"]) > 0
    assert refused.headers["ratelimit-policy"] == '"account_address";q=5;w=900'
    assert refused.headers["ratelimit"].startswith('"account_address";r=0;t=')
    # the right password from this address waits too, without being checked
    right = await client.post("/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
    assert right.status_code == 429 and counted["verify"] <= 5


async def test_failures_from_one_address_do_not_lock_the_owner_out_of_another(app, client):
    account = await register(client)
    email = account["user"]["email"]
    async with client_at(app) as attacker:
        for _ in range(5):
            wrong = await attacker.post("/v1/auth/login", json={"email": email, "password": "x1"})
            assert wrong.status_code == 401
        blocked = await attacker.post(
            "/v1/auth/login", json={"email": email, "password": TEST_PASSWORD}
        )
        assert blocked.status_code == 429
    async with client_at(app) as owner:
        ok = await owner.post("/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
        assert ok.status_code == 200, ok.text


async def test_failures_from_many_addresses_lock_the_account(app, client, engine):
    account = await register(client)
    email = account["user"]["email"]
    for _ in range(50):  # the default per-account limit, one guess from each address
        async with client_at(app) as attacker:
            wrong = await attacker.post("/v1/auth/login", json={"email": email, "password": "x1"})
            assert wrong.status_code == 401
    async with client_at(app) as owner:
        refused = await owner.post(
            "/v1/auth/login", json={"email": email, "password": TEST_PASSWORD}
        )
        assert refused.status_code == 429
        assert refused.json()["code"] == "login_throttled"
    # the limit is a runtime setting an admin can lower
    await set_setting(engine, "auth.login_max_failures_per_account", 2)
    other = await register(client)
    for _ in range(2):
        async with client_at(app) as attacker:
            await attacker.post(
                "/v1/auth/login", json={"email": other["user"]["email"], "password": "x1"}
            )
    async with client_at(app) as owner:
        refused = await owner.post(
            "/v1/auth/login", json={"email": other["user"]["email"], "password": TEST_PASSWORD}
        )
        assert refused.status_code == 429


async def test_parallel_sign_ups_for_one_email_hash_at_most_the_limit(client, counted):
    email = unique_email()
    body = {"email": email, "password": TEST_PASSWORD, "full_name": "Racer"}
    responses = await asyncio.gather(
        *[client.post("/v1/auth/register", json=body) for _ in range(20)]
    )
    statuses = sorted(r.status_code for r in responses)
    assert counted["hash"] <= 5
    assert statuses.count(201) == 1
    assert statuses.count(409) == counted["hash"] - 1
    assert statuses.count(429) == 20 - counted["hash"]
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["code"] == "signup_throttled"
    assert int(refused.headers["retry-after"]) > 0


async def test_sign_ups_are_throttled_per_client_address(app, client, engine, counted):
    await set_setting(engine, "auth.signup_max_per_address", 3)
    for _ in range(3):
        await register(client, address="203.0.113.7")
    refused = await client.post(
        "/v1/auth/register",
        json={"email": unique_email(), "password": TEST_PASSWORD, "full_name": "Fourth"},
    )
    assert refused.status_code == 429 and refused.json()["code"] == "signup_throttled"
    assert counted["hash"] == 3
    async with client_at(app) as elsewhere:  # another address is not refused
        await register(elsewhere)
    async with engine.connect() as conn:
        users = (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one()
    assert users == 4


async def test_a_weak_password_is_refused_before_it_is_counted(client, engine):
    email = unique_email()
    for _ in range(6):
        weak = await client.post(
            "/v1/auth/register", json={"email": email, "password": "short1!", "full_name": "X"}
        )
        assert weak.status_code == 422
    await register(client, email=email)


async def test_an_ipv6_network_counts_as_one_address(app, client):
    account = await register(client)
    email = account["user"]["email"]
    for n in range(5):  # five addresses of one /64
        async with client_at(app, f"2001:db8:1:2::{n + 1:x}") as attacker:
            wrong = await attacker.post("/v1/auth/login", json={"email": email, "password": "x1"})
            assert wrong.status_code == 401
    async with client_at(app, "2001:db8:1:2:ffff::1") as same_network:
        refused = await same_network.post(
            "/v1/auth/login", json={"email": email, "password": TEST_PASSWORD}
        )
        assert refused.status_code == 429
    async with client_at(app, "2001:db8:1:3::1") as next_network:
        ok = await next_network.post(
            "/v1/auth/login", json={"email": email, "password": TEST_PASSWORD}
        )
        assert ok.status_code == 200


async def test_counts_of_windows_long_over_are_pruned(app, client, engine):
    from stepcoin.auth import throttle
    from stepcoin.db import session_scope

    for n in range(3):
        await client.post("/v1/auth/login", json={"email": unique_email(), "password": f"x{n}"})
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE login_throttle SET window_started_at = now() - interval '25 hours' "
                "WHERE key LIKE 'account:%'"
            )
        )
    async with session_scope(app.state.database) as session:
        assert await throttle.prune(session) == 3
    async with engine.connect() as conn:
        left = (await conn.execute(text("SELECT key FROM login_throttle"))).scalars().all()
    assert len(left) == 4 and not any(k.startswith("account:") for k in left)  # 3 pairs, 1 address

"""GET/PATCH /v1/me: profile with wallet; only three fields can change."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import bearer, register


async def test_me_requires_a_token(client):
    response = await client.get("/v1/me")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "missing_token"


async def test_me_returns_profile_with_wallet(client):
    account = await register(client, phone="+49 30 1234567")
    response = await client.get("/v1/me", headers=bearer(account["access_token"]))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == account["user"]["id"]
    assert body["email"] == account["user"]["email"]
    assert body["phone"] == "+49 30 1234567"
    assert body["auth_method"] == "email"
    assert body["timezone"] == "UTC"
    assert body["wallet"] == {
        "available_coins": 0,
        "pending_coins": 0,
        "lifetime_earned": 0,
        "lifetime_spent": 0,
    }


async def test_patch_me_changes_allowed_fields(client):
    account = await register(client)
    response = await client.patch(
        "/v1/me",
        json={"full_name": "Ada Walker", "phone": "+1 555 0100", "timezone": "Europe/Berlin"},
        headers=bearer(account["access_token"]),
    )
    assert response.status_code == 200, response.text
    assert response.json()["full_name"] == "Ada Walker"
    assert response.json()["timezone"] == "Europe/Berlin"
    again = await client.get("/v1/me", headers=bearer(account["access_token"]))
    assert again.json()["phone"] == "+1 555 0100"


@pytest.mark.parametrize(
    "field,value",
    [
        ("role", "admin"),
        ("is_active", False),
        ("available_coins", 1_000_000),
        ("wallet", {"available_coins": 5}),
        ("email", "new@example.com"),
        ("auth_method", "google"),
    ],
)
async def test_patch_me_refuses_other_fields_and_changes_nothing(client, engine, field, value):
    account = await register(client)
    response = await client.patch(
        "/v1/me",
        json={"full_name": "Should Not Apply", field: value},
        headers=bearer(account["access_token"]),
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT u.full_name, u.role, u.is_active, u.email, w.available_coins "
                    "FROM users u JOIN wallets w ON w.user_id = u.id WHERE u.id = :id"
                ),
                {"id": account["user"]["id"]},
            )
        ).one()
    assert row.full_name == "Test Walker"
    assert row.role == "user"
    assert row.is_active is True
    assert row.email == account["user"]["email"]
    assert row.available_coins == 0


@pytest.mark.parametrize(
    "body",
    [
        {"timezone": "Mars/Olympus_Mons"},
        {"full_name": None},
        {"timezone": None},  # the column is NOT NULL: this was a 500 (issue 14, schemathesis)
        {"full_name": ""},
        {"phone": "call me maybe"},
        {"full_name": 42},
    ],
)
async def test_patch_me_rejects_bad_values(client, body):
    account = await register(client)
    response = await client.patch("/v1/me", json=body, headers=bearer(account["access_token"]))
    assert response.status_code == 422
    me = await client.get("/v1/me", headers=bearer(account["access_token"]))
    assert me.json()["full_name"] == "Test Walker"
    assert me.json()["timezone"] == "UTC"

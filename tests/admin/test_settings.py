"""GET /v1/admin/settings and PUT /v1/admin/settings/{key}: strict, audited, at once here."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.runtime_settings.registry import SPECS
from stepcoin.runtime_settings.service import runtime_settings
from tests.admin.helpers import count, make_staff
from tests.conftest import bearer, register


async def _stored(engine, key):
    async with engine.connect() as conn:
        return (
            await conn.execute(text("SELECT value FROM settings WHERE key = :k"), {"k": key})
        ).scalar_one_or_none()


async def test_anonymous_gets_401(client):
    assert (await client.get("/v1/admin/settings")).status_code == 401
    put = await client.put("/v1/admin/settings/anticheat.baseline_floor_steps", json={"value": 1})
    assert put.status_code == 401


async def test_plain_user_gets_403(client, engine):
    user = await register(client)
    headers = bearer(user["access_token"])
    assert (await client.get("/v1/admin/settings", headers=headers)).status_code == 403
    put = await client.put(
        "/v1/admin/settings/anticheat.baseline_floor_steps", json={"value": 1}, headers=headers
    )
    assert put.status_code == 403
    assert await _stored(engine, "anticheat.baseline_floor_steps") == 15000


async def test_support_reads_but_cannot_change(client, engine):
    support = await make_staff(client, engine, role="support")
    listing = await client.get("/v1/admin/settings", headers=support["headers"])
    assert listing.status_code == 200
    put = await client.put(
        "/v1/admin/settings/anticheat.baseline_floor_steps",
        json={"value": 1},
        headers=support["headers"],
    )
    assert put.status_code == 403
    assert await _stored(engine, "anticheat.baseline_floor_steps") == 15000
    assert await count(engine, "SELECT count(*) FROM admin_logs") == 0


async def test_list_has_every_known_key_with_default_for_missing(client, engine):
    admin = await make_staff(client, engine)
    async with engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM settings WHERE key = 'anticheat.baseline_floor_steps'")
        )
        await conn.execute(
            text("UPDATE settings SET value = '20' WHERE key = 'shop.max_quantity_per_item'")
        )
    response = await client.get("/v1/admin/settings", headers=admin["headers"])
    assert response.status_code == 200
    items = {item["key"]: item for item in response.json()["items"]}
    assert set(items) == set(SPECS)
    cap = items["anticheat.baseline_floor_steps"]
    assert cap["value"] == cap["default"] == 15000
    assert cap["updated_at"] is None and cap["updated_by"] is None
    rate = items["shop.max_quantity_per_item"]
    assert (rate["value"], rate["default"]) == (20, 10)
    assert rate["description"] == SPECS["shop.max_quantity_per_item"].description
    assert rate["updated_at"] is not None


async def test_unknown_key_is_404(client, engine):
    admin = await make_staff(client, engine)
    response = await client.put(
        "/v1/admin/settings/coins.free_money", json={"value": 1}, headers=admin["headers"]
    )
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_setting"
    assert await count(engine, "SELECT count(*) FROM settings WHERE key = 'coins.free_money'") == 0


async def test_put_stores_audits_and_applies_in_this_process_at_once(client, engine):
    admin = await make_staff(client, engine)
    async with AsyncSession(engine) as session:
        assert (
            await runtime_settings.get(session, "anticheat.baseline_floor_steps") == 15000
        )  # cache warm
    response = await client.put(
        "/v1/admin/settings/anticheat.baseline_floor_steps",
        json={"value": 350},
        headers=admin["headers"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["key"] == "anticheat.baseline_floor_steps"
    assert (body["value"], body["default"]) == (350, 15000)
    assert body["updated_by"] == admin["user"]["id"]
    assert body["updated_at"]
    assert await _stored(engine, "anticheat.baseline_floor_steps") == 350
    async with AsyncSession(engine) as session:
        assert (
            await runtime_settings.get(session, "anticheat.baseline_floor_steps") == 350
        )  # no waiting
    async with engine.connect() as conn:
        log = (
            await conn.execute(
                text(
                    "SELECT admin_id::text, entity_type, entity_id, changes FROM admin_logs "
                    "WHERE action = 'setting.update'"
                )
            )
        ).one()
    assert (log.admin_id, log.entity_type, log.entity_id) == (
        admin["user"]["id"],
        "setting",
        "anticheat.baseline_floor_steps",
    )
    assert log.changes["before"] == {"value": 15000}
    assert log.changes["after"] == {"value": 350}


async def test_put_changes_login_throttling(client, engine):
    admin = await make_staff(client, engine)
    walker = await register(client)
    email = walker["user"]["email"]
    response = await client.put(
        "/v1/admin/settings/auth.login_max_failures_per_account",
        json={"value": 2},
        headers=admin["headers"],
    )
    assert response.status_code == 200
    for _ in range(2):
        failed = await client.post("/v1/auth/login", json={"email": email, "password": "wrong-1"})
        assert failed.status_code == 401
    blocked = await client.post("/v1/auth/login", json={"email": email, "password": "wrong-1"})
    assert blocked.status_code == 429


async def test_put_inserts_a_missing_row(client, engine):
    admin = await make_staff(client, engine)
    async with engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM settings WHERE key = 'anticheat.baseline_floor_steps'")
        )
    response = await client.put(
        "/v1/admin/settings/anticheat.baseline_floor_steps",
        json={"value": 150},
        headers=admin["headers"],
    )
    assert response.status_code == 200
    assert await _stored(engine, "anticheat.baseline_floor_steps") == 150
    async with engine.connect() as conn:
        changes = (
            await conn.execute(
                text("SELECT changes FROM admin_logs WHERE entity_id = :k"),
                {"k": "anticheat.baseline_floor_steps"},
            )
        ).scalar_one()
    assert changes["before"] == {"value": None}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("anticheat.baseline_floor_steps", True),
        ("anticheat.baseline_floor_steps", False),
        ("anticheat.baseline_floor_steps", "300"),
        ("anticheat.baseline_floor_steps", 10.5),
        ("anticheat.baseline_floor_steps", 300.0),
        ("anticheat.baseline_floor_steps", -1),
        ("anticheat.baseline_floor_steps", 10_000_001),
        ("anticheat.baseline_floor_steps", None),
        ("anticheat.baseline_floor_steps", [300]),
        ("anticheat.baseline_floor_steps", {"value": 300}),
        ("auth.login_max_failures_per_account", True),
        ("auth.login_max_failures_per_account", 0),
        ("anticheat.baseline_multiplier", True),
        ("anticheat.baseline_multiplier", "3.5"),
        ("anticheat.baseline_multiplier", 1),
        ("anticheat.manual_entry_action", "ignore"),
        ("anticheat.manual_entry_action", 1),
    ],
)
async def test_invalid_values_are_422_and_store_nothing(client, engine, key, value):
    admin = await make_staff(client, engine)
    before = await _stored(engine, key)
    response = await client.put(
        f"/v1/admin/settings/{key}", json={"value": value}, headers=admin["headers"]
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_setting"
    assert key in body["detail"]
    assert await _stored(engine, key) == before
    assert await count(engine, "SELECT count(*) FROM admin_logs") == 0


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ("anticheat.baseline_multiplier", 4, 4.0),
        ("anticheat.baseline_multiplier", 2.5, 2.5),
        ("anticheat.manual_entry_action", "reject", "reject"),
        ("anticheat.baseline_floor_steps", 0, 0),
    ],
)
async def test_valid_values_of_each_type_are_stored(client, engine, key, value, stored):
    admin = await make_staff(client, engine)
    response = await client.put(
        f"/v1/admin/settings/{key}", json={"value": value}, headers=admin["headers"]
    )
    assert response.status_code == 200, response.text
    assert await _stored(engine, key) == stored
    assert json.dumps(response.json()["value"]) == json.dumps(stored)


@pytest.mark.parametrize("body", [{}, {"value": 5, "key": "anticheat.baseline_floor_steps"}])
async def test_bad_bodies_are_422(client, engine, body):
    admin = await make_staff(client, engine)
    response = await client.put(
        "/v1/admin/settings/anticheat.baseline_floor_steps", json=body, headers=admin["headers"]
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert await _stored(engine, "anticheat.baseline_floor_steps") == 15000

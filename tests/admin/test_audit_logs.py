"""GET /v1/admin/audit-logs: every admin action, newest first, filtered and paged."""

from __future__ import annotations

import pytest

from tests.admin.helpers import adjust, make_staff
from tests.conftest import bearer, register


async def _actions(client, admin, **params):
    response = await client.get("/v1/admin/audit-logs", params=params, headers=admin["headers"])
    assert response.status_code == 200, response.text
    return response.json()


async def test_anonymous_gets_401(client):
    assert (await client.get("/v1/admin/audit-logs")).status_code == 401


async def test_plain_user_gets_403(client):
    user = await register(client)
    response = await client.get("/v1/admin/audit-logs", headers=bearer(user["access_token"]))
    assert response.status_code == 403


async def test_support_may_read(client, engine):
    support = await make_staff(client, engine, role="support")
    assert (await _actions(client, support))["items"] == []


@pytest.fixture
async def history(client, engine):
    """Four audited actions by two admins, oldest first."""
    admin = await make_staff(client, engine)
    other_admin = await make_staff(client, engine)
    walker = await register(client)
    user_id = walker["user"]["id"]
    headers = admin["headers"]
    assert (await adjust(client, admin, user_id, 10)).status_code == 201
    patch = await client.patch(
        f"/v1/admin/users/{user_id}", json={"role": "support"}, headers=headers
    )
    assert patch.status_code == 200
    put = await client.put(
        "/v1/admin/settings/anticheat.baseline_floor_steps", json={"value": 300}, headers=headers
    )
    assert put.status_code == 200
    deactivate = await client.patch(
        f"/v1/admin/users/{user_id}", json={"is_active": False}, headers=other_admin["headers"]
    )
    assert deactivate.status_code == 200
    return {"admin": admin, "other_admin": other_admin, "user_id": user_id}


async def test_lists_every_action_newest_first(client, history):
    admin = history["admin"]
    body = await _actions(client, admin)
    assert [item["action"] for item in body["items"]] == [
        "user.deactivate",
        "setting.update",
        "user.role_change",
        "wallet.adjust",
    ]
    assert body["next_cursor"] is None
    newest = body["items"][0]
    assert newest["admin_id"] == history["other_admin"]["user"]["id"]
    assert newest["admin_email"] == history["other_admin"]["user"]["email"]
    assert newest["entity_type"] == "user"
    assert newest["entity_id"] == history["user_id"]
    assert newest["changes"] == {"before": {"is_active": True}, "after": {"is_active": False}}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"action": "wallet.adjust"}, ["wallet.adjust"]),
        ({"entity_type": "user"}, ["user.deactivate", "user.role_change"]),
        (
            {"entity_type": "setting", "entity_id": "anticheat.baseline_floor_steps"},
            ["setting.update"],
        ),
        ({"entity_type": "setting", "entity_id": "shop.max_quantity_per_item"}, []),
        ({"action": "user.role_change", "entity_type": "wallet"}, []),
    ],
)
async def test_filters(client, history, filters, expected):
    body = await _actions(client, history["admin"], **filters)
    assert [item["action"] for item in body["items"]] == expected


async def test_filter_by_admin_and_entity(client, history):
    mine = await _actions(client, history["admin"], admin_id=history["admin"]["user"]["id"])
    assert [item["action"] for item in mine["items"]] == [
        "setting.update",
        "user.role_change",
        "wallet.adjust",
    ]
    theirs = await _actions(client, history["admin"], admin_id=history["other_admin"]["user"]["id"])
    assert [item["action"] for item in theirs["items"]] == ["user.deactivate"]
    about_user = await _actions(client, history["admin"], entity_id=history["user_id"])
    assert len(about_user["items"]) == 3  # the wallet adjustment and two user changes


async def test_pages_with_a_cursor(client, history):
    seen, cursor = [], None
    for _ in range(5):
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        body = await _actions(client, history["admin"], **params)
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 4
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize(
    "params", [{"cursor": "@@@"}, {"admin_id": "not-a-uuid"}, {"limit": 0}, {"limit": 201}]
)
async def test_bad_query_is_422(client, engine, params):
    admin = await make_staff(client, engine)
    response = await client.get("/v1/admin/audit-logs", params=params, headers=admin["headers"])
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")

"""Admin users: search, one user, deactivation and role changes, with their role checks."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests.admin.helpers import adjust, count, make_staff
from tests.conftest import TEST_PASSWORD, bearer, register

ROUTES = [
    ("GET", "/v1/admin/users", None),
    ("GET", "/v1/admin/users/{id}", None),
    ("PATCH", "/v1/admin/users/{id}", {"is_active": False}),
]


async def _call(client, method, path, body, headers=None):
    return await client.request(method, path, json=body, headers=headers or {})


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_anonymous_gets_401(client, method, path, body):
    response = await _call(client, method, path.format(id=uuid.uuid4()), body)
    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_plain_user_gets_403_and_nothing_changes(client, engine, method, path, body):
    user = await register(client)
    victim = await register(client)
    response = await _call(
        client,
        method,
        path.format(id=victim["user"]["id"]),
        body,
        bearer(user["access_token"]),
    )
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert await count(engine, "SELECT count(*) FROM users WHERE NOT is_active") == 0


# A NUL ("%00") is refused before routing with 422: tests/test_bad_input.py (issue 12, hole 11).
@pytest.mark.parametrize(
    "user_id", [pytest.param(str(uuid.uuid4()), id="unknown"), "not-a-uuid", "1"]
)
@pytest.mark.parametrize(("method", "path", "body"), ROUTES[1:])
async def test_unknown_or_malformed_user_is_404(client, engine, method, path, body, user_id):
    admin = await make_staff(client, engine)
    response = await _call(client, method, path.format(id=user_id), body, admin["headers"])
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "user_not_found"


async def test_search_by_email_or_name_case_insensitive(client, engine):
    admin = await make_staff(client, engine, full_name="Root Admin")
    ada = await register(client, email="ada.lovelace@example.com", full_name="Ada Lovelace")
    await register(client, email="grace@example.com", full_name="Grace Hopper")
    await adjust(client, admin, ada["user"]["id"], 42)

    by_name = await client.get("/v1/admin/users", params={"q": "LOVEL"}, headers=admin["headers"])
    assert by_name.status_code == 200
    items = by_name.json()["items"]
    assert [item["email"] for item in items] == ["ada.lovelace@example.com"]
    item = items[0]
    assert item["full_name"] == "Ada Lovelace"
    assert item["role"] == "user"
    assert item["is_active"] is True
    assert item["auth_method"] == "email"
    assert item["created_at"]
    assert item["wallet"] == {
        "available_coins": 42,
        "pending_coins": 0,
        "lifetime_earned": 42,
        "lifetime_spent": 0,
    }
    by_email = await client.get("/v1/admin/users", params={"q": "GRACE@"}, headers=admin["headers"])
    assert [i["full_name"] for i in by_email.json()["items"]] == ["Grace Hopper"]
    everyone = await client.get("/v1/admin/users", headers=admin["headers"])
    assert len(everyone.json()["items"]) == 3
    nobody = await client.get("/v1/admin/users", params={"q": "zzz"}, headers=admin["headers"])
    assert nobody.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(("q", "expected"), [("%", "100% Walker"), ("_", "snake_case")])
async def test_like_wildcards_in_q_match_only_themselves(client, engine, q, expected):
    admin = await make_staff(client, engine, full_name="Root Admin")
    await register(client, full_name="100% Walker")
    await register(client, full_name="snake_case")
    response = await client.get("/v1/admin/users", params={"q": q}, headers=admin["headers"])
    assert [item["full_name"] for item in response.json()["items"]] == [expected]


async def test_support_can_search_users(client, engine):
    support = await make_staff(client, engine, role="support")
    response = await client.get("/v1/admin/users", headers=support["headers"])
    assert response.status_code == 200
    assert [item["role"] for item in response.json()["items"]] == ["support"]


async def test_user_search_pages_with_a_cursor(client, engine):
    admin = await make_staff(client, engine)
    for _ in range(4):
        await register(client)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = (await client.get("/v1/admin/users", params=params, headers=admin["headers"])).json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    bad = await client.get("/v1/admin/users", params={"cursor": "zz"}, headers=admin["headers"])
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_cursor"


async def test_get_one_user_with_wallet(client, engine):
    admin = await make_staff(client, engine)
    walker = await register(client)
    response = await client.get(f"/v1/admin/users/{walker['user']['id']}", headers=admin["headers"])
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == walker["user"]["id"]
    assert body["email"] == walker["user"]["email"]
    assert body["wallet"]["available_coins"] == 0


async def test_deactivation_ends_every_session_and_is_audited(client, engine):
    admin = await make_staff(client, engine)
    walker = await register(client)
    user_id = walker["user"]["id"]
    response = await client.patch(
        f"/v1/admin/users/{user_id}", json={"is_active": False}, headers=admin["headers"]
    )
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False

    me = await client.get("/v1/me", headers=bearer(walker["access_token"]))
    assert me.status_code == 401
    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": walker["refresh_token"]}
    )
    assert refreshed.status_code == 401
    login = await client.post(
        "/v1/auth/login", json={"email": walker["user"]["email"], "password": TEST_PASSWORD}
    )
    assert login.status_code == 403
    assert (
        await count(
            engine,
            "SELECT count(*) FROM admin_logs WHERE action = 'user.deactivate' "
            "AND entity_id = :id AND admin_id = :admin",
            id=user_id,
            admin=admin["user"]["id"],
        )
        == 1
    )

    again = await client.patch(
        f"/v1/admin/users/{user_id}", json={"is_active": True}, headers=admin["headers"]
    )
    assert again.json()["is_active"] is True
    login = await client.post(
        "/v1/auth/login", json={"email": walker["user"]["email"], "password": TEST_PASSWORD}
    )
    assert login.status_code == 200


async def test_role_change_is_audited_with_before_and_after(client, engine):
    admin = await make_staff(client, engine)
    walker = await register(client)
    user_id = walker["user"]["id"]
    response = await client.patch(
        f"/v1/admin/users/{user_id}", json={"role": "support"}, headers=admin["headers"]
    )
    assert response.status_code == 200
    assert response.json()["role"] == "support"
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT admin_id::text, changes FROM admin_logs "
                    "WHERE action = 'user.role_change' AND entity_id = :id"
                ),
                {"id": user_id},
            )
        ).one()
    assert row.admin_id == admin["user"]["id"]
    assert row.changes["before"] == {"role": "user"}
    assert row.changes["after"] == {"role": "support"}
    # the new role applies at once, with the token issued before the change
    queue = await client.get("/v1/admin/users", headers=bearer(walker["access_token"]))
    assert queue.status_code == 200


async def test_setting_the_same_values_changes_and_audits_nothing(client, engine):
    admin = await make_staff(client, engine)
    walker = await register(client)
    response = await client.patch(
        f"/v1/admin/users/{walker['user']['id']}",
        json={"role": "user", "is_active": True},
        headers=admin["headers"],
    )
    assert response.status_code == 200
    assert await count(engine, "SELECT count(*) FROM admin_logs") == 0


@pytest.mark.parametrize("body", [{"role": "user"}, {"is_active": False}])
async def test_admin_cannot_demote_or_deactivate_themself(client, engine, body):
    admin = await make_staff(client, engine)
    response = await client.patch(
        f"/v1/admin/users/{admin['user']['id']}", json=body, headers=admin["headers"]
    )
    assert response.status_code == 409
    assert response.json()["code"] == "cannot_change_self"
    row = (
        await client.get(f"/v1/admin/users/{admin['user']['id']}", headers=admin["headers"])
    ).json()
    assert row["role"] == "admin" and row["is_active"] is True
    assert await count(engine, "SELECT count(*) FROM admin_logs") == 0


async def test_support_cannot_change_roles(client, engine):
    support = await make_staff(client, engine, role="support")
    walker = await register(client)
    for target, body in [
        (walker["user"]["id"], {"role": "admin"}),
        (support["user"]["id"], {"role": "admin"}),
    ]:
        response = await client.patch(
            f"/v1/admin/users/{target}", json=body, headers=support["headers"]
        )
        assert response.status_code == 403, body
    assert await count(engine, "SELECT count(*) FROM users WHERE role = 'admin'") == 0


async def test_support_can_deactivate_plain_users_but_not_staff(client, engine):
    support = await make_staff(client, engine, role="support")
    admin = await make_staff(client, engine)
    walker = await register(client)
    ok = await client.patch(
        f"/v1/admin/users/{walker['user']['id']}",
        json={"is_active": False},
        headers=support["headers"],
    )
    assert ok.status_code == 200
    refused = await client.patch(
        f"/v1/admin/users/{admin['user']['id']}",
        json={"is_active": False},
        headers=support["headers"],
    )
    assert refused.status_code == 403
    assert (await client.get("/v1/me", headers=admin["headers"])).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"is_active": False, "email": "x@example.com"},
        {"role": "superuser"},
        {"is_active": "false"},
        {"is_active": 0},
        {"is_active": None},
        {"role": None},
        {"wallet": {"available_coins": 5}},
    ],
)
async def test_patch_refuses_unknown_fields_and_bad_values(client, engine, body):
    admin = await make_staff(client, engine)
    walker = await register(client)
    response = await client.patch(
        f"/v1/admin/users/{walker['user']['id']}", json=body, headers=admin["headers"]
    )
    assert response.status_code == 422, response.text
    assert await count(engine, "SELECT count(*) FROM users WHERE NOT is_active") == 0
    assert await count(engine, "SELECT count(*) FROM admin_logs") == 0


async def test_two_admins_demoting_each_other_leave_one_admin(client, engine):
    first = await make_staff(client, engine)
    second = await make_staff(client, engine)
    import asyncio

    responses = await asyncio.gather(
        client.patch(
            f"/v1/admin/users/{second['user']['id']}",
            json={"role": "user"},
            headers=first["headers"],
        ),
        client.patch(
            f"/v1/admin/users/{first['user']['id']}",
            json={"role": "user"},
            headers=second["headers"],
        ),
    )
    assert sorted(r.status_code for r in responses) == [200, 403]
    assert await count(engine, "SELECT count(*) FROM users WHERE role = 'admin'") == 1

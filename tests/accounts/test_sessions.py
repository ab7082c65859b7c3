"""GET/DELETE /v1/me/sessions: the signed-in devices; end one, or all but this one."""

from __future__ import annotations

import uuid

from tests.accounts.helpers import refreshes, sign_in_again
from tests.conftest import bearer, register


async def sessions(client, device):
    response = await client.get("/v1/me/sessions", headers=bearer(device["access_token"]))
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_the_list_shows_each_device_once_and_marks_this_one(client):
    phone = await register(client)
    tablet = await sign_in_again(client, phone["user"]["email"], user_agent="Tablet/2.0")
    assert await refreshes(client, tablet)  # a rotation stays the same session

    items = await sessions(client, phone)
    assert len(items) == 2
    current = [s for s in items if s["current"]]
    assert len(current) == 1
    other = next(s for s in items if not s["current"])
    assert other["user_agent"] == "Tablet/2.0"
    assert other["ip"] == "203.0.113.0/24"  # the network, not the address
    assert other["last_used_at"] > other["created_at"]
    assert set(other) == {"id", "created_at", "last_used_at", "user_agent", "ip", "current"}
    assert [s["id"] for s in await sessions(client, tablet) if s["current"]] == [other["id"]]


async def test_ending_one_device_signs_out_that_device_only(client):
    phone = await register(client)
    tablet = await sign_in_again(client, phone["user"]["email"], user_agent="tablet")
    tablet_id = next(s["id"] for s in await sessions(client, tablet) if s["current"])

    response = await client.delete(
        f"/v1/me/sessions/{tablet_id}", headers=bearer(phone["access_token"])
    )
    assert response.status_code == 204
    assert await refreshes(client, tablet) is False
    assert await refreshes(client, phone) is True
    assert [s["current"] for s in await sessions(client, phone)] == [True]
    again = await client.delete(
        f"/v1/me/sessions/{tablet_id}", headers=bearer(phone["access_token"])
    )
    assert again.status_code == 404


async def test_someone_elses_session_is_a_404_and_stays_signed_in(client):
    me = await register(client)
    stranger = await register(client)
    theirs = (await sessions(client, stranger))[0]["id"]
    for target in (theirs, str(uuid.uuid4())):
        response = await client.delete(
            f"/v1/me/sessions/{target}", headers=bearer(me["access_token"])
        )
        assert response.status_code == 404
        assert response.json()["code"] == "session_not_found"
    assert await refreshes(client, stranger) is True
    malformed = await client.delete("/v1/me/sessions/nope", headers=bearer(me["access_token"]))
    assert malformed.status_code == 422


async def test_ending_the_others_keeps_only_this_device(client):
    phone = await register(client)
    email = phone["user"]["email"]
    tablet = await sign_in_again(client, email, user_agent="tablet")
    laptop = await sign_in_again(client, email, user_agent="laptop")

    response = await client.delete("/v1/me/sessions", headers=bearer(phone["access_token"]))
    assert response.status_code == 200
    assert response.json() == {"ended": 2}
    assert await refreshes(client, tablet) is False
    assert await refreshes(client, laptop) is False
    assert await refreshes(client, phone) is True
    assert len(await sessions(client, phone)) == 1


async def test_sessions_need_a_token(client):
    assert (await client.get("/v1/me/sessions")).status_code == 401
    assert (await client.delete("/v1/me/sessions")).status_code == 401
    assert (await client.delete(f"/v1/me/sessions/{uuid.uuid4()}")).status_code == 401


async def test_openapi_lists_the_lifecycle_routes(client):
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "post" in paths["/v1/me/password"]
    assert {"get", "delete"} <= set(paths["/v1/me/sessions"])
    assert "delete" in paths["/v1/me/sessions/{session_id}"]
    assert {"get", "patch", "delete"} <= set(paths["/v1/me"])
    assert "get" in paths["/v1/me/export"]

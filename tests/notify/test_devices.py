"""Issue 18 item 1: push devices over HTTP (PUT /v1/me/devices, DELETE /v1/me/devices/{id})."""

from __future__ import annotations

from tests.notify.conftest import android_token, ios_token
from tests.notify.helpers import add_device, rows, walker


async def test_register_is_201_then_200_with_the_same_id(client):
    ada = await walker(client)
    body = {
        "platform": "ios",
        "environment": "sandbox",
        "token": ios_token(),
        "timezone": "Europe/Berlin",
    }
    first = await client.put("/v1/me/devices", json=body, headers=ada["headers"])
    again = await client.put("/v1/me/devices", json=body, headers=ada["headers"])
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json() == {"id": first.json()["id"]}
    listed = (await client.get("/v1/me/devices", headers=ada["headers"])).json()["items"]
    assert [(d["platform"], d["environment"], d["timezone"]) for d in listed] == [
        ("ios", "sandbox", "Europe/Berlin")
    ]
    assert "token" not in listed[0]


async def test_a_token_moves_to_the_walker_signed_in_now(client, engine):
    ada, bob = await walker(client), await walker(client)
    first = await add_device(client, ada, "android", android_token())
    second = await add_device(client, bob, "android", android_token())
    assert first == second
    assert (await client.get("/v1/me/devices", headers=ada["headers"])).json()["items"] == []
    owners = await rows(engine, "SELECT user_id::text FROM push_devices")
    assert owners == [(bob["id"],)]


async def test_invalid_devices_are_refused(client):
    ada = await walker(client)
    cases = [
        ({"platform": "ios", "token": "not-hex-" + "z" * 60}, "invalid_push_token"),
        ({"platform": "android", "token": "short"}, "validation_error"),
        (
            {"platform": "android", "token": android_token(), "timezone": "Mars/Olympus"},
            "invalid_timezone",
        ),
        ({"platform": "windows", "token": android_token()}, "validation_error"),
        ({"platform": "ios", "environment": "staging", "token": ios_token()}, "validation_error"),
    ]
    for body, code in cases:
        response = await client.put("/v1/me/devices", json=body, headers=ada["headers"])
        assert response.status_code == 422, (body, response.text)
        assert response.json()["code"] == code, (body, response.json())


async def test_delete_own_device_and_not_anothers(client):
    ada, bob = await walker(client), await walker(client)
    device = await add_device(client, ada, "ios", ios_token())
    other = await client.delete(f"/v1/me/devices/{device}", headers=bob["headers"])
    assert (other.status_code, other.json()["code"]) == (404, "device_not_found")
    assert (
        await client.delete(f"/v1/me/devices/{device}", headers=ada["headers"])
    ).status_code == 204
    assert (
        await client.delete(f"/v1/me/devices/{device}", headers=ada["headers"])
    ).status_code == 404


async def test_anonymous_is_401(client):
    for method, path in (
        ("PUT", "/v1/me/devices"),
        ("GET", "/v1/me/devices"),
        ("DELETE", "/v1/me/devices/1"),
        ("GET", "/v1/me/notifications"),
        ("POST", "/v1/me/notifications/1/read"),
        ("GET", "/v1/me/notification-preferences"),
        ("PUT", "/v1/me/notification-preferences"),
    ):
        response = await client.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)

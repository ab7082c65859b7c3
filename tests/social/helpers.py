"""Factories for the friends tests: walkers, invitations and friendships through the API."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stepcoin.runtime_settings.service import runtime_settings
from tests.conftest import bearer, register


async def walker(client: httpx.AsyncClient, name: str = "Test Walker") -> dict[str, Any]:
    account = await register(client, full_name=name)
    account["headers"] = bearer(account["access_token"])
    account["id"] = account["user"]["id"]
    account["email"] = account["user"]["email"]
    return account


async def invitation(client: httpx.AsyncClient, inviter: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/friends/invitations", headers=inviter["headers"])
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def accept(client: httpx.AsyncClient, account: dict[str, Any], code: str) -> httpx.Response:
    return await client.post(f"/v1/friends/invitations/{code}/accept", headers=account["headers"])


async def befriend(client: httpx.AsyncClient, a: dict[str, Any], b: dict[str, Any]) -> None:
    code = (await invitation(client, a))["code"]
    response = await accept(client, b, code)
    assert response.status_code == 200, response.text


async def friend_ids(client: httpx.AsyncClient, account: dict[str, Any]) -> list[str]:
    response = await client.get("/v1/friends", headers=account["headers"])
    assert response.status_code == 200, response.text
    return [item["user_id"] for item in response.json()["items"]]


async def set_setting(engine: AsyncEngine, key: str, value: Any) -> None:
    """A runtime setting straight in the table (a number, or a string such as `2/hour`)."""
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE settings SET value = CAST(:v AS jsonb) WHERE key = :k"),
            {"k": key, "v": json.dumps(value)},
        )
    runtime_settings.invalidate()


def without_instance(body: dict[str, Any]) -> dict[str, Any]:
    """A problem body without `instance` (the request's own path, which holds the code)."""
    return {key: value for key, value in body.items() if key != "instance"}

"""Factories for the account lifecycle tests: one walker on several devices."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text

from tests.conftest import TEST_PASSWORD, bearer
from tests.shop.helpers import walker_with_coins


async def sign_in_again(
    client: httpx.AsyncClient, email: str, *, user_agent: str, password: str = TEST_PASSWORD
) -> dict[str, Any]:
    """Another device of the same walker: a new sign-in (a new refresh-token family)."""
    response = await client.post(
        "/v1/auth/login",
        json={"email": email, "password": password},
        headers={"User-Agent": user_agent},
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    data["user_agent"] = user_agent
    return data


async def refreshes(client: httpx.AsyncClient, device: dict[str, Any]) -> bool:
    """Does this device's refresh token still work? (It rotates: the device keeps the new one.)"""
    response = await client.post(
        "/v1/auth/refresh",
        json={"refresh_token": device["refresh_token"]},
        headers={"User-Agent": device.get("user_agent", "python-httpx")},
    )
    if response.status_code == 200:
        device["refresh_token"] = response.json()["refresh_token"]
        device["access_token"] = response.json()["access_token"]
        return True
    assert response.status_code == 401, response.text
    return False


async def delete_me(client: httpx.AsyncClient, token: str, **body: Any) -> httpx.Response:
    return await client.request("DELETE", "/v1/me", json=body, headers=bearer(token))


async def verified_walker_with_coins(client: httpx.AsyncClient, engine: Any, coins: int) -> Any:
    """A walker with coins whose email counts as verified (unverified walkers may not order)."""
    account = await walker_with_coins(client, engine, coins)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET email_verified_at = now() WHERE id = :id"),
            {"id": account["user"]["id"]},
        )
    return account

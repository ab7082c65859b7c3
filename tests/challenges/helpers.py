"""Factories for the challenge tests: walkers with coins, challenges through the API, the
worker's tick, and moving a challenge's days into the past (steps are only synced for days
that have happened)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stepcoin.challenges import service
from tests.admin.helpers import adjust, make_staff
from tests.social.helpers import befriend, walker
from tests.steps.helpers import today

__all__ = ["befriend", "make_staff", "walker"]


def tomorrow() -> str:
    return (today() + timedelta(days=1)).isoformat()


def in_days(n: int) -> str:
    return (today() + timedelta(days=n)).isoformat()


def spec(template: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "template": template,
        "name": f"{template} test",
        "starts_on": tomorrow(),
        "ends_on": in_days(3),
        "timezone": "UTC",
    }
    body.update(extra)
    return body


async def create(
    client: httpx.AsyncClient, account: dict[str, Any], body: dict[str, Any], status: int = 201
) -> dict[str, Any]:
    response = await client.post("/v1/challenges", json=body, headers=account["headers"])
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


async def act(
    client: httpx.AsyncClient,
    account: dict[str, Any],
    challenge_id: str,
    what: str,
    status: int = 200,
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/challenges/{challenge_id}/{what}", headers=account["headers"]
    )
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


async def get(
    client: httpx.AsyncClient, account: dict[str, Any], challenge_id: str
) -> dict[str, Any]:
    response = await client.get(f"/v1/challenges/{challenge_id}", headers=account["headers"])
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def board(
    client: httpx.AsyncClient, account: dict[str, Any], challenge_id: str
) -> dict[str, Any]:
    response = await client.get(
        f"/v1/challenges/{challenge_id}/leaderboard", headers=account["headers"]
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def totals(body: dict[str, Any], accounts: dict[str, dict[str, Any]]) -> dict[str, int]:
    names = {a["id"]: name for name, a in accounts.items()}
    return {names[e["user_id"]]: e["total_steps"] for e in body["entries"]}


def winners(body: dict[str, Any], accounts: dict[str, dict[str, Any]]) -> set[str]:
    names = {a["id"]: name for name, a in accounts.items()}
    return {names[e["user_id"]] for e in body["entries"] if e["winner"]}


async def rich_walker(
    client: httpx.AsyncClient, admin: dict[str, Any], coins: int = 1000, name: str = "Test Walker"
) -> dict[str, Any]:
    account = await walker(client, name)
    if coins:
        response = await adjust(client, admin, account["id"], coins)
        assert response.status_code == 201, response.text
    return account


async def balance(client: httpx.AsyncClient, account: dict[str, Any]) -> int:
    response = await client.get("/v1/me", headers=account["headers"])
    assert response.status_code == 200
    return int(response.json()["wallet"]["available_coins"])


async def shift(engine: AsyncEngine, challenge_id: str, days: int) -> None:
    """The challenge's days `days` earlier (as if time had passed since it was made)."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE challenges SET starts_on = starts_on - CAST(:d AS integer), "
                "ends_on = ends_on - CAST(:d AS integer) "
                "WHERE id = :c"
            ),
            {"c": uuid.UUID(challenge_id), "d": days},
        )


async def tick(app: Any, now: datetime | None = None) -> dict[str, int]:
    return await service.tick(app.state.database, now=now)


def later(hours: int) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


async def ledger_rows(engine: AsyncEngine, challenge_id: str) -> list[tuple[str, str, int]]:
    """(walker, type, amount) of every ledger row of the challenge."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT CAST(user_id AS text), transaction_type, amount FROM coin_transactions "
                "WHERE reference_id LIKE :p ORDER BY id"
            ),
            {"p": f"challenge:{challenge_id}:%"},
        )
        return [(r[0], r[1], int(r[2])) for r in rows]


async def escrow(engine: AsyncEngine, challenge_id: str) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT escrow_coins FROM challenges WHERE id = :c"),
                    {"c": uuid.UUID(challenge_id)},
                )
            ).scalar_one()
        )

"""Factories for leaderboard tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stepcoin.db import session_scope
from stepcoin.leaderboards import service
from tests.achievements.helpers import set_days
from tests.conftest import bearer, register
from tests.steps.helpers import today


async def walker(client, engine, name: str, steps_today: int | None = None) -> dict[str, Any]:
    account = await register(client, full_name=name)
    if steps_today is not None:
        await set_days(engine, account["user"]["id"], {today(): steps_today})
    return {"id": account["user"]["id"], "token": account["access_token"], "name": name}


async def rebuild(app, now: datetime | None = None):
    async with session_scope(app.state.database) as session:
        return await service.rebuild_open(session, now)


async def board(client, token: str, period: str = "daily", status: int = 200, **params):
    response = await client.get(f"/v1/leaderboards/{period}", params=params, headers=bearer(token))
    assert response.status_code == status, response.text
    return response.json()


def ranks(body: dict[str, Any]) -> list[tuple[int, str, int]]:
    return [(e["rank"], e["display_name"], e["total_steps"]) for e in body["entries"]]


def utc(day, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)

"""Factories for the notification tests: a walker with push devices, a notification written
as a feature writes it (in a transaction of its own), and running the notify jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from stepcoin.notify import service
from stepcoin.worker import open_jobs
from tests.conftest import bearer, register


async def walker(
    client: httpx.AsyncClient, *, quiet: tuple[str, str] | None = ("00:00", "00:00")
) -> dict[str, Any]:
    """A registered walker; by default without quiet hours (start == end), so that a test
    does not depend on the hour it runs at."""
    data = await register(client)
    data["id"] = data["user"]["id"]
    data["headers"] = bearer(data["access_token"])
    if quiet is not None:
        response = await client.put(
            "/v1/me/notification-preferences",
            json={"quiet_start": quiet[0], "quiet_end": quiet[1]},
            headers=data["headers"],
        )
        assert response.status_code == 200, response.text
    return data


async def add_device(
    client: httpx.AsyncClient,
    who: dict[str, Any],
    platform: str,
    token: str,
    *,
    environment: str = "production",
    timezone: str | None = "UTC",
) -> int:
    response = await client.put(
        "/v1/me/devices",
        json={
            "platform": platform,
            "environment": environment,
            "token": token,
            "app_version": "3.1.0",
            "timezone": timezone,
        },
        headers=who["headers"],
    )
    assert response.status_code in (200, 201), response.text
    return int(response.json()["id"])


async def notify(
    engine: AsyncEngine,
    user_id: str,
    *,
    type: str = "review_outcome",
    dedupe_key: str | None = None,
    title: str = "Day approved",
    body: str = "Monday earned 12 coins.",
    expires_at: datetime | None = None,
    collapse_key: str | None = None,
) -> int | None:
    """What a feature does: notify inside its own transaction."""
    async with AsyncSession(engine) as session, session.begin():
        return await service.notify(
            session,
            uuid.UUID(user_id),
            type,
            title,
            body,
            {"screen": "steps"},
            dedupe_key=dedupe_key or f"test:{uuid.uuid4()}",
            collapse_key=collapse_key,
            expires_at=expires_at,
        )


async def run_notify_jobs(app: Any) -> None:
    """Run every notify job due now, as the worker does."""
    async with open_jobs(app.state.database) as jobs:
        await jobs.run_worker_async(wait=False, install_signal_handlers=False, queues=["notify"])


async def one(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).first()


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())

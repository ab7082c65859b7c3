"""Factories for campaign tests: many walkers at once (set-based), campaigns through the API."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stepcoin.campaigns import service
from stepcoin.db import session_scope


async def many_walkers(engine: AsyncEngine, n: int, *, prefix: str = "w") -> list[str]:
    """`n` walkers with empty wallets, in one statement each (no sign-up: fast)."""
    async with engine.begin() as conn:
        rows = await conn.execute(
            text(
                "INSERT INTO users (email, full_name, auth_method, role) "
                "SELECT :prefix || '-' || g || '-' || md5(random()::text) || '@walkers.test', "
                "'Walker ' || g, 'email', 'user' FROM generate_series(1, :n) AS g RETURNING id"
            ),
            {"n": n, "prefix": prefix},
        )
        ids = [str(r) for r in rows.scalars()]
        await conn.execute(
            text("INSERT INTO wallets (user_id) SELECT unnest(CAST(:ids AS uuid[]))"),
            {"ids": ids},
        )
    return sorted(ids)


async def create(
    client: httpx.AsyncClient,
    admin: dict[str, Any],
    segment: dict[str, Any],
    *,
    coins: int = 25,
    name: str = "Spring bonus",
    message: str = "Thanks for walking with us this spring!",
) -> httpx.Response:
    return await client.post(
        "/v1/admin/campaigns",
        json={"name": name, "message": message, "coins_per_walker": coins, "segment": segment},
        headers=admin["headers"],
    )


async def run_job(app: Any, campaign_id: str) -> dict[str, Any]:
    """What the worker does for campaigns:run (the job's body, in this process)."""
    return await service.run(app.state.database, uuid.UUID(campaign_id))


async def pay_one_chunk(app: Any, campaign_id: str, chunk: int) -> bool:
    async with session_scope(app.state.database) as session:
        return await service.pay_chunk(session, uuid.UUID(campaign_id), chunk=chunk)


async def campaign_rows(engine: AsyncEngine, campaign_id: str) -> list[Any]:
    async with engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    text(
                        "SELECT user_id, amount, note, reference_id FROM coin_transactions "
                        "WHERE transaction_type = 'campaign_reward' "
                        "AND reference_id LIKE :ref ORDER BY user_id"
                    ),
                    {"ref": f"campaign:{campaign_id}:%"},
                )
            ).all()
        )


async def set_setting(engine: AsyncEngine, key: str, value: int) -> None:
    from stepcoin.runtime_settings.service import runtime_settings

    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE settings SET value = to_jsonb(CAST(:v AS bigint)) WHERE key = :k"),
            {"k": key, "v": value},
        )
    runtime_settings.invalidate()

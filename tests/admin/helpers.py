"""Small factories for the admin and wallet tests: staff accounts, adjustments, table counts."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from stepcoin.wallet.service import LedgerReport, check_ledger
from tests.conftest import bearer, register, unique_email


async def make_staff(
    client: httpx.AsyncClient, engine: AsyncEngine, role: str = "admin", **extra: Any
) -> dict[str, Any]:
    """A registered account promoted to `role`; its token works at once (roles are re-read)."""
    account = await register(client, email=unique_email(role), **extra)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET role = :role WHERE id = :id"),
            {"role": role, "id": account["user"]["id"]},
        )
    account["headers"] = bearer(account["access_token"])
    return account


async def adjust(
    client: httpx.AsyncClient,
    admin: dict[str, Any],
    user_id: str,
    amount: int,
    reason: str = "goodwill credit",
    key: str | None = None,
) -> httpx.Response:
    headers = dict(admin["headers"])
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post(
        f"/v1/admin/users/{user_id}/adjustments",
        json={"amount": amount, "reason": reason},
        headers=headers,
    )


async def count(engine: AsyncEngine, sql: str, **params: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


async def wallet_row(engine: AsyncEngine, user_id: str) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT available_coins, lifetime_earned, lifetime_spent "
                    "FROM wallets WHERE user_id = :id"
                ),
                {"id": user_id},
            )
        ).one()


async def ledger_report(engine: AsyncEngine) -> LedgerReport:
    async with AsyncSession(engine) as session:
        return await check_ledger(session)

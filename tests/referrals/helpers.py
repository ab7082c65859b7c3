"""Factories for referral tests: walkers, claims through the API, moving a claim back in time,
the settle job run in this process with a `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from stepcoin.referrals import service
from stepcoin.runtime_settings.service import runtime_settings
from tests.conftest import bearer, register


async def walker(client: httpx.AsyncClient, name: str = "Test Walker") -> dict[str, Any]:
    account = await register(client, full_name=name)
    account["headers"] = bearer(account["access_token"])
    account["id"] = account["user"]["id"]
    return account


async def code_of(client: httpx.AsyncClient, account: dict[str, Any]) -> str:
    response = await client.get("/v1/me/referral", headers=account["headers"])
    assert response.status_code == 200, response.text
    code: str = response.json()["code"]
    return code


async def claim(
    client: httpx.AsyncClient, account: dict[str, Any], code: str, status: int = 201
) -> dict[str, Any]:
    response = await client.post(
        "/v1/referrals/claim", json={"code": code}, headers=account["headers"]
    )
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def invite(
    client: httpx.AsyncClient, referrer: dict[str, Any], name: str = "Invited Walker"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new walker who claims the referrer's code: (the invitee, the referral)."""
    invitee = await walker(client, name)
    referral = await claim(client, invitee, await code_of(client, referrer))
    return invitee, referral


async def backdate(engine: AsyncEngine, referral_id: int, days: int) -> None:
    """Move a claim (and the invitee's sign-up) `days` back in time."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE referrals SET claimed_at = claimed_at - make_interval(days => :d) "
                "WHERE id = :id"
            ),
            {"id": referral_id, "d": days},
        )
        await conn.execute(
            text(
                "UPDATE users SET created_at = created_at - make_interval(days => :d) "
                "WHERE id = (SELECT invitee_id FROM referrals WHERE id = :id)"
            ),
            {"id": referral_id, "d": days},
        )


async def approved_days(engine: AsyncEngine, user_id: str, days: list[Any]) -> None:
    """Days with approved (credited) steps, as the step loop leaves them in step_days."""
    async with engine.begin() as conn:
        for day in days:
            await conn.execute(
                text(
                    "INSERT INTO step_days (user_id, recorded_date, credited_source, "
                    "credited_steps) VALUES (:u, :d, 'healthkit', 7000) "
                    "ON CONFLICT (user_id, recorded_date) DO UPDATE SET credited_steps = 7000"
                ),
                {"u": user_id, "d": day},
            )


async def settle(app: Any, now: datetime | None = None) -> dict[str, int]:
    """What the worker does for referrals:settle, in this process."""
    return await service.settle(app.state.database, now=now)


def later(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


async def row(engine: AsyncEngine, referral_id: int) -> Any:
    async with engine.connect() as conn:
        return (
            await conn.execute(text("SELECT * FROM referrals WHERE id = :id"), {"id": referral_id})
        ).one()


async def rewards(engine: AsyncEngine, user_id: str) -> list[tuple[int, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT amount, reference_id FROM coin_transactions WHERE user_id = :u "
                "AND transaction_type = 'referral_reward' ORDER BY id"
            ),
            {"u": user_id},
        )
        return [(r.amount, r.reference_id) for r in rows]


async def set_terms(engine: AsyncEngine, **changes: int) -> dict[str, Any]:
    """Change the stored terms (raising the version), straight in the database."""
    async with engine.begin() as conn:
        stored = (
            await conn.execute(text("SELECT value FROM settings WHERE key = 'referrals.terms'"))
        ).scalar_one()
        terms = {**stored, "version": stored["version"] + 1, **changes}
        await conn.execute(
            text("UPDATE settings SET value = CAST(:v AS jsonb) WHERE key = 'referrals.terms'"),
            {"v": orjson.dumps(terms).decode()},
        )
    runtime_settings.invalidate()
    return terms


async def set_setting(engine: AsyncEngine, key: str, value: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE settings SET value = to_jsonb(CAST(:v AS bigint)) WHERE key = :k"),
            {"k": key, "v": value},
        )
    runtime_settings.invalidate()

"""Factories for achievement tests: achievements, credited days and orders written directly."""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

from sqlalchemy import text

from stepcoin.achievements import service
from stepcoin.db import session_scope


async def achievement(
    engine,
    code: str,
    criteria: dict[str, Any],
    reward: int = 0,
    active: bool = True,
    *,
    exists_ok: bool = False,
) -> int:
    conflict = " ON CONFLICT (code) DO UPDATE SET code = EXCLUDED.code" if exists_ok else ""
    async with engine.begin() as conn:
        return (
            await conn.execute(
                text(
                    "INSERT INTO achievements (code, name, unlock_criteria, reward_coins, "
                    "is_active) VALUES (:c, :n, CAST(:k AS jsonb), :r, :a)"
                    + conflict
                    + " RETURNING id"
                ),
                {
                    "c": code,
                    "n": code.replace("_", " ").title(),
                    "k": json.dumps(criteria),
                    "r": reward,
                    "a": active,
                },
            )
        ).scalar_one()


async def set_days(engine, user_id: str, days: dict[date, int]) -> None:
    """Credited (approved) steps per local day, as the step loop leaves them in step_days."""
    async with engine.begin() as conn:
        for day, steps in days.items():
            await conn.execute(
                text(
                    "INSERT INTO step_days (user_id, recorded_date, credited_source, "
                    "credited_steps) VALUES (:u, :d, 'healthkit', :s) "
                    "ON CONFLICT (user_id, recorded_date) DO UPDATE "
                    "SET credited_steps = EXCLUDED.credited_steps"
                ),
                {"u": user_id, "d": day, "s": steps},
            )


async def evaluate(app, user_id: str) -> list[str]:
    async with session_scope(app.state.database) as session:
        unlocked = await service.evaluate_user(session, uuid.UUID(user_id))
    return [u.code for u in unlocked]


async def unlocked_codes(engine, user_id: str) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT a.code FROM user_achievements ua JOIN achievements a "
                "ON a.id = ua.achievement_id WHERE ua.user_id = :u"
            ),
            {"u": user_id},
        )
        return {r.code for r in rows}


async def rewards(engine, user_id: str) -> list[tuple[int, str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT amount, reference_id, balance_after FROM coin_transactions "
                "WHERE user_id = :u AND transaction_type = 'achievement_reward' ORDER BY id"
            ),
            {"u": user_id},
        )
        return [tuple(r) for r in rows]

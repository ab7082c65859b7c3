"""Queries about users and their profile; flushes, never commits."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_PROFILE = text(
    """
    SELECT u.id, u.email, u.full_name, u.phone, u.auth_method, u.timezone, u.role, u.created_at,
           w.available_coins, w.pending_coins, w.lifetime_earned, w.lifetime_spent
    FROM users u JOIN wallets w ON w.user_id = u.id
    WHERE u.id = :user_id AND u.is_active
    """
)


async def get_profile(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any] | None:
    """The profile with its wallet in one round trip; None for a missing or inactive user."""
    row = (await session.execute(_PROFILE, {"user_id": user_id})).mappings().first()
    return dict(row) if row else None


async def update_profile(
    session: AsyncSession, user_id: uuid.UUID, changes: dict[str, Any]
) -> None:
    allowed = {"full_name", "phone", "timezone"}
    assert set(changes) <= allowed
    if not changes:
        return
    assignments = ", ".join(f"{column} = :{column}" for column in changes)
    await session.execute(
        text(f"UPDATE users SET {assignments}, updated_at = now() WHERE id = :user_id"),
        {**changes, "user_id": user_id},
    )


def profile_to_response(row: dict[str, Any]) -> dict[str, Any]:
    wallet = {
        key: row[key]
        for key in ("available_coins", "pending_coins", "lifetime_earned", "lifetime_spent")
    }
    user = {
        key: row[key]
        for key in (
            "id",
            "email",
            "full_name",
            "phone",
            "auth_method",
            "timezone",
            "role",
            "created_at",
        )
    }
    return {**user, "wallet": wallet}

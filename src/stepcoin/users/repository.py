"""Queries about users and their profile; flushes, never commits."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_PROFILE = text(
    """
    SELECT u.id, u.email, u.email_verified_at IS NOT NULL AS email_verified, u.full_name,
       u.phone, u.auth_method, u.timezone, u.role, u.created_at, u.daily_step_goal,
           w.available_coins, w.pending_coins, w.lifetime_earned, w.lifetime_spent
    FROM users u JOIN wallets w ON w.user_id = u.id
    WHERE u.id = :user_id AND u.is_active
    """
)


PROFILE_SQL = """
SELECT u.id, u.email, u.email_verified_at IS NOT NULL AS email_verified, u.full_name,
       u.phone, u.auth_method, u.timezone, u.role, u.created_at, u.daily_step_goal,
       w.available_coins, w.pending_coins, w.lifetime_earned, w.lifetime_spent
FROM users u JOIN wallets w ON w.user_id = u.id
WHERE u.id = $1 AND u.is_active
"""


async def fetch_profile(driver: Any, user_id: uuid.UUID) -> dict[str, Any] | None:
    """The profile with its wallet: one prepared statement on a bare connection."""
    row = await driver.fetchrow(PROFILE_SQL, user_id)
    return dict(row) if row else None


async def get_profile(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any] | None:
    """The profile with its wallet in one round trip; None for a missing or inactive user."""
    row = (await session.execute(_PROFILE, {"user_id": user_id})).mappings().first()
    return dict(row) if row else None


async def update_profile(
    session: AsyncSession, user_id: uuid.UUID, changes: dict[str, Any]
) -> None:
    allowed = {"full_name", "phone", "timezone", "daily_step_goal"}
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
            "email_verified",
            "full_name",
            "phone",
            "auth_method",
            "timezone",
            "role",
            "created_at",
        )
    }
    return {**user, "daily_step_goal": row["daily_step_goal"], "wallet": wallet}


_ADMIN_USER_COLUMNS = """
    u.id, u.email, u.full_name, u.role, u.is_active, u.auth_method, u.created_at, u.deleted_at,
    w.available_coins, w.pending_coins, w.lifetime_earned, w.lifetime_spent
"""
_WALLET_KEYS = ("available_coins", "pending_coins", "lifetime_earned", "lifetime_spent")


def like_pattern(fragment: str) -> str:
    """A case-insensitive substring pattern; the user's %, _ and \\ match only themselves."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_users(
    session: AsyncSession,
    *,
    query: str | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[dict[str, Any]]:
    """Users (active or not) with their wallets, newest first; `query` matches email or name."""
    conditions = []
    params: dict[str, Any] = {"limit": limit}
    if query:
        conditions.append(
            "(u.email ILIKE :pattern ESCAPE '\\' OR u.full_name ILIKE :pattern ESCAPE '\\')"
        )
        params["pattern"] = like_pattern(query)
    if after:
        conditions.append("(u.created_at, u.id) < (:after_at, :after_id)")
        params["after_at"], params["after_id"] = after
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = await session.execute(
        text(
            f"""
            SELECT {_ADMIN_USER_COLUMNS}
            FROM users u JOIN wallets w ON w.user_id = u.id
            {where}
            ORDER BY u.created_at DESC, u.id DESC
            LIMIT :limit
            """
        ),
        params,
    )
    return [admin_user_to_response(dict(row)) for row in rows.mappings()]


async def get_user_for_admin(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any] | None:
    row = (
        (
            await session.execute(
                text(
                    f"SELECT {_ADMIN_USER_COLUMNS} FROM users u "
                    "JOIN wallets w ON w.user_id = u.id WHERE u.id = :user_id"
                ),
                {"user_id": user_id},
            )
        )
        .mappings()
        .first()
    )
    return admin_user_to_response(dict(row)) if row else None


async def lock_users(session: AsyncSession, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    """Lock the given users in primary-key order (no deadlocks) and return role and activeness."""
    rows = await session.execute(
        text("SELECT id, role, is_active FROM users WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"),
        {"ids": user_ids},
    )
    return {row.id: row for row in rows}


async def set_role(session: AsyncSession, user_id: uuid.UUID, role: str) -> None:
    await session.execute(
        text("UPDATE users SET role = :role, updated_at = now() WHERE id = :user_id"),
        {"role": role, "user_id": user_id},
    )


def admin_user_to_response(row: dict[str, Any]) -> dict[str, Any]:
    wallet = {key: row.pop(key) for key in _WALLET_KEYS}
    return {**row, "wallet": wallet}


async def timezone_if_active(session: AsyncSession, user_id: uuid.UUID) -> str | None:
    """The user's timezone name; None for a missing or inactive user."""
    row = (
        await session.execute(
            text("SELECT timezone, is_active FROM users WHERE id = :id"), {"id": user_id}
        )
    ).first()
    if row is None or not row.is_active:
        return None
    return str(row.timezone)


async def get_staff_view(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any] | None:
    """Everything staff see at the top of a user's page: the profile, active or not, whether
    a second factor is on, and the wallet's balances (flat)."""
    row = (
        (
            await session.execute(
                text(
                    """
                    SELECT u.id, u.email, u.email_verified_at IS NOT NULL AS email_verified,
                           u.full_name, u.phone, u.role, u.auth_method,
                           u.timezone, u.created_at, u.is_active, u.deleted_at,
                           u.totp_enabled_at IS NOT NULL AS totp_enabled,
                           w.available_coins, w.pending_coins, w.lifetime_earned,
                           w.lifetime_spent
                    FROM users u JOIN wallets w ON w.user_id = u.id WHERE u.id = :id
                    """
                ),
                {"id": user_id},
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def emails_by_id(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The emails of the given users (those that exist)."""
    if not ids:
        return {}
    rows = await session.execute(
        text("SELECT id, email FROM users WHERE id = ANY(:ids)"), {"ids": list(ids)}
    )
    return {row.id: row.email for row in rows}

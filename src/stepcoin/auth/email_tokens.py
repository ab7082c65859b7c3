"""Tokens sent by mail (verification, password reset): 256 random bits, of which only the
sha256 is stored; single use; expiring. A token of one purpose never works for another."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.distribution import routed_token, walker_condition
from stepcoin.errors import AppError

VERIFY_EMAIL: Final = "verify_email"
PASSWORD_RESET: Final = "password_reset"
TTL: Final = {VERIFY_EMAIL: timedelta(hours=48), PASSWORD_RESET: timedelta(minutes=30)}
MAX_TOKEN_LENGTH: Final = 128


def hash_token(raw: str) -> bytes:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).digest()


async def issue(session: AsyncSession, user_id: uuid.UUID, purpose: str) -> str:
    """A new token for the user (earlier ones of the same purpose stay valid until used or
    expired; using any of them spends them all)."""
    raw = routed_token(user_id, secrets.token_urlsafe(32))  # names its walker: one shard
    await session.execute(
        text(
            "INSERT INTO email_tokens (purpose, user_id, token_hash, expires_at) "
            "VALUES (:purpose, :user_id, :hash, now() + make_interval(secs => :ttl))"
        ),
        {
            "purpose": purpose,
            "user_id": user_id,
            "hash": hash_token(raw),
            "ttl": TTL[purpose].total_seconds(),
        },
    )
    return raw


def invalid_token() -> AppError:
    return AppError(
        "This link is not valid; ask for a new one.", code="invalid_token_link", status=400
    )


async def consume(session: AsyncSession, raw: str, purpose: str) -> uuid.UUID:
    """Spend a token (and every other unused token of its user and purpose); the user's id.
    400 for an unknown token, 410 for a used or expired one; nothing changes then."""
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        raise invalid_token()
    token_hash = hash_token(raw)
    # by (user_id, token_hash) when the token names its walker (issue 19 item 4); a token
    # mailed before is found by its hash alone
    walker, routed = walker_condition(raw)
    row = (
        await session.execute(
            text(
                "SELECT user_id, used_at IS NOT NULL AS used, expires_at <= now() AS expired "
                f"FROM email_tokens WHERE {walker}token_hash = :hash AND purpose = :purpose "
                "FOR UPDATE"
            ),
            {"hash": token_hash, "purpose": purpose, "user_id": routed},
        )
    ).first()
    if row is None:
        raise invalid_token()
    if row.used:
        raise AppError(
            "This link was used already; ask for a new one.", code="token_used", status=410
        )
    if row.expired:
        raise AppError(
            "This link has expired; ask for a new one.", code="token_expired", status=410
        )
    await session.execute(
        text(
            "UPDATE email_tokens SET used_at = now() "
            "WHERE user_id = :user_id AND purpose = :purpose AND used_at IS NULL"
        ),
        {"user_id": row.user_id, "purpose": purpose},
    )
    return uuid.UUID(str(row.user_id))


async def forget(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Account deletion: no link of the account works, or stays, afterwards."""
    await session.execute(text("DELETE FROM email_tokens WHERE user_id = :id"), {"id": user_id})

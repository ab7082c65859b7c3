"""The owner of each globally unique key (issue 19 item 4): an email, a Google or Apple
subject, a push token, a referral code.

On Citus a per-user table can only be unique per walker (its shard); the keys that must be
unique across all walkers are claimed here, in a table sharded by the key itself, by the code
that writes the row they index and in the same transaction (Citus runs no cross-shard
triggers). The primary key (kind, key) refuses a second claim: two sign-ups with one email at
once, one waits for the other and then finds the key taken. Reads may go either way: the
per-user table keeps a plain index on the key.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

# order_code: claimed by stepcoin_place_order (v4) for each order it creates
KINDS = ("email", "identity", "push_token", "referral_code", "order_code")


class GlobalKey(Base):
    """One globally unique key and the walker who owns it."""

    __tablename__ = "global_keys"
    __table_args__ = (
        CheckConstraint(f"kind IN {KINDS}", name="kind"),
        Index("ix_global_keys_user_id", "user_id"),
    )

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def identity_key(provider: str, subject: str) -> str:
    return f"{provider}:{subject}"


def push_token_key(platform: str, token: str) -> str:
    return f"{platform}:{token}"


async def claim(session: AsyncSession, kind: str, key: str, user_id: uuid.UUID) -> bool:
    """Claim `key` for the walker; False when someone else (or they) holds it already. A
    concurrent claim of the same key waits for this transaction and then loses."""
    claimed = (
        await session.execute(
            text(
                "INSERT INTO global_keys (kind, key, user_id) VALUES (:kind, :key, :user_id) "
                "ON CONFLICT (kind, key) DO NOTHING RETURNING true"
            ),
            {"kind": kind, "key": key, "user_id": user_id},
        )
    ).scalar_one_or_none()
    return bool(claimed)


async def owner(session: AsyncSession, kind: str, key: str) -> uuid.UUID | None:
    owner_id: uuid.UUID | None = (
        await session.execute(
            text("SELECT user_id FROM global_keys WHERE kind = :kind AND key = :key"),
            {"kind": kind, "key": key},
        )
    ).scalar_one_or_none()
    return owner_id


async def take(session: AsyncSession, kind: str, key: str, user_id: uuid.UUID) -> uuid.UUID | None:
    """Give `key` to the walker, whoever held it (a push token moves to the walker now signed
    in on that phone); the earlier owner when it was someone else, whose row the caller then
    removes in the same transaction. The key stays locked until the transaction ends."""
    for _ in range(3):
        held: uuid.UUID | None = (
            await session.execute(
                text(
                    "SELECT user_id FROM global_keys WHERE kind = :kind AND key = :key FOR UPDATE"
                ),
                {"kind": kind, "key": key},
            )
        ).scalar_one_or_none()
        if held is not None:
            if held != user_id:
                await session.execute(
                    text(
                        "UPDATE global_keys SET user_id = :user_id, created_at = now() "
                        "WHERE kind = :kind AND key = :key"
                    ),
                    {"kind": kind, "key": key, "user_id": user_id},
                )
                return held
            return None
        if await claim(session, kind, key, user_id):
            return None
    raise RuntimeError(f"global key {kind} kept changing hands")  # pragma: no cover


async def release(session: AsyncSession, kind: str, key: str, user_id: uuid.UUID) -> None:
    """The walker lets `key` go (a changed or erased email, a removed device)."""
    await session.execute(
        text("DELETE FROM global_keys WHERE kind = :kind AND key = :key AND user_id = :user_id"),
        {"kind": kind, "key": key, "user_id": user_id},
    )

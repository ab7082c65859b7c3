"""Referrals: each walker's code, and one row per invitee who claimed one (docs/referrals.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

# pending: waiting for the invitee's qualifying days; held: qualified, paid when the hold ends;
# review: a self-referral signal, a person decides; paid: both sides paid (the referrer's side
# may be left out by the monthly cap); rejected, expired, cancelled: closed without coins.
STATUSES = ("pending", "held", "review", "paid", "rejected", "expired", "cancelled")


class ReferralCode(Base):
    """A walker's own code, made on their first GET /v1/me/referral."""

    __tablename__ = "referral_codes"
    __table_args__ = (
        # issue 19 item 4: distributed by user_id; a code's one owner is in global_keys
        UniqueConstraint("user_id", "code"),
        Index("ix_referral_codes_code", "code"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Referral(Base):
    """One invitee's claim of a referrer's code, with the terms in force when it was claimed
    (everything later about it reads its own copy), its state and the reasons behind it."""

    __tablename__ = "referrals"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES}", name="status"),
        CheckConstraint("referrer_id <> invitee_id", name="not_self"),
        Index("ix_referrals_referrer", "referrer_id", "claimed_at", "id"),
        Index(
            "ix_referrals_review",
            "status",
            "claimed_at",
            "id",
        ),
        Index(
            "ix_referrals_open",
            "id",
            postgresql_where=text("status IN ('pending', 'held')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    referrer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    invitee_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    code: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    reasons: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'::text[]"))
    terms: Mapped[dict[str, Any]] = mapped_column(JSONB)
    terms_version: Mapped[int] = mapped_column(Integer)
    approved_days: Mapped[int] = mapped_column(Integer, server_default="0")
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    qualified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hold_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    referrer_coins: Mapped[int | None] = mapped_column(BigInteger)  # paid to the referrer
    invitee_coins: Mapped[int | None] = mapped_column(BigInteger)  # paid to the invitee
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

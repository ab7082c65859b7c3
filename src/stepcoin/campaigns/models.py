"""Campaigns: coins for a segment of walkers, each paid once (docs/economy.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

STATUSES = ("draft", "approved", "running", "done")


class Campaign(Base):
    """One campaign: what it pays, to whom (the segment), who approved and ran it, and its
    progress. The run's cursor (`resume_after`, the last user id of the last committed chunk)
    and the counters are written in the same transaction as the chunk's ledger rows."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES}", name="status"),
        CheckConstraint("coins_per_walker > 0", name="coins_positive"),
        Index("ix_campaigns_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    name: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    coins_per_walker: Mapped[int] = mapped_column(BigInteger)
    segment: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    approved_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the total the approver saw (walkers x coins at approval): a run above it needs a new one
    approved_coins: Mapped[int | None] = mapped_column(BigInteger)
    run_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    walkers_total: Mapped[int] = mapped_column(BigInteger, server_default="0")
    walkers_paid: Mapped[int] = mapped_column(BigInteger, server_default="0")
    coins_paid: Mapped[int] = mapped_column(BigInteger, server_default="0")
    resume_after: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


BROADCAST_STATUSES = ("draft", "approved", "running", "done")


class Broadcast(Base):
    """A push broadcast to a segment (the campaigns' segment builder): one `broadcast`
    notification per walker (dedupe key `broadcast:<id>`), written chunk after chunk by the
    job with its cursor; the delivery figures are read from the notifications themselves."""

    __tablename__ = "broadcasts"
    __table_args__ = (
        CheckConstraint(f"status IN {BROADCAST_STATUSES}", name="status"),
        Index("ix_broadcasts_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(1000))
    segment: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), server_default="draft")
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    approved_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the walkers the approver saw: a run to more needs a new approval
    approved_walkers: Mapped[int | None] = mapped_column(BigInteger)
    run_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    walkers_total: Mapped[int] = mapped_column(BigInteger, server_default="0")
    walkers_queued: Mapped[int] = mapped_column(BigInteger, server_default="0")
    resume_after: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))

"""Precomputed leaderboards: one row per period, period start and user."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

PERIODS = ("daily", "weekly", "monthly", "all_time")


class LeaderboardEntry(Base):
    __tablename__ = "leaderboard_cache"
    __table_args__ = (
        CheckConstraint(f"period IN {PERIODS}", name="period"),
        CheckConstraint("rank >= 1", name="rank_positive"),
        Index("ix_leaderboard_cache_period_rank", "period", "period_start", "rank"),
    )

    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer)
    total_steps: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

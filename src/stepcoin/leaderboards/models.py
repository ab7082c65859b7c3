"""Precomputed leaderboards: one row per period, period start and user, plus one row per board."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

PERIODS = ("daily", "weekly", "monthly", "all_time")


class LeaderboardEntry(Base):
    """One ranked user of one board; ties share a rank (1, 1, 3)."""

    __tablename__ = "leaderboard_cache"
    __table_args__ = (
        CheckConstraint(f"period IN {PERIODS}", name="period"),
        CheckConstraint("rank >= 1", name="rank_positive"),
        # Room on every page for a new version of each row: a rebuild that only moves ranks
        # (most rows, most of the time) updates in place (HOT), without touching an index.
        {"postgresql_with": {"fillfactor": 45}},
    )

    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer)
    total_steps: Mapped[int] = mapped_column(BigInteger)
    # When this row last changed (a rebuild rewrites only rows whose rank or total moved);
    # the board's own build time is leaderboard_builds.computed_at.
    computed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


# The board in display order: total descending, then user id (the order of the ranks, ties
# by user id). The top N and the caller's neighbours are index range scans without a sort. It
# is on the total, not the rank, so that a rank change alone is a heap-only update.
Index(
    "ix_leaderboard_cache_board_order",
    LeaderboardEntry.period,
    LeaderboardEntry.period_start,
    LeaderboardEntry.total_steps.desc(),
    LeaderboardEntry.user_id,
)


class LeaderboardBuild(Base):
    """One board (period, period start): when it was last built, and whether it is final.

    Written in the same transaction as the board's rows, so a reader sees the build time of
    the rows it reads. A final board (a closed period's snapshot) is never rebuilt.
    """

    __tablename__ = "leaderboard_builds"
    __table_args__ = (CheckConstraint(f"period IN {PERIODS}", name="period"),)

    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    entries: Mapped[int] = mapped_column(Integer, server_default="0")
    is_final: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    duration_ms: Mapped[int] = mapped_column(Integer, server_default="0")

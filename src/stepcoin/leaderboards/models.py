"""Leaderboards: one row per board (period, period start) and walker holding the walker's total,
one row per board, the walkers per bucket of totals (ranks are counted from it at read time),
and the log of walkers whose days changed since the last refresh (docs/engagement.md)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

PERIODS = ("daily", "weekly", "monthly", "all_time")


class LeaderboardEntry(Base):
    """One walker of one board with a positive total. The rank is not stored: it is counted
    at read time (1 + the walkers with a higher total; ties share a rank: 1, 1, 3)."""

    __tablename__ = "leaderboard_cache"
    __table_args__ = (
        CheckConstraint(f"period IN {PERIODS}", name="period"),
        # Room on every page for a new version of each row (fillfactor kept from the time when
        # ranks were stored; harmless for a table updated a walker at a time).
        {"postgresql_with": {"fillfactor": 45}},
    )

    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    total_steps: Mapped[int] = mapped_column(BigInteger)
    # When this row last changed (a refresh or rebuild rewrites only rows whose total moved);
    # the board's own build time is leaderboard_builds.computed_at.
    computed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


# The board in display order: total descending, then user id (the order of the ranks, ties
# by user id). The top N and the caller's neighbours are index range scans without a sort, and
# the walkers above a total within its bucket an index-only range.
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
    # When the board was last built in full (computed_at moves with every refresh too): the
    # safety-net rebuild's interval counts from here (migration 0018).
    rebuilt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LeaderboardRankCount(Base):
    """Walkers of one board whose total falls in one bucket (stepcoin_board_bucket: the total
    with its first three digits kept). `walkers` is kept equal to leaderboard_cache by
    statement triggers (migration 0015); a rank is 1 + `walkers_above` of the total's bucket +
    the walkers above it in that bucket (about 1/1000th of the board at most)."""

    __tablename__ = "leaderboard_rank_counts"
    # (no CHECK walkers >= 0: PostgreSQL checks the proposed row of INSERT ... ON CONFLICT,
    # a negative delta, before it finds the conflict; tests compare the counts with the rows)

    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    walkers: Mapped[int] = mapped_column(BigInteger)
    # The walkers of the buckets above this one: set by every refresh and full rebuild for
    # the boards it wrote (repository._RANK_ABOVE), so a rank is one probe of this table.
    walkers_above: Mapped[int] = mapped_column(BigInteger, server_default="0")


# One row: a generation moved at the commit of every change of a walker's full_name or
# is_active and of every deleted walker (a deferred constraint trigger on users, migration
# 0018). The API's per-process cache of each board's top entries (with display names) is keyed
# by the board's computed_at and this generation.
leaderboard_names = Table(
    "leaderboard_names",
    Base.metadata,
    Column("id", SmallInteger, CheckConstraint("id = 1", name="one_row"), primary_key=True),
    Column("generation", BigInteger, nullable=False),
)


# The walkers, days and deltas of credited steps since the last refresh (day and delta NULL:
# the walker's is_active flipped, every board of the walker is recounted), appended by row
# triggers on step_days and users; drained by the refresh, which adds the deltas.
# No key and no index: the cheapest append for the step sync (duplicates are fine).
leaderboard_dirty = Table(
    "leaderboard_dirty",
    Base.metadata,
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("recorded_date", Date, nullable=True),
    # NEW.credited_steps - OLD.credited_steps; NULL with a NULL day (is_active flipped)
    Column("steps_delta", BigInteger, nullable=True),
)

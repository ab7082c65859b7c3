"""Leaderboards: one row per board (period, period start) and walker holding the walker's total,
one row per board, the walkers per bucket of totals (ranks are counted from it at read time),
and the log of walkers whose days changed since the last refresh (docs/engagement.md)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

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
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

PERIODS = ("daily", "weekly", "monthly", "all_time")
PRIZE_PERIODS = ("daily", "weekly", "monthly")  # the boards that close
AWARD_STATUSES = ("waiting", "held", "paid")  # held: by a prizes issuance budget


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


class LeaderboardGroupEntry(Base):
    """A group member's row of one board: leaderboard_cache x group_members, kept by the
    statement triggers of migration 0033 (sql/group_boards.v1.sql), so a group's board is read
    like the global one: its top an index range, a rank an index-only count."""

    __tablename__ = "leaderboard_group_entries"
    __table_args__ = (CheckConstraint(f"period IN {PERIODS}", name="period"),)

    group_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    total_steps: Mapped[int] = mapped_column(BigInteger)


# A group's board in display order: the top, the neighbours, the count above a total.
Index(
    "ix_leaderboard_group_entries_order",
    LeaderboardGroupEntry.group_id,
    LeaderboardGroupEntry.period,
    LeaderboardGroupEntry.period_start,
    LeaderboardGroupEntry.total_steps.desc(),
    LeaderboardGroupEntry.user_id,
)


class LeaderboardPrize(Base):
    """One line of a period's prize table: the walkers ranked from_rank..to_rank on each final
    board of that period get `coins` each (ties share a rank, so a tie gets that rank's prize)."""

    __tablename__ = "leaderboard_prizes"
    __table_args__ = (
        CheckConstraint(f"period IN {PRIZE_PERIODS}", name="period"),
        CheckConstraint("from_rank >= 1 AND to_rank >= from_rank", name="ranks"),
        CheckConstraint("coins > 0", name="coins_positive"),
    )

    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    from_rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    to_rank: Mapped[int] = mapped_column(Integer)
    coins: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LeaderboardPrizeRound(Base):
    """The prizes of one final board, fixed in the transaction of its final build: the prize
    table as it was then and the winners (leaderboard_prize_awards). Once per board."""

    __tablename__ = "leaderboard_prize_rounds"
    __table_args__ = (CheckConstraint(f"period IN {PRIZE_PERIODS}", name="period"),)

    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    prizes: Mapped[Any] = mapped_column(JSONB)
    winners: Mapped[int] = mapped_column(Integer, server_default="0")
    coins: Mapped[int] = mapped_column(BigInteger, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LeaderboardPrizeAward(Base):
    """One winner of one round: waiting while any of the walker's days in the period is
    flagged (in review), paid once (ledger reference prize:<period>:<start>:<user>)."""

    __tablename__ = "leaderboard_prize_awards"
    __table_args__ = (
        CheckConstraint(f"status IN {AWARD_STATUSES}", name="status"),
        CheckConstraint("coins > 0", name="coins_positive"),
        # the payout's scan: only the waiting ones
        Index(
            "ix_leaderboard_prize_awards_waiting",
            "user_id",
            postgresql_where=text("status = 'waiting'"),
        ),
    )

    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    period_end: Mapped[date] = mapped_column(Date)
    rank: Mapped[int] = mapped_column(Integer)
    total_steps: Mapped[int] = mapped_column(BigInteger)
    coins: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), server_default="waiting")
    transaction_id: Mapped[int | None] = mapped_column(BigInteger)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

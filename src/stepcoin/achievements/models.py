"""Achievements (badges with a coin reward) and who unlocked them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

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
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base


class Achievement(Base):
    __tablename__ = "achievements"
    __table_args__ = (
        UniqueConstraint("code"),
        CheckConstraint("reward_coins >= 0", name="reward_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    unlock_criteria: Mapped[Any] = mapped_column(JSONB)
    reward_coins: Mapped[int] = mapped_column(Integer, server_default="0")
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UserAchievement(Base):
    __tablename__ = "user_achievements"
    __table_args__ = (Index("ix_user_achievements_achievement_id", "achievement_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    achievement_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("achievements.id", ondelete="RESTRICT"), primary_key=True
    )
    unlocked_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class AchievementsDirty(Base):
    """A user whose achievements are due for evaluation (issue 13: no job per sync).

    The step loop marks the user in its own transaction when it pays approved steps
    (stepcoin_apply_sync v4); the periodic batch (`service.evaluate_dirty`) claims marks,
    evaluates those users together and deletes the marks it consumed. No foreign key: a mark of
    a user who is gone is consumed like any other (the facts query finds nobody), and the
    sync pays no FK check for it.
    """

    __tablename__ = "achievements_dirty"

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # set by the batch that claimed the mark; a sync of the user meanwhile sets it back to NULL
    # so that batch leaves the mark for the next one
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AchievementHistory(Base):
    """A walker's closed history as the achievements' facts need it (migration 0048): the
    credited days up to `through` summarised (total, count, best day, and for each streak
    threshold the longest run and the latest run's length and last day, as days since
    2000-01-01), so a read takes only the days after `through` (`achievements.history`).

    Rows of triggers on step_days bump `generation` and drop a summary holding a changed day
    (through NULL) in the changing transaction; the builder writes only over the generation it
    read. No foreign key, as achievements_dirty: a deleted walker's cascade must not fail.
    """

    __tablename__ = "achievement_history"
    # the summaries due for a rebuild (dropped, or a week behind): achievements.repository
    # _CANDIDATES_DUE, every 5 minutes (migration 0055). On an expression: the facts read's
    # `through IS NOT NULL` must not take it (stale statistics made it read the whole index)
    __table_args__ = (
        Index("ix_achievement_history_due", text("coalesce(through, '-infinity'::date)")),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, server_default="0")
    through: Mapped[date | None] = mapped_column(Date)
    total_steps: Mapped[int] = mapped_column(BigInteger, server_default="0")
    approved_days: Mapped[int] = mapped_column(Integer, server_default="0")
    best_day: Mapped[int] = mapped_column(Integer, server_default="0")
    thresholds: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default="{}")
    longest: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default="{}")
    latest_length: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default="{}")
    latest_end: Mapped[list[int]] = mapped_column(ARRAY(Integer), server_default="{}")
    computed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

"""Step challenges (issue 17, item 4; docs/challenges.md): the challenge, who is invited, who
takes part (with their fee in escrow and their payout), and the per-day scores."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

TEMPLATES = ("total_steps", "goal_days", "race", "group_goal", "team_average")
AUDIENCES = ("everyone", "company", "friends", "group")
# settling: the payouts are fixed and being paid (chunk by chunk); it ends settled, or
# cancelled when the payouts were refunds of a cancelled challenge
STATUSES = ("draft", "scheduled", "active", "grace", "settling", "settled", "cancelled")
OUTCOMES = ("winners", "no_winner", "cancelled")
PARTICIPANT_STATUSES = ("joined", "left")
PAYOUT_KINDS = ("prize", "refund")


class Challenge(Base):
    """One challenge. escrow_coins: the entry fees held now (paid in, minus refunds and
    payouts); it is 0 once the challenge is settled or cancelled."""

    __tablename__ = "challenges"
    __table_args__ = (
        CheckConstraint(f"template IN {TEMPLATES}", name="template"),
        CheckConstraint(f"audience IN {AUDIENCES}", name="audience"),
        CheckConstraint(f"status IN {STATUSES}", name="status"),
        CheckConstraint(f"outcome IS NULL OR outcome IN {OUTCOMES}", name="outcome"),
        CheckConstraint("ends_on >= starts_on", name="date_range"),
        CheckConstraint("entry_fee_coins >= 0", name="fee_non_negative"),
        CheckConstraint("house_prize_coins >= 0", name="house_non_negative"),
        CheckConstraint("escrow_coins >= 0", name="escrow_non_negative"),
        CheckConstraint("daily_cap IS NULL OR daily_cap > 0", name="daily_cap_positive"),
        Index(
            "ix_challenges_open",
            "status",
            "starts_on",
            postgresql_where=text("status IN ('scheduled', 'active', 'grace', 'settling')"),
        ),
        Index("ix_challenges_creator", "creator_id"),
        Index("ix_challenges_group", "group_id", postgresql_where=text("group_id IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    template: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(80))
    creator_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    by_staff: Mapped[bool] = mapped_column(server_default=text("false"))
    audience: Mapped[str] = mapped_column(String(16))
    # a deleted group leaves its challenges without a group: nobody new joins, participants stay
    group_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("groups.id", ondelete="SET NULL")
    )
    timezone: Mapped[str] = mapped_column(String(64))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    params: Mapped[Any] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    daily_cap: Mapped[int | None] = mapped_column(Integer)
    entry_fee_coins: Mapped[int] = mapped_column(BigInteger, server_default="0")
    house_prize_coins: Mapped[int] = mapped_column(BigInteger, server_default="0")
    min_participants: Mapped[int] = mapped_column(Integer)
    late_join: Mapped[bool] = mapped_column(server_default=text("false"))
    grace_hours: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16))
    escrow_coins: Mapped[int] = mapped_column(BigInteger, server_default="0")
    pool_coins: Mapped[int | None] = mapped_column(BigInteger)  # the fees at settlement
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scores_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ChallengeInvitee(Base):
    """A friend the creator invited to a friends challenge."""

    __tablename__ = "challenge_invitees"
    __table_args__ = (Index("ix_challenge_invitees_user", "user_id"),)

    challenge_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("challenges.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)


class ChallengeParticipant(Base):
    """A walker in a challenge. entries counts the joins (a rejoin after a refunded leave is
    a new entry with its own ledger reference); fee_held is the fee now in escrow for them.
    payout_coins / house_coins are fixed at settlement (or cancellation) and paid once
    (paid_at)."""

    __tablename__ = "challenge_participants"
    __table_args__ = (
        CheckConstraint(f"status IN {PARTICIPANT_STATUSES}", name="status"),
        CheckConstraint(
            f"payout_kind IS NULL OR payout_kind IN {PAYOUT_KINDS}", name="payout_kind"
        ),
        CheckConstraint("fee_held >= 0", name="fee_held_non_negative"),
        Index("ix_challenge_participants_user", "user_id"),
        Index(
            "ix_challenge_participants_unpaid",
            "challenge_id",
            "user_id",
            postgresql_where=text("payout_kind IS NOT NULL AND paid_at IS NULL"),
        ),
    )

    challenge_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("challenges.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    status: Mapped[str] = mapped_column(String(8))
    entries: Mapped[int] = mapped_column(Integer, server_default="1")
    fee_held: Mapped[int] = mapped_column(BigInteger, server_default="0")
    team: Mapped[int | None] = mapped_column(SmallInteger)
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    final_rank: Mapped[int | None] = mapped_column(Integer)
    final_steps: Mapped[int | None] = mapped_column(BigInteger)
    winner: Mapped[bool] = mapped_column(server_default=text("false"))
    payout_kind: Mapped[str | None] = mapped_column(String(8))
    payout_coins: Mapped[int] = mapped_column(BigInteger, server_default="0")
    house_coins: Mapped[int] = mapped_column(BigInteger, server_default="0")
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ChallengeScore(Base):
    """A participant's counted steps of one day (non-manual, approved, capped), recomputed
    from the step records while the challenge is active or in grace."""

    __tablename__ = "challenge_scores"

    challenge_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("challenges.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    steps: Mapped[int] = mapped_column(Integer)

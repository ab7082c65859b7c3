"""Daily step records (partitioned by month) and the anti-cheat decisions about them."""

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
    PrimaryKeyConstraint,
    Sequence,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

SOURCES = ("healthkit", "health_connect", "google_fit", "manual")
VALIDATION_STATUSES = ("approved", "flagged", "rejected")

step_record_id_seq = Sequence("step_records_id_seq", metadata=Base.metadata)


class StepRecord(Base):
    """One row per user, local day and source; a re-sync updates it in place.

    The primary key leads with user_id and includes the partition key, so the table can be
    partitioned by month now and distributed by user later.
    """

    __tablename__ = "step_records"
    __table_args__ = (
        CheckConstraint("steps >= 0", name="steps_non_negative"),
        CheckConstraint(f"source IN {SOURCES}", name="source"),
        CheckConstraint(f"status IN {VALIDATION_STATUSES}", name="status"),
        Index("ix_step_records_id", "id"),
        Index("ix_step_records_recorded_date", "recorded_date"),
        {"postgresql_partition_by": "RANGE (recorded_date)"},
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    recorded_date: Mapped[date] = mapped_column(Date, primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    id: Mapped[int] = mapped_column(
        BigInteger, server_default=step_record_id_seq.next_value(), nullable=False
    )
    steps: Mapped[int] = mapped_column(Integer)
    device_id: Mapped[str | None] = mapped_column(String(200))
    client_record_id: Mapped[str | None] = mapped_column(String(200))
    client_record_version: Mapped[int | None] = mapped_column(BigInteger)
    is_manual: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    is_deleted: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    intervals: Mapped[Any | None] = mapped_column(JSONB)
    device_ids: Mapped[list[str]] = mapped_column(
        ARRAY(String(200)), server_default=text("'{}'::varchar[]")
    )
    status: Mapped[str] = mapped_column(String(16), server_default="approved")
    reasons: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), server_default=text("'{}'::varchar[]")
    )
    validation_id: Mapped[int | None] = mapped_column(BigInteger)
    # Steps of the latest approved version of this record: what it can be paid for while a
    # newer version waits in review (or after a newer version was rejected).
    approved_steps: Mapped[int] = mapped_column(Integer, server_default="0")
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StepValidation(Base):
    """One anti-cheat decision about one version of a step record, with the rules that fired."""

    __tablename__ = "step_validations"
    __table_args__ = (
        # carries user_id (issue 19 item 4), leading with id: the retention job walks ids in
        # order, the review console looks decisions up by id
        PrimaryKeyConstraint("id", "user_id", name="pk_step_validations"),
        CheckConstraint(f"status IN {VALIDATION_STATUSES}", name="status"),
        CheckConstraint("risk_score BETWEEN 0 AND 100", name="risk_score_range"),
        Index("ix_step_validations_user_date", "user_id", "recorded_date"),
        Index(
            "ix_step_validations_review_queue",
            "created_at",
            "id",
            postgresql_where=text(
                "status = 'flagged' AND reviewed_at IS NULL AND superseded_by IS NULL"
            ),
        ),
        Index("ix_step_validations_status_created", "status", "created_at"),
        # steps.review.held_by_budget, every minute: only the decisions a steps budget holds
        Index(
            "ix_step_validations_budget_held",
            "id",
            postgresql_where=text(
                "status = 'flagged' AND reviewed_at IS NULL AND superseded_by IS NULL "
                """AND rule_hits @> '[{"code": "issuance_budget"}]'"""
            ),
        ),
        # fairplay.trust's 90-day counts: only the decisions that are not a clean approval
        Index(
            "ix_step_validations_user_unclean",
            "user_id",
            "created_at",
            postgresql_where=text("status <> 'approved' OR reviewed_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    # NULL when the record was refused before storage (a future day, outside the sync window):
    # such days never enter step_records, so no partition is ever needed for them.
    step_record_id: Mapped[int | None] = mapped_column(BigInteger)
    recorded_date: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16))
    steps: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    rule_hits: Mapped[Any] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    risk_score: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    coins_awarded: Mapped[int] = mapped_column(BigInteger, server_default="0")
    coins_pending: Mapped[int] = mapped_column(BigInteger, server_default="0")
    superseded_by: Mapped[int | None] = mapped_column(BigInteger)
    # the reviewing admin; no foreign key: on Citus it would cross shards (migration 0040)
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StepDay(Base):
    """What one user's day is worth: the credited source and the coins paid and held for it.

    The settlement of a day is recomputed from its records whenever one changes; the difference
    to coins_paid becomes a ledger row, so re-syncs pay only the missing part or claw back.
    """

    __tablename__ = "step_days"
    __table_args__ = (
        CheckConstraint("coins_paid >= 0", name="paid_non_negative"),
        CheckConstraint("coins_pending >= 0", name="pending_non_negative"),
        CheckConstraint("credited_steps >= 0", name="steps_non_negative"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    recorded_date: Mapped[date] = mapped_column(Date, primary_key=True)
    credited_source: Mapped[str | None] = mapped_column(String(16))
    credited_steps: Mapped[int] = mapped_column(Integer, server_default="0")
    coins_paid: Mapped[int] = mapped_column(BigInteger, server_default="0")
    coins_pending: Mapped[int] = mapped_column(BigInteger, server_default="0")
    version: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EarnRuleRow(Base):
    """What a step day is worth, from `effective_from` until the next live rule's day
    (docs/economy.md, "Earn rules"). Append-only: a rule is added for a future day, never
    changed; an announced rule may be withdrawn (withdrawn_at) before its day comes."""

    __tablename__ = "earn_rules"
    __table_args__ = (
        CheckConstraint(
            "coins_per_1000_steps >= 0 AND coins_per_1000_steps <= 10000", name="rate_range"
        ),
        CheckConstraint(
            "daily_step_cap IS NULL OR (daily_step_cap >= 0 AND daily_step_cap <= 10000000)",
            name="step_cap_range",
        ),
        CheckConstraint(
            "daily_coin_cap >= 0 AND daily_coin_cap <= 10000000", name="coin_cap_range"
        ),
        # one live rule per day: the ranges are [effective_from, the next live rule's day)
        Index(
            "uq_earn_rules_live_effective_from",
            "effective_from",
            unique=True,
            postgresql_where=text("withdrawn_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    effective_from: Mapped[date] = mapped_column(Date)
    coins_per_1000_steps: Mapped[int] = mapped_column(Integer)
    daily_step_cap: Mapped[int | None] = mapped_column(Integer)
    daily_coin_cap: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class DeviceAccount(Base):
    """Which device synced steps for which account, and when (issue 16: device links).

    One row per (device, account), written by the sync (stepcoin_apply_sync v7) the first time
    a day sees the device for the account, so at most once per device, account and UTC day.
    stepcoin.fairplay reads it to link accounts; the sync's snapshot counts the accounts of
    the batch's devices (the `shared_device` rule)."""

    __tablename__ = "device_accounts"
    __table_args__ = (Index("ix_device_accounts_user", "user_id"),)

    device_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    first_seen: Mapped[date] = mapped_column(Date)
    last_seen: Mapped[date] = mapped_column(Date)

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
    ForeignKeyConstraint,
    Index,
    Integer,
    Sequence,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
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
    device_count: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StepValidation(Base):
    """One anti-cheat decision about one version of a step record, with the rules that fired."""

    __tablename__ = "step_validations"
    __table_args__ = (
        ForeignKeyConstraint(
            ["user_id", "recorded_date", "source"],
            ["step_records.user_id", "step_records.recorded_date", "step_records.source"],
            name="fk_step_validations_step_record",
            ondelete="CASCADE",
        ),
        CheckConstraint(f"status IN {VALIDATION_STATUSES}", name="status"),
        CheckConstraint("risk_score BETWEEN 0 AND 100", name="risk_score_range"),
        Index("ix_step_validations_user_date", "user_id", "recorded_date"),
        Index(
            "ix_step_validations_flagged_queue",
            "created_at",
            "id",
            postgresql_where=text("status = 'flagged'"),
        ),
        Index("ix_step_validations_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    step_record_id: Mapped[int] = mapped_column(BigInteger)
    recorded_date: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(16))
    steps: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    rule_hits: Mapped[Any] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    risk_score: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    coins_awarded: Mapped[int] = mapped_column(BigInteger, server_default="0")
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

"""What the retention jobs did: one row per run of a pruning job, one per archived month."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

RUN_STATUSES = ("running", "done", "failed")
# detached: out of step_records, still in the database; written: the file and its manifest are
# in the repository; verified: read back and checked; archived: the table is dropped;
# restored: copied back and attached (the scheduled job leaves a restored month alone).
ARCHIVE_STATES = ("detached", "written", "verified", "archived", "restored")


class RetentionRun(Base):
    """One run of a pruning job; each batch commits its counts and cursor with its deletes, so
    a run that died resumes where its last batch ended."""

    __tablename__ = "retention_runs"
    __table_args__ = (
        CheckConstraint(f"status IN {RUN_STATUSES}", name="status"),
        Index("ix_retention_runs_job_started", "job", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), server_default="running")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cutoff: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cursor: Mapped[int | None] = mapped_column(BigInteger)
    # decisions: the first one found too young, where the next run starts
    next_start: Mapped[int | None] = mapped_column(BigInteger)
    batches: Mapped[int] = mapped_column(Integer, server_default="0")
    examined: Mapped[int] = mapped_column(BigInteger, server_default="0")
    deleted: Mapped[int] = mapped_column(BigInteger, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)


class RetentionArchive(Base):
    """One month of step_records moved to the backup repository, and where its archive is."""

    __tablename__ = "retention_archives"
    __table_args__ = (CheckConstraint(f"state IN {ARCHIVE_STATES}", name="state"),)

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    repository: Mapped[str | None] = mapped_column(Text)
    file_key: Mapped[str | None] = mapped_column(Text)
    manifest_key: Mapped[str | None] = mapped_column(Text)
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    file_bytes: Mapped[int | None] = mapped_column(BigInteger)
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[Any] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    restored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

"""Fair play's own tables: flags raised over linked accounts, reviewers' clearances, trust.

The links themselves are read where they are recorded: `device_accounts` (stepcoin.steps,
written by the sync) and `users.signup_address` (written at sign-up by stepcoin.auth)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Integer, SmallInteger, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base


class AccountFlag(Base):
    """A link found by a scan, not by the sync itself: today `same_series` (several accounts
    sent the same daily step series), raised by the job fairplay:scan_series. The sync's
    snapshot reads the walker's flags; the rule of the same code flags their days."""

    __tablename__ = "account_flags"

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    observed: Mapped[int] = mapped_column(Integer)  # accounts in the link, this one included
    linked: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)))
    evidence: Mapped[Any] = mapped_column(JSONB)
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LinkClearance(Base):
    """A reviewer looked at a walker's links of one kind and found them fine (a shared family
    tablet, a dormitory's address): the rule of that code stays quiet for this walker until
    more accounts join the link than were cleared (`observed`)."""

    __tablename__ = "link_clearances"

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    observed: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    cleared_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    cleared_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LinkMark(Base):
    """What the step sync reads of a walker's links, kept small and current so that the sync's
    snapshot reads one row by key (no walker without links has one): the accounts on the busiest
    device they used within the window (written by stepcoin_apply_sync v7 when a device gains an
    account, recounted daily by fairplay:refresh_marks), their same-series group (the scan), and
    the reviewers' clearances {code: accounts cleared} (a copy of link_clearances')."""

    __tablename__ = "link_marks"

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    device_accounts: Mapped[int] = mapped_column(Integer, server_default="0")
    same_series: Mapped[int] = mapped_column(Integer, server_default="0")
    cleared: Mapped[Any] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TrustScore(Base):
    """The walker's last computed trust score (stepcoin.fairplay.trust) with its inputs, for
    staff; recomputed when read after it is older than a few minutes."""

    __tablename__ = "trust_scores"

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    score: Mapped[int] = mapped_column(SmallInteger)
    inputs: Mapped[Any] = mapped_column(JSONB)
    computed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

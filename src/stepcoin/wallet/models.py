"""Wallets and the append-only coin ledger; a wallet always equals the sum of its ledger."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

TRANSACTION_TYPES = (
    "step_reward",
    "achievement_reward",
    "redemption",
    "refund",
    "admin_adjustment",
    "reversal",
    "campaign_reward",
    "prize_reward",
    "referral_reward",
    # challenges (issue 17): a fee into escrow (negative), its refund, a prize from the pool
    "challenge_entry",
    "challenge_refund",
    "challenge_prize",
)


class Wallet(Base):
    __tablename__ = "wallets"
    __table_args__ = (
        CheckConstraint("available_coins >= 0", name="available_non_negative"),
        CheckConstraint("pending_coins >= 0", name="pending_non_negative"),
        CheckConstraint("lifetime_earned >= 0", name="earned_non_negative"),
        CheckConstraint("lifetime_spent >= 0", name="spent_non_negative"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    available_coins: Mapped[int] = mapped_column(BigInteger, server_default="0")
    pending_coins: Mapped[int] = mapped_column(BigInteger, server_default="0")
    lifetime_earned: Mapped[int] = mapped_column(BigInteger, server_default="0")
    lifetime_spent: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # Bumped by every post (stepcoin_wallet_post), so by every change of the user's coins, step
    # records or their decisions: a sync computes its decisions from a snapshot and applies them
    # only if this is still the snapshot's value.
    version: Mapped[int] = mapped_column(BigInteger, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class CoinTransaction(Base):
    """One signed movement of available coins; never updated, corrected by a new row.

    Every key carries user_id (issue 19 item 4: distributable by user on Citus): a reference is
    unique per walker (docs/scale-out.md, "Ledger references per user"). The keys lead with
    the columns looked up without the walker (id; transaction_type, reference_id), so those
    look-ups keep their index on one node and new ids append at the primary key's right edge.
    """

    __tablename__ = "coin_transactions"
    __table_args__ = (
        PrimaryKeyConstraint("id", "user_id", name="pk_coin_transactions"),
        UniqueConstraint("transaction_type", "reference_id", "user_id"),
        CheckConstraint(f"transaction_type IN {TRANSACTION_TYPES}", name="transaction_type"),
        CheckConstraint("amount <> 0", name="amount_non_zero"),
        CheckConstraint("balance_after >= 0", name="balance_after_non_negative"),
        Index("ix_coin_transactions_user_created", "user_id", "created_at", "id"),
        # BRIN: the ledger is append-only and stamped at insert, so a few pages of block ranges
        # answer "the last 90 days" for the console's economy chart
        Index("ix_coin_transactions_created_brin", "created_at", postgresql_using="brin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="RESTRICT")
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    transaction_type: Mapped[str] = mapped_column(String(32))
    reference_id: Mapped[str] = mapped_column(String(200))
    balance_after: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EconomyDayTotal(Base):
    """One settled UTC day of the ledger as the economy report (the console's chart) counts
    it: a cache, deleted at any time and rebuilt from coin_transactions (wallet/reports.py)."""

    __tablename__ = "economy_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    issued: Mapped[int] = mapped_column(BigInteger)
    redeemed: Mapped[int] = mapped_column(BigInteger)
    refunded: Mapped[int] = mapped_column(BigInteger)
    clawed_back: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class AdjustmentRequest(Base):
    """A wallet adjustment above `admin.adjustment_approval_threshold_coins`, waiting for a
    second admin (never the requester, never the walker adjusted); approved once, or rejected.
    user_id is the walker adjusted: the row lives with that walker's data (issue 19 item 4)."""

    __tablename__ = "adjustment_requests"
    __table_args__ = (
        PrimaryKeyConstraint("id", "user_id", name="pk_adjustment_requests"),
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
        CheckConstraint("amount <> 0", name="amount_non_zero"),
        Index("ix_adjustment_requests_status_requested", "status", "requested_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), server_default=text("gen_random_uuid()")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="RESTRICT")
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    # the staff members; no foreign keys: on Citus they would cross shards (migration 0040)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    requested_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    decided_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    transaction_id: Mapped[int | None] = mapped_column(BigInteger)


BUDGET_SOURCES = ("steps", "achievements", "campaigns", "prizes", "referrals")
BUDGET_PERIODS = ("day", "week", "month")


class IssuanceBudget(Base):
    """A cap on the coins one source issues per period (stepcoin.wallet.budgets)."""

    __tablename__ = "issuance_budgets"
    __table_args__ = (
        CheckConstraint(f"source IN {BUDGET_SOURCES}", name="source"),
        CheckConstraint(f"period IN {BUDGET_PERIODS}", name="period"),
        CheckConstraint("cap_coins >= 0", name="cap_non_negative"),
        CheckConstraint("alert_percent BETWEEN 1 AND 100", name="alert_percent"),
    )

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    cap_coins: Mapped[int] = mapped_column(BigInteger)
    alert_percent: Mapped[int] = mapped_column(SmallInteger, server_default="80")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class IssuanceUsage(Base):
    """What one source issued in one period (the counter the budget's check locks)."""

    __tablename__ = "issuance_usage"
    __table_args__ = (CheckConstraint("issued >= 0", name="issued_non_negative"),)

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    stripe: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default="0")
    issued: Mapped[int] = mapped_column(BigInteger, server_default="0")
    alerted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    exhausted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IssuanceHold(Base):
    """A reward a budget at its cap held instead of paying (pending for the walker)."""

    __tablename__ = "issuance_holds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        PrimaryKeyConstraint("id", "user_id", name="pk_issuance_holds"),
        UniqueConstraint("transaction_type", "reference_id", "user_id"),
        Index(
            "ix_issuance_holds_waiting",
            "source",
            "id",
            postgresql_where=text("released_at IS NULL"),
        ),
        Index("ix_issuance_holds_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity())
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    transaction_type: Mapped[str] = mapped_column(String(32))
    reference_id: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    held_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

"""The tables of the email links: single-use tokens (stored as hashes) and the record of
password-reset requests that their throttle counts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import INET, UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

PURPOSES = ("verify_email", "password_reset")


class EmailToken(Base):
    """A token sent by mail: sha256 of 256 random bits, single use, expiring."""

    __tablename__ = "email_tokens"
    __table_args__ = (
        CheckConstraint(f"purpose IN {PURPOSES}", name="purpose"),
        PrimaryKeyConstraint("user_id", "id"),  # issue 19 item 4: distributed by user_id
        # a mailed token names its walker; one issued before is found by its hash alone
        Index("ix_email_tokens_user_id_token_hash", "user_id", "token_hash", unique=True),
        Index("ix_email_tokens_token_hash", "token_hash"),
        Index("ix_email_tokens_user_purpose", "user_id", "purpose", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    purpose: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PasswordResetRequest(Base):
    """One POST /v1/auth/password-reset/request, known email or not (the throttle counts
    them per email and per address; rows older than a day are deleted as new ones come)."""

    __tablename__ = "password_reset_requests"
    __table_args__ = (
        Index("ix_password_reset_requests_email", "email", "requested_at"),
        Index("ix_password_reset_requests_address", "address", "requested_at"),
        Index("ix_password_reset_requests_requested_at", "requested_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320))
    address: Mapped[str | None] = mapped_column(INET)
    requested_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

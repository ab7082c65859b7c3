"""Refresh tokens (stored as hashes only) and the login throttle."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import INET, UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base


class RefreshToken(Base):
    """One issued refresh token; a family is one sign-in and all of its rotations."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index("ix_refresh_tokens_family_id", "family_id"),
        # issue 19 item 4: the key carries the walker (distributed by user_id); a token
        # names its walker, and tokens issued before are found by their hash alone
        PrimaryKeyConstraint("user_id", "id"),
        ForeignKeyConstraint(
            ["user_id", "replaced_by"],
            ["refresh_tokens.user_id", "refresh_tokens.id"],
            name="fk_refresh_tokens_user_id_refresh_tokens",
            ondelete="SET NULL (replaced_by)",
        ),
        Index("ix_refresh_tokens_user_id_token_hash", "user_id", "token_hash", unique=True),
        Index("ix_refresh_tokens_token_hash", "token_hash"),
        Index("ix_refresh_tokens_expires_at", "expires_at"),  # the retention job's scan
        # a deleted token's successor link is cleared by the foreign key (ON DELETE SET NULL
        # (replaced_by): the walker's id stays):
        # without this index each deleted token scanned the whole table
        Index(
            "ix_refresh_tokens_replaced_by",
            "replaced_by",
            postgresql_where=text("replaced_by IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), server_default=text("gen_random_uuid()")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    family_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    family_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    replaced_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip: Mapped[str | None] = mapped_column(INET)


class LoginThrottle(Base):
    """Attempt counters of sign-in, second factor and sign-up, one per key (a fixed window
    from its first attempt); stepcoin.auth.throttle reserves an attempt here before checking
    it. `failures` counts the window's attempts not given back (the failed and in-flight)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, server_default="0")
    window_started_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

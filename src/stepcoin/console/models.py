"""Console sign-in sessions: one row per browser session, found by the hash of its cookie."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import INET, UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base


class AdminSession(Base):
    """A signed-in (or half signed-in, waiting for its TOTP code) console session.

    The cookie carries a random token; only its SHA-256 is stored, so a copy of the table
    opens no session. Idle and absolute expiry are checked on every request against
    `last_seen_at` and `created_at`; sign-out and deactivation set `revoked_at`.
    """

    __tablename__ = "admin_sessions"
    __table_args__ = (
        PrimaryKeyConstraint("user_id", "id"),  # issue 19 item 4: distributed by user_id
        # the cookie names its staff member; one issued before is found by its hash alone
        Index("ix_admin_sessions_user_id_token_hash", "user_id", "token_hash", unique=True),
        Index("ix_admin_sessions_token_hash", "token_hash"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), server_default=text("gen_random_uuid()")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    csrf_token: Mapped[str] = mapped_column(String(64))
    second_factor_done: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    ip: Mapped[str | None] = mapped_column(INET)

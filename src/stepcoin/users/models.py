"""Users and their linked sign-in identities."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

AUTH_METHODS = ("email", "google", "apple")
ROLES = ("user", "support", "admin")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"auth_method IN {AUTH_METHODS}", name="auth_method"),
        CheckConstraint(f"role IN {ROLES}", name="role"),
        CheckConstraint(
            "daily_step_goal IS NULL OR daily_step_goal BETWEEN 1 AND 100000",
            name="daily_step_goal",
        ),
        CheckConstraint(
            "password_hash IS NULL OR password_hash LIKE '$argon2id$%'", name="argon2id_only"
        ),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        CheckConstraint("deleted_at IS NULL OR NOT is_active", name="deleted_is_inactive"),
        # unique through global_keys (kind email): a users shard cannot see the others
        Index("ix_users_email", "email"),
        Index("ix_users_created_at", "created_at"),
        # sign-up bursts (stepcoin.fairplay): the accounts made from one address in a window
        Index(
            "ix_users_signup_address",
            "signup_address",
            "created_at",
            postgresql_where=text("signup_address IS NOT NULL"),
        ),
        # trigram indexes (pg_trgm): the staff search is ILIKE '%part%' on email or name
        Index(
            "ix_users_email_trgm",
            "email",
            postgresql_using="gin",
            postgresql_ops={"email": "gin_trgm_ops"},
        ),
        Index(
            "ix_users_full_name_trgm",
            "full_name",
            postgresql_using="gin",
            postgresql_ops={"full_name": "gin_trgm_ops"},
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str | None] = mapped_column(Text)
    full_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    auth_method: Mapped[str] = mapped_column(String(16), server_default="email")
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    role: Mapped[str] = mapped_column(String(16), server_default="user")
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    # the walker's own daily step goal (the streak reminder); NULL: the runtime default
    daily_step_goal: Mapped[int | None] = mapped_column(Integer)
    # console second factor (RFC 6238 TOTP): the base32 secret encrypted (console.totp_keys),
    # enabled once a code was confirmed
    totp_secret: Mapped[str | None] = mapped_column(Text)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sessions_valid_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # set by DELETE /v1/me: the row stays as a tombstone that the books point at
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the client address the account was made from, as a keyed digest (never the address;
    # auth.service.signup_address), NULL when unknown or the server's own (loopback)
    signup_address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UserIdentity(Base):
    """A Google or Apple account (the ID token's `sub`) linked to a user."""

    __tablename__ = "user_identities"
    __table_args__ = (
        # (provider, subject) is owned once through global_keys (kind identity)
        PrimaryKeyConstraint("user_id", "id"),
        UniqueConstraint("user_id", "provider", "subject"),
        CheckConstraint("provider IN ('google', 'apple')", name="provider"),
        Index("ix_user_identities_provider_subject", "provider", "subject"),
    )

    id: Mapped[int] = mapped_column(autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    provider: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

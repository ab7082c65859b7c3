"""Notifications (docs/notifications.md): push devices, the notifications themselves (inbox and
push outbox in one row), one delivery row per device, and each walker's preferences."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

PLATFORMS = ("ios", "android")
ENVIRONMENTS = ("production", "sandbox")
PUSH_STATUSES = (
    "pending",  # waiting for its job (or for the end of quiet hours)
    "sent",  # at least one device accepted it
    "failed",  # every device refused it, or the retries ran out
    "expired",  # its expiry came first (quiet hours, a long outage)
    "off",  # the walker turned push off for this kind
    "capped",  # the daily cap of this kind was reached
    "no_device",  # no live device (none registered, or signed out)
    "none",  # inbox only: no push was asked
)
DELIVERY_STATUSES = ("sending", "sent", "retry", "failed", "invalidated", "skipped")


def _user() -> ForeignKey:
    return ForeignKey("users.id", ondelete="CASCADE")


class PushDevice(Base):
    """A push token of one app install, bound to the signed-in walker and to the sign-in
    (refresh family) it came with: a device whose sign-in ended receives nothing."""

    __tablename__ = "push_devices"
    __table_args__ = (
        # issue 19 item 4: distributed by user_id; a token's one owner is in global_keys
        PrimaryKeyConstraint("user_id", "id"),
        UniqueConstraint("user_id", "platform", "token"),
        CheckConstraint("platform IN ('ios', 'android')", name="platform"),
        CheckConstraint("environment IN ('production', 'sandbox')", name="environment"),
        Index("ix_push_devices_platform_token", "platform", "token"),
    )

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), _user())
    session_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    platform: Mapped[str] = mapped_column(String(16))
    environment: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(String(4096))
    app_version: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Notification(Base):
    """One notification to one walker: the inbox entry (when `in_inbox`) and the push outbox
    (push_status). The dedupe key makes one event one notification."""

    __tablename__ = "notifications"
    __table_args__ = (
        # keys carry user_id (issue 19 item 4), the primary key leading with id (looked up alone)
        PrimaryKeyConstraint("id", "user_id", name="pk_notifications"),
        UniqueConstraint("user_id", "dedupe_key"),
        CheckConstraint(
            "push_status IN (" + ", ".join(f"'{s}'" for s in PUSH_STATUSES) + ")",
            name="push_status",
        ),
        Index(
            "ix_notifications_inbox",
            "user_id",
            "created_at",
            "id",
            postgresql_where=text("in_inbox"),
        ),
        # the unread count of every inbox read and read-all (migration 0061)
        Index(
            "ix_notifications_unread",
            "user_id",
            "created_at",
            "id",
            postgresql_where=text("in_inbox AND read_at IS NULL"),
        ),
        Index("ix_notifications_kind_day", "user_id", "kind", "created_at"),
        Index(
            "ix_notifications_push_pending",
            "created_at",
            postgresql_where=text("push_status = 'pending'"),
        ),
        # a broadcast's notifications (its delivery figures), by their dedupe key
        Index(
            "ix_notifications_broadcast",
            "dedupe_key",
            postgresql_where=text("kind = 'broadcast'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), _user())
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(1000))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    collapse_key: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    in_inbox: Mapped[bool] = mapped_column(Boolean)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    push_status: Mapped[str] = mapped_column(String(16))
    push_finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NotificationDelivery(Base):
    """One push of one notification to one device. `sending` is written and committed before
    the push service is called, so a worker killed mid-send never sends it twice."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        PrimaryKeyConstraint(
            "notification_id", "device_id", "user_id", name="pk_notification_deliveries"
        ),
        # the notification's walker, copied, so a delivery lives with its notification
        ForeignKeyConstraint(
            ["user_id", "notification_id"],
            ["notifications.user_id", "notifications.id"],
            ondelete="CASCADE",
            name="fk_notification_deliveries_user_id_notifications",
        ),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in DELIVERY_STATUSES) + ")", name="status"
        ),
        Index("ix_notification_deliveries_updated_at", "updated_at"),
    )

    notification_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    device_id: Mapped[int] = mapped_column(BigInteger)  # the device may be gone since
    platform: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class NotificationPreference(Base):
    """A walker's switches per kind ({kind: {push, inbox}}) and quiet hours (local time)."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), _user(), primary_key=True)
    kinds: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    quiet_start: Mapped[time] = mapped_column(Time, server_default=text("'22:00'"))
    quiet_end: Mapped[time] = mapped_column(Time, server_default=text("'07:00'"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

"""Notifications (issue 18, items 1-5): push devices, notifications (the inbox and the push
outbox in one row, a dedupe key unique per walker), one delivery row per device, preferences;
runtime settings `notify.daily_cap_per_type`, `notify.streak_hours_before_midnight`,
`notify.default_daily_step_goal`, seeded with their registry defaults.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-05 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0035"
down_revision: str | Sequence[str] | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEEDS = {  # key: (value as JSON, description), as the registry had them at this revision
    "notify.daily_cap_per_type": (
        "5",
        "Most pushes of one type a walker gets in one local day (security and orders have "
        "no cap); beyond it the notification stays in the inbox only.",
    ),
    "notify.streak_hours_before_midnight": (
        "3",
        "Hours before the walker's local midnight at which the streak reminder goes out "
        "when today's step goal is not met yet.",
    ),
    "notify.default_daily_step_goal": (
        "6000",
        "The daily step goal of a walker who has not set one (the streak reminder).",
    ),
}
PUSH_STATUSES = ("pending", "sent", "failed", "expired", "off", "capped", "no_device", "none")
DELIVERY_STATUSES = ("sending", "sent", "retry", "failed", "invalidated", "skipped")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=op.f(f"fk_{table}_user_id_users"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "push_devices",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("session_id", sa.UUID(), nullable=True),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=4096), nullable=False),
        sa.Column("app_version", sa.String(length=32), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("platform IN ('ios', 'android')", name=op.f("ck_push_devices_platform")),
        sa.CheckConstraint(
            "environment IN ('production', 'sandbox')", name=op.f("ck_push_devices_environment")
        ),
        _user_fk("push_devices"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_devices")),
        sa.UniqueConstraint("platform", "token", name=op.f("uq_push_devices_platform_token")),
    )
    op.create_index("ix_push_devices_user", "push_devices", ["user_id"], unique=False)
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.String(length=1000), nullable=False),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("collapse_key", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("in_inbox", sa.Boolean(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("push_status", sa.String(length=16), nullable=False),
        sa.Column("push_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            _in("push_status", PUSH_STATUSES), name=op.f("ck_notifications_push_status")
        ),
        _user_fk("notifications"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint(
            "user_id", "dedupe_key", name=op.f("uq_notifications_user_id_dedupe_key")
        ),
    )
    op.create_index(
        "ix_notifications_inbox",
        "notifications",
        ["user_id", "created_at", "id"],
        unique=False,
        postgresql_where=sa.text("in_inbox"),
    )
    op.create_index(
        "ix_notifications_kind_day",
        "notifications",
        ["user_id", "kind", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_notifications_push_pending",
        "notifications",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("push_status = 'pending'"),
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            _in("status", DELIVERY_STATUSES), name=op.f("ck_notification_deliveries_status")
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_notification_deliveries_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("notification_id", "device_id", name="pk_notification_deliveries"),
    )
    op.create_index(
        "ix_notification_deliveries_updated_at",
        "notification_deliveries",
        ["updated_at"],
        unique=False,
    )
    op.create_table(
        "notification_preferences",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column(
            "kinds",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("quiet_start", sa.Time(), server_default=sa.text("'22:00'"), nullable=False),
        sa.Column("quiet_end", sa.Time(), server_default=sa.text("'07:00'"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        _user_fk("notification_preferences"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_preferences")),
    )
    for key, (value, description) in SEEDS.items():
        op.execute(
            sa.text(
                "INSERT INTO settings (key, value, description) "
                "VALUES (:k, CAST(:v AS jsonb), :d) ON CONFLICT (key) DO NOTHING"
            ).bindparams(k=key, v=value, d=description)
        )


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM settings WHERE key IN :keys").bindparams(
            sa.bindparam("keys", value=list(SEEDS), expanding=True)
        )
    )
    op.drop_table("notification_preferences")
    op.drop_index("ix_notification_deliveries_updated_at", table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
    op.drop_index("ix_notifications_push_pending", table_name="notifications")
    op.drop_index("ix_notifications_kind_day", table_name="notifications")
    op.drop_index("ix_notifications_inbox", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_push_devices_user", table_name="push_devices")
    op.drop_table("push_devices")

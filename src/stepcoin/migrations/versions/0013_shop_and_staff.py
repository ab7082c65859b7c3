"""Shop and staff holes of issue 12.

- orders: a cancel after the order reached Shopify is a request (status `cancel_requested`);
  `cancel_previous_status` is where a refused request goes back to, `cancel_refused_reason`
  tells the walker why (hole 12).
- webhook_events.content_key: topic + resource id + its `updated_at`, taken from the signed
  body; unique, so a replay under a fresh (unsigned) webhook id is stored once (hole 5).
- adjustment_requests: wallet adjustments above `admin.adjustment_approval_threshold_coins`
  wait for a second admin (hole 7).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The runtime setting of hole 7 at this revision (frozen data).
SETTINGS_SEED = [
    (
        "admin.adjustment_approval_threshold_coins",
        10_000,
        "A wallet adjustment of more coins than this (either way) waits for a second "
        "admin's approval (issue 12, hole 7).",
    ),
]

OLD_STATUSES = (
    "('pending', 'submitted', 'fulfilled', 'shipped', 'delivered', 'cancelled', 'failed')"
)
NEW_STATUSES = (
    "('pending', 'submitted', 'fulfilled', 'shipped', 'delivered', 'cancelled', 'failed', "
    "'cancel_requested')"
)


def upgrade() -> None:
    settings = sa.table(
        "settings",
        sa.column("key", sa.String),
        sa.column("value", postgresql.JSONB),
        sa.column("description", sa.Text),
    )
    op.bulk_insert(
        settings, [{"key": k, "value": v, "description": d} for k, v, d in SETTINGS_SEED]
    )
    op.drop_constraint(op.f("ck_orders_status"), "orders", type_="check")
    op.create_check_constraint(op.f("ck_orders_status"), "orders", f"status IN {NEW_STATUSES}")
    op.add_column("orders", sa.Column("cancel_previous_status", sa.String(length=16)))
    op.add_column("orders", sa.Column("cancel_requested_at", sa.DateTime(timezone=True)))
    op.add_column("orders", sa.Column("cancel_refused_reason", sa.Text()))

    op.add_column("webhook_events", sa.Column("content_key", sa.String(length=400)))
    op.create_unique_constraint(
        op.f("uq_webhook_events_content_key"), "webhook_events", ["content_key"]
    )

    op.create_table(
        "adjustment_requests",
        sa.Column(
            "id",
            postgresql.UUID(as_uuid=True),
            server_default=sa.text("gen_random_uuid()"),
            nullable=False,
        ),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column(
            "requested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("decided_by", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')",
            name=op.f("ck_adjustment_requests_status"),
        ),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_adjustment_requests_amount_non_zero")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_adjustment_requests_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["users.id"],
            name=op.f("fk_adjustment_requests_requested_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"],
            ["users.id"],
            name=op.f("fk_adjustment_requests_decided_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adjustment_requests")),
    )
    op.create_index(
        "ix_adjustment_requests_status_requested",
        "adjustment_requests",
        ["status", "requested_at"],
    )


def downgrade() -> None:
    op.execute("DELETE FROM settings WHERE key = 'admin.adjustment_approval_threshold_coins'")
    op.drop_index("ix_adjustment_requests_status_requested", table_name="adjustment_requests")
    op.drop_table("adjustment_requests")
    op.drop_constraint(op.f("uq_webhook_events_content_key"), "webhook_events", type_="unique")
    op.drop_column("webhook_events", "content_key")
    op.execute(
        "UPDATE orders SET status = coalesce(cancel_previous_status, 'submitted') "
        "WHERE status = 'cancel_requested'"
    )
    op.drop_column("orders", "cancel_refused_reason")
    op.drop_column("orders", "cancel_requested_at")
    op.drop_column("orders", "cancel_previous_status")
    op.drop_constraint(op.f("ck_orders_status"), "orders", type_="check")
    op.create_check_constraint(op.f("ck_orders_status"), "orders", f"status IN {OLD_STATUSES}")

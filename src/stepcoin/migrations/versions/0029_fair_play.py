"""Fair play across accounts (issue 16, items 1-2): device links, sign-up addresses, flags,
clearances, trust scores, link marks; the sync records its devices and marks linked walkers
(stepcoin_apply_sync v7).

- device_accounts (stepcoin.steps): which device synced for which account, first and last
  UTC day; written by the sync at most once per device, account and day.
- users.signup_address: a keyed digest of the client address an account was made from.
- account_flags, link_clearances, trust_scores (stepcoin.fairplay).
- orders.status `held` (a low trust score: the order waits for a reviewer), held_at,
  released_at.
- the fairplay.* runtime settings, seeded with their registry defaults.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-04 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from stepcoin.sqlfiles import load

revision: str = "0029"
down_revision: str | Sequence[str] | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = (
    "pending",
    "submitted",
    "fulfilled",
    "shipped",
    "delivered",
    "cancelled",
    "failed",
    "cancel_requested",
)
NEW_STATUSES = (*OLD_STATUSES, "held")
SEEDS = {  # as the registry had them when this revision was written
    "fairplay.device_window_days": (
        30,
        "Accounts that synced from one device within this many days are linked by it.",
    ),
    "fairplay.device_max_accounts": (
        1,
        "A day synced from a device that more accounts than this synced from (within "
        "fairplay.device_window_days) is flagged for review (shared_device).",
    ),
    "fairplay.signup_burst_hours": (
        24,
        "Accounts made from one client address within this many hours of each other are a "
        "sign-up burst when there are more than fairplay.signup_burst_max_accounts.",
    ),
    "fairplay.signup_burst_max_accounts": (
        5,
        "More accounts than this made from one address within fairplay.signup_burst_hours: "
        "their days are flagged for review (signup_burst).",
    ),
    "fairplay.household_max_accounts": (
        4,
        "Accounts made from one address, at any time, that are still a household: two of "
        "them referring each other is not a self-referral signal unless the address made "
        "more accounts than this (shared_address).",
    ),
    "fairplay.series_days": (
        7,
        "The job fairplay:scan_series compares each walker's daily steps over this many "
        "most recent days with every other walker's.",
    ),
    "fairplay.series_min_days": (
        5,
        "A series is compared only when it has at least this many days of at least "
        "fairplay.series_min_steps steps (short or empty series match by chance).",
    ),
    "fairplay.series_min_steps": (
        1000,
        "Days below this many steps do not count toward fairplay.series_min_days.",
    ),
    "fairplay.redemption_hold_below": (
        30,
        "An order by a walker whose trust score is below this is held for a reviewer "
        "before it is sent to the shop (0: never).",
    ),
}


def upgrade() -> None:
    op.create_table(
        "device_accounts",
        sa.Column("device_id", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("first_seen", sa.Date(), nullable=False),
        sa.Column("last_seen", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_device_accounts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", "user_id", name=op.f("pk_device_accounts")),
    )
    op.create_index("ix_device_accounts_user", "device_accounts", ["user_id"])
    op.add_column("users", sa.Column("signup_address", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_users_signup_address",
        "users",
        ["signup_address", "created_at"],
        postgresql_where=sa.text("signup_address IS NOT NULL"),
    )
    op.create_table(
        "account_flags",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("observed", sa.Integer(), nullable=False),
        sa.Column("linked", postgresql.ARRAY(sa.UUID()), nullable=False),
        sa.Column("evidence", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "raised_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_account_flags_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "code", name=op.f("pk_account_flags")),
    )
    op.create_table(
        "link_clearances",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("observed", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("cleared_by", sa.UUID(), nullable=True),
        sa.Column(
            "cleared_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["cleared_by"],
            ["users.id"],
            name=op.f("fk_link_clearances_cleared_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_link_clearances_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "code", name=op.f("pk_link_clearances")),
    )
    op.create_table(
        "link_marks",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("device_accounts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("same_series", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "cleared",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_link_marks_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_link_marks")),
    )
    op.create_table(
        "trust_scores",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("inputs", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "computed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_trust_scores_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_trust_scores")),
    )
    for key, (value, description) in SEEDS.items():
        op.execute(
            sa.text(
                "INSERT INTO settings (key, value, description) "
                "VALUES (:k, to_jsonb(CAST(:v AS integer)), :d) ON CONFLICT (key) DO NOTHING"
            ).bindparams(k=key, v=value, d=description)
        )
    op.add_column("orders", sa.Column("held_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("orders", sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint(op.f("ck_orders_status"), "orders", type_="check")
    op.create_check_constraint(op.f("ck_orders_status"), "orders", f"status IN {NEW_STATUSES}")
    op.execute(load("stepcoin.steps", "apply_sync.v7.sql"))


def downgrade() -> None:
    op.execute(load("stepcoin.steps", "apply_sync.v6.sql"))
    op.execute("UPDATE orders SET status = 'pending' WHERE status = 'held'")
    op.drop_constraint(op.f("ck_orders_status"), "orders", type_="check")
    op.create_check_constraint(op.f("ck_orders_status"), "orders", f"status IN {OLD_STATUSES}")
    op.drop_column("orders", "released_at")
    op.drop_column("orders", "held_at")
    op.execute(
        sa.text("DELETE FROM settings WHERE key IN :keys").bindparams(
            sa.bindparam("keys", value=list(SEEDS), expanding=True)
        )
    )
    op.drop_table("trust_scores")
    op.drop_table("link_marks")
    op.drop_table("link_clearances")
    op.drop_table("account_flags")
    op.drop_index("ix_users_signup_address", table_name="users")
    op.drop_column("users", "signup_address")
    op.drop_index("ix_device_accounts_user", table_name="device_accounts")
    op.drop_table("device_accounts")

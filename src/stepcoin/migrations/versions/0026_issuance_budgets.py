"""Issuance budgets (issue 15, item 2): caps on the coins issued per source and period.

- `issuance_budgets`: one cap per (source, period) an admin sets; none means no cap.
- `issuance_usage`: the coins each source issued in each period, counted in the paying
  transaction under the row's lock (the atomic check), with when its alert and its cap fired;
  the step sync counts on 16 stripes (walkers by their id), each with its share of the cap, so
  that syncs do not queue on one row (batch sources use stripe 0 and the whole cap).
- `issuance_holds`: rewards a budget at its cap did not pay, held (the walker sees them as
  pending) and paid in order when the period rolls over or the cap rises; unique by the
  reward's (type, reference) like the ledger, so a retried payout holds once.
- stepcoin_wallet_hold_many (src/stepcoin/wallet/sql/hold_many.v1.sql): the wallet's door for
  holding and releasing pending coins of many walkers in one statement.
- stepcoin_apply_sync v6 (src/stepcoin/steps/sql/apply_sync.v6.sql): a sync's new step coins
  must fit under the steps budgets' shares of the walker's stripe, or nothing is written.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-04 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from stepcoin.sqlfiles import load

revision: str = "0026"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SOURCES = "('steps', 'achievements', 'campaigns', 'prizes', 'referrals')"
PERIODS = "('day', 'week', 'month')"


def upgrade() -> None:
    op.create_table(
        "issuance_budgets",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("cap_coins", sa.BigInteger(), nullable=False),
        sa.Column("alert_percent", sa.SmallInteger(), server_default="80", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", postgresql.UUID(as_uuid=True), nullable=True),
        sa.CheckConstraint(f"source IN {SOURCES}", name=op.f("ck_issuance_budgets_source")),
        sa.CheckConstraint(f"period IN {PERIODS}", name=op.f("ck_issuance_budgets_period")),
        sa.CheckConstraint("cap_coins >= 0", name=op.f("ck_issuance_budgets_cap_non_negative")),
        sa.CheckConstraint(
            "alert_percent BETWEEN 1 AND 100", name=op.f("ck_issuance_budgets_alert_percent")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["users.id"],
            name=op.f("fk_issuance_budgets_updated_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("source", "period", name=op.f("pk_issuance_budgets")),
    )
    op.create_table(
        "issuance_usage",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("stripe", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("issued", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exhausted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("issued >= 0", name=op.f("ck_issuance_usage_issued_non_negative")),
        sa.PrimaryKeyConstraint(
            "source", "period", "period_start", "stripe", name=op.f("pk_issuance_usage")
        ),
    )
    op.create_table(
        "issuance_holds",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("transaction_type", sa.String(length=32), nullable=False),
        sa.Column("reference_id", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "held_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_issuance_holds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_issuance_holds_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuance_holds")),
        sa.UniqueConstraint(
            "transaction_type",
            "reference_id",
            name=op.f("uq_issuance_holds_transaction_type_reference_id"),
        ),
    )
    op.create_index(
        "ix_issuance_holds_waiting",
        "issuance_holds",
        ["source", "id"],
        postgresql_where=sa.text("released_at IS NULL"),
    )
    op.create_index("ix_issuance_holds_user_id", "issuance_holds", ["user_id"])
    op.execute(load("stepcoin.wallet", "hold_many.v1.sql"))
    op.execute(load("stepcoin.steps", "apply_sync.v6.sql"))


def downgrade() -> None:
    op.execute(load("stepcoin.steps", "apply_sync.v5.sql"))
    op.execute("DROP FUNCTION IF EXISTS stepcoin_wallet_hold_many(uuid[], bigint[])")
    op.drop_index("ix_issuance_holds_user_id", table_name="issuance_holds")
    op.drop_index("ix_issuance_holds_waiting", table_name="issuance_holds")
    op.drop_table("issuance_holds")
    op.drop_table("issuance_usage")
    op.drop_table("issuance_budgets")

"""Campaigns and leaderboard prizes (issue 15, items 3 and 4).

- campaigns: a segment of walkers paid once each, in chunks, resumable (stepcoin.campaigns);
- leaderboard_prizes (a prize table per period), leaderboard_prize_rounds (one per final
  board, fixed when its final snapshot is taken) and leaderboard_prize_awards (the winners,
  waiting while a day of theirs is in review, then paid once);
- coin_transactions.transaction_type allows `campaign_reward` and `prize_reward` (earned coins:
  lifetime_earned, by the counters' one rule in stepcoin_wallet_post; no function changes);
- runtime settings `economy.campaign_approval_threshold_coins` and
  `economy.campaign_chunk_walkers`.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 19:17:14
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_TYPES = (
    "('step_reward', 'achievement_reward', 'redemption', 'refund', 'admin_adjustment', 'reversal')"
)
NEW_TYPES = (
    "('step_reward', 'achievement_reward', 'redemption', 'refund', 'admin_adjustment', "
    "'reversal', 'campaign_reward', 'prize_reward')"
)

# The runtime settings of this revision (frozen data).
SETTINGS_SEED = [
    (
        "economy.campaign_approval_threshold_coins",
        100_000,
        "A campaign paying more coins than this in total (walkers x coins) runs only once a "
        "second admin has approved it (issue 15).",
    ),
    (
        "economy.campaign_chunk_walkers",
        2_000,
        "Walkers a campaign pays per transaction (each chunk holds their wallet locks until it "
        "commits; the run resumes after the last committed chunk).",
    ),
]


def upgrade() -> None:
    op.create_table(
        "leaderboard_prize_rounds",
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("prizes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("winners", sa.Integer(), server_default="0", nullable=False),
        sa.Column("coins", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "period IN ('daily', 'weekly', 'monthly')",
            name=op.f("ck_leaderboard_prize_rounds_period"),
        ),
        sa.PrimaryKeyConstraint("period", "period_start", name=op.f("pk_leaderboard_prize_rounds")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("coins_per_walker", sa.BigInteger(), nullable=False),
        sa.Column("segment", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="draft", nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("approved_by", sa.UUID(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_coins", sa.BigInteger(), nullable=True),
        sa.Column("run_by", sa.UUID(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("walkers_total", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("walkers_paid", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("coins_paid", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("resume_after", sa.UUID(), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'approved', 'running', 'done')", name=op.f("ck_campaigns_status")
        ),
        sa.CheckConstraint("coins_per_walker > 0", name=op.f("ck_campaigns_coins_positive")),
        sa.ForeignKeyConstraint(
            ["approved_by"],
            ["users.id"],
            name=op.f("fk_campaigns_approved_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_campaigns_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_by"], ["users.id"], name=op.f("fk_campaigns_run_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index("ix_campaigns_created_at", "campaigns", ["created_at"], unique=False)
    op.create_table(
        "leaderboard_prize_awards",
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("total_steps", sa.BigInteger(), nullable=False),
        sa.Column("coins", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="waiting", nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('waiting', 'held', 'paid')", name=op.f("ck_leaderboard_prize_awards_status")
        ),
        sa.CheckConstraint("coins > 0", name=op.f("ck_leaderboard_prize_awards_coins_positive")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_leaderboard_prize_awards_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "period", "period_start", "user_id", name=op.f("pk_leaderboard_prize_awards")
        ),
    )
    op.create_index(
        "ix_leaderboard_prize_awards_waiting",
        "leaderboard_prize_awards",
        ["user_id"],
        unique=False,
        postgresql_where=sa.text("status = 'waiting'"),
    )
    op.create_table(
        "leaderboard_prizes",
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("from_rank", sa.Integer(), nullable=False),
        sa.Column("to_rank", sa.Integer(), nullable=False),
        sa.Column("coins", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.UUID(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "period IN ('daily', 'weekly', 'monthly')", name=op.f("ck_leaderboard_prizes_period")
        ),
        sa.CheckConstraint("coins > 0", name=op.f("ck_leaderboard_prizes_coins_positive")),
        sa.CheckConstraint(
            "from_rank >= 1 AND to_rank >= from_rank", name=op.f("ck_leaderboard_prizes_ranks")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["users.id"],
            name=op.f("fk_leaderboard_prizes_updated_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("period", "from_rank", name=op.f("pk_leaderboard_prizes")),
    )
    op.drop_constraint(op.f("ck_coin_transactions_transaction_type"), "coin_transactions")
    op.create_check_constraint(
        op.f("ck_coin_transactions_transaction_type"),
        "coin_transactions",
        f"transaction_type IN {NEW_TYPES}",
    )
    settings = sa.table(
        "settings",
        sa.column("key", sa.String),
        sa.column("value", postgresql.JSONB),
        sa.column("description", sa.Text),
    )
    op.bulk_insert(
        settings, [{"key": k, "value": v, "description": d} for k, v, d in SETTINGS_SEED]
    )


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM settings WHERE key IN :keys").bindparams(
            sa.bindparam("keys", value=[k for k, _, _ in SETTINGS_SEED], expanding=True)
        )
    )
    # the books keep their rows: a downgrade with campaign or prize rows in the ledger fails here
    op.drop_constraint(op.f("ck_coin_transactions_transaction_type"), "coin_transactions")
    op.create_check_constraint(
        op.f("ck_coin_transactions_transaction_type"),
        "coin_transactions",
        f"transaction_type IN {OLD_TYPES}",
    )
    op.drop_table("leaderboard_prizes")
    op.drop_index(
        "ix_leaderboard_prize_awards_waiting",
        table_name="leaderboard_prize_awards",
        postgresql_where=sa.text("status = 'waiting'"),
    )
    op.drop_table("leaderboard_prize_awards")
    op.drop_index("ix_campaigns_created_at", table_name="campaigns")
    op.drop_table("campaigns")
    op.drop_table("leaderboard_prize_rounds")

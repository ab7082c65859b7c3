"""Referrals (issue 16, item 3): codes, referrals, the ledger's `referral_reward`, the terms.

- referral_codes: each walker's code (made on first ask);
- referrals: one row per invitee (UNIQUE invitee_id) with the terms copied at the claim, the
  status and its reasons, with indexes for the referrer's list, the review queue (by status)
  and the settle job (the open rows);
- coin_transactions.transaction_type allows `referral_reward` (earned coins: lifetime_earned,
  by the counters' one rule in stepcoin_wallet_post; no function changes);
- runtime settings `referrals.terms` (one versioned object), `referrals.review_below_trust`,
  `referrals.burst_claims_per_day`, and the rate limits of the policy `referrals` (POST
  /v1/referrals/claim), seeded with their registry defaults.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-04 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0030"
down_revision: str | Sequence[str] | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_TYPES = (
    "('step_reward', 'achievement_reward', 'redemption', 'refund', 'admin_adjustment', "
    "'reversal', 'campaign_reward', 'prize_reward')"
)
NEW_TYPES = (
    "('step_reward', 'achievement_reward', 'redemption', 'refund', 'admin_adjustment', "
    "'reversal', 'campaign_reward', 'prize_reward', 'referral_reward')"
)
STATUSES = "('pending', 'held', 'review', 'paid', 'rejected', 'expired', 'cancelled')"

_WHAT = "Referral claims (POST /v1/referrals/claim)"
SEEDS = {  # key: (value as JSON, description), as the registry had them at this revision
    "referrals.terms": (
        '{"version": 1, "referrer_coins": 500, "invitee_coins": 250, "qualifying_days": 5, '
        '"qualifying_window_days": 30, "claim_window_days": 7, "hold_days": 7, '
        '"monthly_cap": 10}',
        "The referral programme: coins for the referrer and the invitee, the approved days "
        "the invitee needs within the window from the claim, the days after sign-up a code "
        "may be claimed, the hold before paying and the referrer rewards paid per calendar "
        "month. A claim keeps the terms of its time; a change needs a higher version.",
    ),
    "referrals.review_below_trust": (
        "40",
        "A referral whose referrer or invitee has a trust score (0-100) below this goes to "
        "the referral review queue (reason low_trust); 0: never.",
    ),
    "referrals.burst_claims_per_day": (
        "5",
        "More claims than this of one referrer's code within 24 hours send the new ones to "
        "the referral review queue (reason referral_burst).",
    ),
    "ratelimit.referrals_per_account": (
        '"10/hour"',
        f"{_WHAT} by one signed-in account, as <amount>/<period>; beyond it, 429 with Retry-After.",
    ),
    "ratelimit.referrals_per_address": (
        '"100/hour"',
        f"{_WHAT} from one client address (an IPv6 /64), as <amount>/<period>; beyond it, 429 "
        "with Retry-After.",
    ),
}


def upgrade() -> None:
    op.create_table(
        "referral_codes",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_referral_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_referral_codes")),
        sa.UniqueConstraint("code", name=op.f("uq_referral_codes_code")),
    )
    op.create_table(
        "referrals",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("referrer_id", sa.UUID(), nullable=False),
        sa.Column("invitee_id", sa.UUID(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column(
            "reasons",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'::text[]"),
            nullable=False,
        ),
        sa.Column("terms", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("terms_version", sa.Integer(), nullable=False),
        sa.Column("approved_days", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "claimed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("qualified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hold_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("referrer_coins", sa.BigInteger(), nullable=True),
        sa.Column("invitee_coins", sa.BigInteger(), nullable=True),
        sa.Column("reviewed_by", sa.UUID(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(f"status IN {STATUSES}", name=op.f("ck_referrals_status")),
        sa.CheckConstraint("referrer_id <> invitee_id", name=op.f("ck_referrals_not_self")),
        sa.ForeignKeyConstraint(
            ["invitee_id"],
            ["users.id"],
            name=op.f("fk_referrals_invitee_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["referrer_id"],
            ["users.id"],
            name=op.f("fk_referrals_referrer_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"],
            ["users.id"],
            name=op.f("fk_referrals_reviewed_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint("invitee_id", name=op.f("uq_referrals_invitee_id")),
    )
    op.create_index(
        "ix_referrals_referrer", "referrals", ["referrer_id", "claimed_at", "id"], unique=False
    )
    op.create_index(
        "ix_referrals_review", "referrals", ["status", "claimed_at", "id"], unique=False
    )
    op.create_index(
        "ix_referrals_open",
        "referrals",
        ["id"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'held')"),
    )
    op.drop_constraint(op.f("ck_coin_transactions_transaction_type"), "coin_transactions")
    op.create_check_constraint(
        op.f("ck_coin_transactions_transaction_type"),
        "coin_transactions",
        f"transaction_type IN {NEW_TYPES}",
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
    # the books keep their rows: a downgrade with referral rows in the ledger fails here
    op.drop_constraint(op.f("ck_coin_transactions_transaction_type"), "coin_transactions")
    op.create_check_constraint(
        op.f("ck_coin_transactions_transaction_type"),
        "coin_transactions",
        f"transaction_type IN {OLD_TYPES}",
    )
    op.drop_index(
        "ix_referrals_open",
        table_name="referrals",
        postgresql_where=sa.text("status IN ('pending', 'held')"),
    )
    op.drop_index("ix_referrals_review", table_name="referrals")
    op.drop_index("ix_referrals_referrer", table_name="referrals")
    op.drop_table("referrals")
    op.drop_table("referral_codes")

"""Step challenges (issue 17, item 4): challenges, invitees, participants with their fees in
escrow and payouts, per-day scores; the ledger's challenge types; the settings.

- challenges: template, audience (group_id: the group or company, BIGINT, a foreign key to
  groups ON DELETE SET NULL: a deleted group's challenge keeps its participants, takes no one new),
  timezone and days, parameters, fee, house prize, status and outcome, escrow_coins;
- challenge_invitees (PK challenge, walker), challenge_participants (PK challenge, walker;
  entries counts joins for the ledger references; payout fixed at settlement, paid_at once),
  challenge_scores (PK challenge, walker, day);
- coin_transactions.transaction_type allows `challenge_entry`, `challenge_refund`,
  `challenge_prize` (lifetime_earned by the counters' one rule; no function changes);
- runtime settings `challenges.*`, seeded with their registry defaults;
- friend_requests: ix_friend_requests_unattached (to_email of open requests to an address no
  account had), read when a walker who verified that address lists their requests (issue 17's
  leftover of item 1, added here while 0034 was unreleased).

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-05 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0034"
# the lead re-chains this after the groups migration (0033) when merging
down_revision: str | Sequence[str] | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_TYPES = (
    "('step_reward', 'achievement_reward', 'redemption', 'refund', 'admin_adjustment', "
    "'reversal', 'campaign_reward', 'prize_reward', 'referral_reward')"
)
NEW_TYPES = (
    "('step_reward', 'achievement_reward', 'redemption', 'refund', 'admin_adjustment', "
    "'reversal', 'campaign_reward', 'prize_reward', 'referral_reward', 'challenge_entry', "
    "'challenge_refund', 'challenge_prize')"
)
SEEDS = {  # key: (value as JSON, description), as the registry had them at this revision
    "challenges.grace_hours": (
        "24",
        "Hours after a challenge's last day during which late syncs still count; then it "
        "settles. A challenge keeps the value of its creation.",
    ),
    "challenges.min_participants": (
        "2",
        "Fewest participants a challenge needs at its start (a creator may ask more); "
        "fewer: it is cancelled and every entry fee refunded.",
    ),
    "challenges.max_days": ("92", "Longest challenge, in days."),
    "challenges.max_entry_fee_coins": ("10000", "Highest entry fee of a challenge (0: no fees)."),
    "challenges.max_house_prize_coins": (
        "1000000",
        "Highest house prize an admin adds to a challenge (issued through the prizes budget).",
    ),
    "challenges.max_invitees": ("50", "Most friends invited to one challenge."),
    "challenges.payout_chunk_walkers": (
        "500",
        "Walkers a settlement pays per transaction (the run resumes after the last "
        "committed chunk).",
    ),
}


def _types(types: str) -> None:
    op.drop_constraint(op.f("ck_coin_transactions_transaction_type"), "coin_transactions")
    op.create_check_constraint(
        op.f("ck_coin_transactions_transaction_type"),
        "coin_transactions",
        f"transaction_type IN {types}",
    )


def upgrade() -> None:
    op.create_index(
        "ix_friend_requests_unattached",
        "friend_requests",
        ["to_email"],
        unique=False,
        postgresql_where=sa.text("to_id IS NULL AND status = 'pending'"),
    )
    op.create_table(
        "challenges",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("template", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("creator_id", sa.UUID(), nullable=True),
        sa.Column("by_staff", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("audience", sa.String(length=16), nullable=False),
        sa.Column("group_id", sa.BigInteger(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column(
            "params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("daily_cap", sa.Integer(), nullable=True),
        sa.Column("entry_fee_coins", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("house_prize_coins", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("min_participants", sa.Integer(), nullable=False),
        sa.Column("late_join", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("grace_hours", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("escrow_coins", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("pool_coins", sa.BigInteger(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scores_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "audience IN ('everyone', 'company', 'friends', 'group')",
            name=op.f("ck_challenges_audience"),
        ),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('winners', 'no_winner', 'cancelled')",
            name=op.f("ck_challenges_outcome"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'scheduled', 'active', 'grace', 'settling', 'settled', 'cancelled')",
            name=op.f("ck_challenges_status"),
        ),
        sa.CheckConstraint(
            "template IN ('total_steps', 'goal_days', 'race', 'group_goal', 'team_average')",
            name=op.f("ck_challenges_template"),
        ),
        sa.CheckConstraint(
            "daily_cap IS NULL OR daily_cap > 0", name=op.f("ck_challenges_daily_cap_positive")
        ),
        sa.CheckConstraint("ends_on >= starts_on", name=op.f("ck_challenges_date_range")),
        sa.CheckConstraint("entry_fee_coins >= 0", name=op.f("ck_challenges_fee_non_negative")),
        sa.CheckConstraint("escrow_coins >= 0", name=op.f("ck_challenges_escrow_non_negative")),
        sa.CheckConstraint("house_prize_coins >= 0", name=op.f("ck_challenges_house_non_negative")),
        sa.ForeignKeyConstraint(
            ["creator_id"],
            ["users.id"],
            name=op.f("fk_challenges_creator_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_challenges_group_id_groups"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenges")),
    )
    op.create_index("ix_challenges_creator", "challenges", ["creator_id"], unique=False)
    op.create_index(
        "ix_challenges_group",
        "challenges",
        ["group_id"],
        unique=False,
        postgresql_where=sa.text("group_id IS NOT NULL"),
    )
    op.create_index(
        "ix_challenges_open",
        "challenges",
        ["status", "starts_on"],
        unique=False,
        postgresql_where=sa.text("status IN ('scheduled', 'active', 'grace', 'settling')"),
    )
    op.create_table(
        "challenge_invitees",
        sa.Column("challenge_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["challenge_id"],
            ["challenges.id"],
            name=op.f("fk_challenge_invitees_challenge_id_challenges"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_challenge_invitees_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("challenge_id", "user_id", name=op.f("pk_challenge_invitees")),
    )
    op.create_index("ix_challenge_invitees_user", "challenge_invitees", ["user_id"], unique=False)
    op.create_table(
        "challenge_participants",
        sa.Column("challenge_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("entries", sa.Integer(), server_default="1", nullable=False),
        sa.Column("fee_held", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("team", sa.SmallInteger(), nullable=True),
        sa.Column(
            "joined_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final_rank", sa.Integer(), nullable=True),
        sa.Column("final_steps", sa.BigInteger(), nullable=True),
        sa.Column("winner", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("payout_kind", sa.String(length=8), nullable=True),
        sa.Column("payout_coins", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("house_coins", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "payout_kind IS NULL OR payout_kind IN ('prize', 'refund')",
            name=op.f("ck_challenge_participants_payout_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('joined', 'left')", name=op.f("ck_challenge_participants_status")
        ),
        sa.CheckConstraint(
            "fee_held >= 0", name=op.f("ck_challenge_participants_fee_held_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["challenge_id"],
            ["challenges.id"],
            name=op.f("fk_challenge_participants_challenge_id_challenges"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_challenge_participants_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("challenge_id", "user_id", name=op.f("pk_challenge_participants")),
    )
    op.create_index(
        "ix_challenge_participants_unpaid",
        "challenge_participants",
        ["challenge_id", "user_id"],
        unique=False,
        postgresql_where=sa.text("payout_kind IS NOT NULL AND paid_at IS NULL"),
    )
    op.create_index(
        "ix_challenge_participants_user", "challenge_participants", ["user_id"], unique=False
    )
    op.create_table(
        "challenge_scores",
        sa.Column("challenge_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["challenge_id"],
            ["challenges.id"],
            name=op.f("fk_challenge_scores_challenge_id_challenges"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_challenge_scores_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("challenge_id", "user_id", "day", name=op.f("pk_challenge_scores")),
    )
    _types(NEW_TYPES)
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
    # the books keep their rows: a downgrade with challenge rows in the ledger fails here
    _types(OLD_TYPES)
    op.drop_table("challenge_scores")
    op.drop_index("ix_challenge_participants_user", table_name="challenge_participants")
    op.drop_index(
        "ix_challenge_participants_unpaid",
        table_name="challenge_participants",
        postgresql_where=sa.text("payout_kind IS NOT NULL AND paid_at IS NULL"),
    )
    op.drop_table("challenge_participants")
    op.drop_index("ix_challenge_invitees_user", table_name="challenge_invitees")
    op.drop_table("challenge_invitees")
    op.drop_index(
        "ix_challenges_open",
        table_name="challenges",
        postgresql_where=sa.text("status IN ('scheduled', 'active', 'grace', 'settling')"),
    )
    op.drop_index(
        "ix_challenges_group",
        table_name="challenges",
        postgresql_where=sa.text("group_id IS NOT NULL"),
    )
    op.drop_index("ix_challenges_creator", table_name="challenges")
    op.drop_table("challenges")
    op.drop_index(
        "ix_friend_requests_unattached",
        table_name="friend_requests",
        postgresql_where=sa.text("to_id IS NULL AND status = 'pending'"),
    )

"""Engagement: leaderboard builds, the board-order index, leaderboard settings, starter achievements.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Defaults of the leaderboard runtime settings at this revision (frozen data).
SETTINGS_SEED = [
    (
        "leaderboards.finalize_after_hours",
        12,
        "Hours a closed day, week or month (UTC) stays live before its final snapshot.",
    ),
    (
        "leaderboards.daily_retention_days",
        35,
        "Days a closed daily board stays readable before it is deleted.",
    ),
    (
        "leaderboards.retention_days",
        400,
        "Days a closed weekly or monthly board stays readable before it is deleted.",
    ),
]

# The starter set of achievements (frozen data; admins change them through the API afterwards).
ACHIEVEMENTS_SEED = [
    (
        "first_10k_day",
        "First 10k day",
        "Walk 10,000 steps in one day.",
        {"kind": "single_day_steps", "min_steps": 10000},
        50,
    ),
    (
        "marathon_day",
        "Marathon day",
        "Walk 42,000 steps in one day.",
        {"kind": "single_day_steps", "min_steps": 42000},
        200,
    ),
    (
        "total_100k",
        "100k club",
        "Walk 100,000 approved steps in total.",
        {"kind": "total_steps", "total_steps": 100000},
        100,
    ),
    (
        "total_1m",
        "Millionaire",
        "Walk 1,000,000 approved steps in total.",
        {"kind": "total_steps", "total_steps": 1000000},
        500,
    ),
    (
        "streak_7x5k",
        "Week on the move",
        "Walk at least 5,000 steps on 7 days in a row.",
        {"kind": "streak", "streak_days": 7, "min_steps": 5000},
        100,
    ),
    (
        "streak_30x8k",
        "Month of momentum",
        "Walk at least 8,000 steps on 30 days in a row.",
        {"kind": "streak", "streak_days": 30, "min_steps": 8000},
        400,
    ),
    (
        "approved_days_30",
        "30 walking days",
        "Have steps approved on 30 different days.",
        {"kind": "approved_days", "days": 30},
        150,
    ),
    (
        "first_redemption",
        "First reward",
        "Redeem coins for a reward for the first time.",
        {"kind": "first_redemption"},
        25,
    ),
]


def upgrade() -> None:
    op.create_table(
        "leaderboard_builds",
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("is_final", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("duration_ms", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "period IN ('daily', 'weekly', 'monthly', 'all_time')",
            name=op.f("ck_leaderboard_builds_period"),
        ),
        sa.PrimaryKeyConstraint("period", "period_start", name=op.f("pk_leaderboard_builds")),
    )
    # Boards are read in total order (a rank change alone then updates rows in place), and
    # every page keeps room for the new version of its rows.
    op.drop_index("ix_leaderboard_cache_period_rank", table_name="leaderboard_cache")
    op.create_index(
        "ix_leaderboard_cache_board_order",
        "leaderboard_cache",
        ["period", "period_start", sa.text("total_steps DESC"), "user_id"],
        unique=False,
    )
    op.execute("ALTER TABLE leaderboard_cache SET (fillfactor = 45)")
    settings = sa.table(
        "settings",
        sa.column("key", sa.String),
        sa.column("value", postgresql.JSONB),
        sa.column("description", sa.Text),
    )
    op.bulk_insert(
        settings, [{"key": k, "value": v, "description": d} for k, v, d in SETTINGS_SEED]
    )
    achievements = sa.table(
        "achievements",
        sa.column("code", sa.String),
        sa.column("name", sa.String),
        sa.column("description", sa.Text),
        sa.column("unlock_criteria", postgresql.JSONB),
        sa.column("reward_coins", sa.Integer),
    )
    op.bulk_insert(
        achievements,
        [
            {
                "code": code,
                "name": name,
                "description": description,
                "unlock_criteria": criteria,
                "reward_coins": reward,
            }
            for code, name, description, criteria, reward in ACHIEVEMENTS_SEED
        ],
    )


def downgrade() -> None:
    codes = [code for code, *_ in ACHIEVEMENTS_SEED]
    op.execute(
        sa.text(
            "DELETE FROM achievements a WHERE a.code = ANY(:codes) AND NOT EXISTS "
            "(SELECT 1 FROM user_achievements ua WHERE ua.achievement_id = a.id)"
        ).bindparams(sa.bindparam("codes", codes, type_=postgresql.ARRAY(sa.String)))
    )
    op.execute(
        "DELETE FROM settings WHERE key IN ('leaderboards.finalize_after_hours', "
        "'leaderboards.daily_retention_days', 'leaderboards.retention_days')"
    )
    op.execute("ALTER TABLE leaderboard_cache RESET (fillfactor)")
    op.drop_index("ix_leaderboard_cache_board_order", table_name="leaderboard_cache")
    op.create_index(
        "ix_leaderboard_cache_period_rank",
        "leaderboard_cache",
        ["period", "period_start", "rank"],
        unique=False,
    )
    op.drop_table("leaderboard_builds")

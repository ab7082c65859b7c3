"""Versioned earn rules (issue 15, item 1): a day is paid by the rule in force on that day.

Creates `earn_rules` and moves the runtime settings it replaces into the first rule, effective
from 1970-01-01 (before any step day): `coins.per_1000_steps` becomes its rate and
`coins.daily_cap` its daily coin cap (their stored values, else the defaults 10 and 200); it
has no daily step cap (null), so it pays exactly what the settings paid. The two settings rows
are deleted. Downgrade puts them back with the values of the rule in force today (UTC) and
drops the table (and the history of rules with it).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The settings as the registry described them before this revision (frozen: downgrade only).
SETTINGS = {
    "coins.per_1000_steps": (
        "coins_per_1000_steps",
        "Coins credited per 1,000 approved steps (whole coins; remainders are not paid).",
    ),
    "coins.daily_cap": ("daily_coin_cap", "Most step-reward coins one user can earn for one day."),
}


def _stored(key: str, default: int, high: int) -> str:
    """The setting's stored value when it is a valid whole number, else its default (what the
    settings cache paid with: a bad stored value fell back to the default)."""
    return (
        f"(SELECT CASE WHEN jsonb_typeof(value) = 'number' AND (value #>> '{{}}') ~ '^[0-9]+$' "
        f"AND (value #>> '{{}}')::numeric <= {high} THEN (value #>> '{{}}')::integer "
        f"ELSE {default} END FROM settings WHERE key = '{key}')"
    )


def upgrade() -> None:
    op.create_table(
        "earn_rules",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("coins_per_1000_steps", sa.Integer(), nullable=False),
        sa.Column("daily_step_cap", sa.Integer(), nullable=True),
        sa.Column("daily_coin_cap", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.UUID(), nullable=True),
        sa.CheckConstraint(
            "coins_per_1000_steps >= 0 AND coins_per_1000_steps <= 10000",
            name=op.f("ck_earn_rules_rate_range"),
        ),
        sa.CheckConstraint(
            "daily_step_cap IS NULL OR (daily_step_cap >= 0 AND daily_step_cap <= 10000000)",
            name=op.f("ck_earn_rules_step_cap_range"),
        ),
        sa.CheckConstraint(
            "daily_coin_cap >= 0 AND daily_coin_cap <= 10000000",
            name=op.f("ck_earn_rules_coin_cap_range"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_earn_rules_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["withdrawn_by"],
            ["users.id"],
            name=op.f("fk_earn_rules_withdrawn_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_earn_rules")),
    )
    op.create_index(
        "uq_earn_rules_live_effective_from",
        "earn_rules",
        ["effective_from"],
        unique=True,
        postgresql_where=sa.text("withdrawn_at IS NULL"),
    )
    rate = _stored("coins.per_1000_steps", 10, 10_000)
    cap = _stored("coins.daily_cap", 200, 10_000_000)
    op.execute(
        "INSERT INTO earn_rules (effective_from, coins_per_1000_steps, daily_step_cap, "
        f"daily_coin_cap) VALUES (DATE '1970-01-01', coalesce({rate}, 10), NULL, "
        f"coalesce({cap}, 200))"
    )
    op.execute("DELETE FROM settings WHERE key IN ('coins.per_1000_steps', 'coins.daily_cap')")


def downgrade() -> None:
    for key, (column, description) in SETTINGS.items():
        op.execute(
            sa.text(
                "INSERT INTO settings (key, value, description) "
                f"SELECT :k, to_jsonb(r.{column}), :d FROM earn_rules r "
                "WHERE r.withdrawn_at IS NULL AND r.effective_from <= "
                "CAST(now() AT TIME ZONE 'UTC' AS date) "
                "ORDER BY r.effective_from DESC LIMIT 1 "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ).bindparams(k=key, d=description)
        )
    op.drop_index("uq_earn_rules_live_effective_from", table_name="earn_rules")
    op.drop_table("earn_rules")

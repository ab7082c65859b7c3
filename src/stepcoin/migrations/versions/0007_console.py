"""The admin console: browser sessions, the optional TOTP second factor, session timeouts.

Also a fix the review queue showed: a flagged record on a day with nothing credited yet
(`step_days.credited_source` NULL) never got its held coins written to
`step_validations.coins_pending`, because the sync matched validations on the credited source.
Now every flagged validation of the day records the day's held coins; existing waiting ones are
back-filled from step_days.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 16:00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Defaults of the console runtime settings at this revision (frozen data).
SETTINGS_SEED = [
    (
        "console.idle_timeout_minutes",
        30,
        "Minutes without a request after which a console session ends.",
    ),
    (
        "console.session_max_hours",
        12,
        "Hours after sign-in when a console session ends however active it is.",
    ),
]


# stepcoin_apply_sync as of 0003 (frozen there), with one statement changed.
OLD_VALIDATION_UPDATE = """        UPDATE step_validations v SET coins_awarded = v_delta, coins_pending = day.pending
        FROM unnest(new_ids, new_dates, new_sources) AS n(id, d, s)
        WHERE v.id = n.id AND n.d = day.d AND n.s = day.src;"""
NEW_VALIDATION_UPDATE = """        UPDATE step_validations v
        SET coins_awarded = CASE WHEN n.s = day.src THEN v_delta ELSE 0 END,
            coins_pending = CASE WHEN v.status = 'flagged' THEN day.pending ELSE 0 END
        FROM unnest(new_ids, new_dates, new_sources) AS n(id, d, s)
        WHERE v.id = n.id AND n.d = day.d AND (n.s = day.src OR v.status = 'flagged');"""

BACKFILL_HELD_COINS = """
UPDATE step_validations v SET coins_pending = d.coins_pending
FROM step_days d
WHERE v.status = 'flagged' AND v.reviewed_at IS NULL AND v.superseded_by IS NULL
  AND v.coins_pending = 0 AND d.user_id = v.user_id AND d.recorded_date = v.recorded_date
  AND d.coins_pending > 0
"""


def _apply_sync_0003() -> str:
    path = Path(__file__).with_name("0003_step_loop.py")
    spec = importlib.util.spec_from_file_location("stepcoin_migration_0003", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sql: str = module.APPLY_SYNC_SQL
    assert sql.count(OLD_VALIDATION_UPDATE) == 1
    return sql


def upgrade() -> None:
    # staff search (API and console) is ILIKE '%part%': trigram GIN indexes instead of a scan;
    # pg_trgm is a trusted extension (PostgreSQL 13+), so the database owner may create it
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in ("email", "full_name"):
        op.create_index(
            f"ix_users_{column}_trgm",
            "users",
            [column],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )
    op.create_index(
        "ix_coin_transactions_created_brin",
        "coin_transactions",
        ["created_at"],
        unique=False,
        postgresql_using="brin",
    )
    op.execute(_apply_sync_0003().replace(OLD_VALIDATION_UPDATE, NEW_VALIDATION_UPDATE))
    op.execute(BACKFILL_HELD_COINS)
    op.add_column("users", sa.Column("totp_secret", sa.Text(), nullable=True))
    op.add_column("users", sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column(
            "second_factor_done", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("ip", postgresql.INET(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_admin_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_sessions")),
    )
    op.create_table(
        "economy_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("issued", sa.BigInteger(), nullable=False),
        sa.Column("redeemed", sa.BigInteger(), nullable=False),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("clawed_back", sa.BigInteger(), nullable=False),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_economy_days")),
    )
    op.create_index("ix_admin_sessions_token_hash", "admin_sessions", ["token_hash"], unique=True)
    op.create_index("ix_admin_sessions_user_id", "admin_sessions", ["user_id"], unique=False)
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
    op.drop_index("ix_users_full_name_trgm", table_name="users")
    op.drop_index("ix_users_email_trgm", table_name="users")
    op.drop_index("ix_coin_transactions_created_brin", table_name="coin_transactions")
    op.execute(_apply_sync_0003())
    op.execute("DELETE FROM settings WHERE key LIKE 'console.%'")
    op.drop_table("economy_days")
    op.drop_index("ix_admin_sessions_user_id", table_name="admin_sessions")
    op.drop_index("ix_admin_sessions_token_hash", table_name="admin_sessions")
    op.drop_table("admin_sessions")
    op.drop_column("users", "totp_last_step")
    op.drop_column("users", "totp_enabled_at")
    op.drop_column("users", "totp_secret")

"""Retention and archival (issue 19, item 2): retention_runs (what each pruning run did) and
retention_archives (step_records months in the backup repository); the SQL rules of what may
go, stepcoin_compact_decisions v1 and stepcoin_step_month_blocker v1; indexes on
refresh_tokens.expires_at and .replaced_by for the token pruning (the foreign key's SET NULL
on delete); runtime settings `retention.*`, seeded with their registry defaults.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-06 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from stepcoin.sqlfiles import load

revision: str = "0037"
down_revision: str | Sequence[str] | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEEDS = {  # key: (value as JSON, description), as the registry had them at this revision
    "retention.decisions_days": (
        "180",
        "Days after which the superseded anti-cheat decisions of approved step records are "
        "deleted (the final decision, staff decisions and appeals stay).",
    ),
    "retention.webhook_events_days": (
        "30",
        "Days a handled Shopify webhook delivery is kept (an unhandled one stays).",
    ),
    "retention.refresh_tokens_days": (
        "30",
        "Days after its expiry a refresh token of a finished sign-in is kept.",
    ),
    "retention.step_records_months": (
        "25",
        "Months of step records kept online; older months whose rows are all settled are "
        "archived to the backup repository (when retention.archive_enabled).",
    ),
    "retention.archive_enabled": (
        "true",
        "Whether the daily job archives step_records months past retention."
        "step_records_months (`stepcoin retention archive-month` works either way).",
    ),
    "retention.batch_rows": (
        "10000",
        "Rows a pruning job examines or deletes per transaction.",
    ),
}


def upgrade() -> None:
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="running", nullable=False),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=True),
        sa.Column("next_start", sa.BigInteger(), nullable=True),
        sa.Column("batches", sa.Integer(), server_default="0", nullable=False),
        sa.Column("examined", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("deleted", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'done', 'failed')", name=op.f("ck_retention_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_runs")),
    )
    op.create_index(
        "ix_retention_runs_job_started", "retention_runs", ["job", "started_at"], unique=False
    )
    op.create_table(
        "retention_archives",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("repository", sa.Text(), nullable=True),
        sa.Column("file_key", sa.Text(), nullable=True),
        sa.Column("manifest_key", sa.Text(), nullable=True),
        sa.Column("row_count", sa.BigInteger(), nullable=True),
        sa.Column("file_bytes", sa.BigInteger(), nullable=True),
        sa.Column("file_sha256", sa.String(length=64), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "detail",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("restored_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('detached', 'written', 'verified', 'archived', 'restored')",
            name=op.f("ck_retention_archives_state"),
        ),
        sa.PrimaryKeyConstraint("month", name=op.f("pk_retention_archives")),
    )
    op.create_index("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"], unique=False)
    op.create_index(
        "ix_refresh_tokens_replaced_by",
        "refresh_tokens",
        ["replaced_by"],
        unique=False,
        postgresql_where=sa.text("replaced_by IS NOT NULL"),
    )
    op.execute(load("stepcoin.steps", "compact_decisions.v1.sql"))
    op.execute(load("stepcoin.steps", "step_month_blocker.v1.sql"))
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
    op.execute("DROP FUNCTION IF EXISTS stepcoin_step_month_blocker(date, date)")
    op.execute(
        "DROP FUNCTION IF EXISTS stepcoin_compact_decisions(bigint, timestamp with time zone, "
        "integer)"
    )
    op.drop_index("ix_refresh_tokens_replaced_by", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_expires_at", table_name="refresh_tokens")
    op.drop_table("retention_archives")
    op.drop_index("ix_retention_runs_job_started", table_name="retention_runs")
    op.drop_table("retention_runs")

"""step_records' monthly partitions cover the sync window (issue 13).

stepcoin_ensure_step_partitions v1 created months from today on, so a sync window raised past
a month (the setting allows 365 days) wrote the older days into step_records_default, which
is never archived by month and which the sync's snapshot, planned while it was empty, read by
a sequential scan on every sync. v2 (steps/sql/ensure_step_partitions.v2.sql) also moves rows
the default partition holds into their new month's partition; the job now runs hourly, from
today minus the sync window. This migration runs it once, so a database that already holds
such rows is repaired as it upgrades.

Revision ID: 0049
Revises: 0048
Create Date: 2026-12-06 19:00:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0049"
down_revision: str | Sequence[str] | None = "0048"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(load("stepcoin.steps", "ensure_step_partitions.v2.sql"))
    op.execute(
        """
        SELECT stepcoin_ensure_step_partitions(
            current_date - coalesce((SELECT (value #>> '{}')::integer FROM settings
                                     WHERE key = 'anticheat.sync_window_days'), 7) - 1,
            coalesce((SELECT (value #>> '{}')::integer FROM settings
                      WHERE key = 'steps.partition_months_ahead'), 3))
        """
    )


def downgrade() -> None:
    # the partitions stay (v1 would have kept them too); only the function goes back
    op.execute(load("stepcoin.steps", "ensure_step_partitions.v1.sql"))

"""The step sync's snapshot read as a function that keeps its generic plan (issue 13).

stepcoin_sync_snapshot (steps/sql/sync_snapshot.v1.sql) is the statement the service prepared
before, with `plan_cache_mode = force_generic_plan` for its own statements: as a prepared
statement it was planned anew on every sync (its custom plans, pruned to the days' month
partitions, always looked cheaper than the generic one).

Revision ID: 0044
Revises: 0043
Create Date: 2026-12-06 10:40:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0044"
down_revision: str | Sequence[str] | None = "0043"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(load("stepcoin.steps", "sync_snapshot.v1.sql"))


def downgrade() -> None:
    op.execute("DROP FUNCTION stepcoin_sync_snapshot(uuid, date[], date, date, interval)")

"""stepcoin_apply_sync v9 (issue 13): the read of the payload's days is bounded by those days.

v8's join of the payload's days to step_days was planned as a scan of every step_days row of
the walker (90 rows and heap pages for a 7-day sync of a walker with 90 days of history,
growing with the history); v9 names the days as an array too, so the index reads only them
(steps/sql/apply_sync.v9.sql). Same contract, rows and answer.

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-06 05:30:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0042"
down_revision: str | Sequence[str] | None = "0041"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(load("stepcoin.steps", "apply_sync.v9.sql"))


def downgrade() -> None:
    op.execute(load("stepcoin.steps", "apply_sync.v8.sql"))

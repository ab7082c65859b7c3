"""stepcoin_apply_sync v10 (issue 13): the decisions' sequence is looked up once per call, not
once per decision row (steps/sql/apply_sync.v10.sql). Same contract, rows and answer.

Revision ID: 0051
Revises: 0050
Create Date: 2026-12-06 21:30:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0051"
down_revision: str | Sequence[str] | None = "0050"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(load("stepcoin.steps", "apply_sync.v10.sql"))


def downgrade() -> None:
    op.execute(load("stepcoin.steps", "apply_sync.v9.sql"))

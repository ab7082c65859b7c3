"""One ledger, one queue: the queue's defer function (a waiting job of the same queueing lock
is a no-op, never an error).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 13:40:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(load("stepcoin", "defer_job.v1.sql"))


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS stepcoin_defer_job(text, text, text, text, jsonb)")

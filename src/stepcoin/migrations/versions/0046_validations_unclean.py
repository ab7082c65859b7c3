"""The trust score's 90-day counts read only the decisions that count (issue 13).

`fairplay.trust` counts a walker's flagged, re-approved and rejected days of the last 90 days
from step_validations. The only index by walker was (user_id, recorded_date), so each of its
three counts visited every decision the walker ever had (most of them clean approvals) and
filtered by created_at: the order sweep's score of a chunk of 100 walkers took 15 ms of
PostgreSQL at 90 days of history (1.2 ms per order, 40 % of an order's database work in the
bench), and it grew with each walker's history. The new partial index holds only what those
counts look at: decisions that are not a clean approval (flagged, rejected, or reviewed), by
walker and time. A sync's clean approval (nearly every decision) writes no entry in it.

A plain CREATE INDEX inside the migration's transaction blocks writes to step_validations while
it builds (it reads the whole table, and indexes the few rows that are not clean approvals). An
operator with a big table runs it first, outside a transaction:
    CREATE INDEX CONCURRENTLY ix_step_validations_user_unclean ON step_validations
        (user_id, created_at) WHERE status <> 'approved' OR reviewed_at IS NOT NULL;
and this migration finds it built.

Revision ID: 0046
Revises: 0045
Create Date: 2026-12-06 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0046"
down_revision: str | Sequence[str] | None = "0045"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_step_validations_user_unclean ON step_validations "
        "(user_id, created_at) WHERE status <> 'approved' OR reviewed_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_step_validations_user_unclean")

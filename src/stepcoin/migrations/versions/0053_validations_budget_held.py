"""The decisions a steps budget holds, found without reading the review queue (issue 13).

`steps.review.release_budget_holds` runs every minute: it lists the oldest decisions held only
by a steps issuance budget (flagged, unreviewed, not superseded, with an `issuance_budget`
rule hit), pays them while the budget has room, then asks again whether any is still held. The
only index it could use was the review queue's, so each run read every flagged decision of the
queue and its rule hits twice, with or without a budget in force: 110 ms of PostgreSQL at the
bench's queue of 4,000 (a cold read), growing with the queue. The new partial index holds only
the budget-held decisions, in the order the job pays them (by id); it is empty while no budget
holds anything, and a sync's clean approval writes no entry in it.

On a big table an operator builds it first, outside a transaction:
    CREATE INDEX CONCURRENTLY ix_step_validations_budget_held ON step_validations (id)
        WHERE status = 'flagged' AND reviewed_at IS NULL AND superseded_by IS NULL
          AND rule_hits @> '[{"code": "issuance_budget"}]';
and this migration finds it built.

Revision ID: 0053
Revises: 0052
Create Date: 2026-12-07 01:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0053"
down_revision: str | Sequence[str] | None = "0052"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_step_validations_budget_held ON step_validations (id) "
        "WHERE status = 'flagged' AND reviewed_at IS NULL AND superseded_by IS NULL "
        """AND rule_hits @> '[{"code": "issuance_budget"}]'"""
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_step_validations_budget_held")

"""A review's decision in two round trips (issue 13, the coin transaction at half load):
stepcoin_review_open v1 locks the owner's wallet and reads the decision, its day's records and
the steps budgets; stepcoin_review_decide v1 pays the settled day, writes the record, the
decision and the audit row, and posts through stepcoin_wallet_post
(steps/sql/review_decide.v1.sql). The approval no longer runs stepcoin_apply_sync for one day.
The steps budget's claim, which the decision shares with the sync, is stepcoin_steps_budget_take
v1 (steps/sql/steps_budget.v1.sql; stepcoin_apply_sync calls it from v9, migration 0042).

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-06 05:00:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0041"
down_revision: str | Sequence[str] | None = "0040"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(load("stepcoin.steps", "steps_budget.v1.sql"))
    op.execute(load("stepcoin.steps", "review_decide.v1.sql"))


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS stepcoin_review_decide(uuid, bigint, jsonb)")
    op.execute("DROP FUNCTION IF EXISTS stepcoin_review_open(bigint)")
    op.execute("DROP FUNCTION IF EXISTS stepcoin_steps_budget_take(jsonb, bigint)")

"""A review's decision in two statements and no explicit transaction (issue 13, the coin
transaction at half load): stepcoin_review_open v2 reads without a lock (also the wallet's
version, what the day paid and the reviewer), stepcoin_review_decide v2 checks the version,
writes as v1 did and also the walker's notification and its push job through stepcoin_notify v1
(notify/sql/notify_one.v1.sql). steps/sql/review_decide.v2.sql says how.

Revision ID: 0050
Revises: 0049
Create Date: 2026-12-06 21:00:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0050"
down_revision: str | Sequence[str] | None = "0049"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(load("stepcoin.notify", "notify_one.v1.sql"))
    op.execute(load("stepcoin.steps", "review_decide.v2.sql"))


def downgrade() -> None:
    op.execute(load("stepcoin.steps", "review_decide.v1.sql"))  # stepcoin_review_decide v1
    op.execute("DROP FUNCTION IF EXISTS stepcoin_review_open(bigint, uuid)")
    op.execute("DROP FUNCTION IF EXISTS stepcoin_notify(jsonb)")

"""What grew with a batch's size (issue 13): stepcoin_wallet_post_many, stepcoin_apply_sync v5.

- stepcoin_wallet_post_many (src/stepcoin/wallet/sql/post_many.v1.sql): many wallets' entries in
  one round trip through the one door. The achievements batch paid each unlocking walker with
  its own call while it held every one of those wallets locked; syncs of those walkers waited.
- stepcoin_apply_sync v5 (src/stepcoin/steps/sql/apply_sync.v5.sql): v4 without a correlated
  subquery per record and without growing its answer per day (both quadratic in a 500-record
  batch).

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-04 16:40:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(load("stepcoin.wallet", "post_many.v1.sql"))
    op.execute(load("stepcoin.steps", "apply_sync.v5.sql"))


def downgrade() -> None:
    op.execute(load("stepcoin.steps", "apply_sync.v4.sql"))
    op.execute(
        "DROP FUNCTION IF EXISTS stepcoin_wallet_post_many(uuid[], bigint[], text[], text[], text[])"
    )

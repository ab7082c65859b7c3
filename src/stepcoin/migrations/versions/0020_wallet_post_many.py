"""Many wallets' entries in one round trip (issue 13): stepcoin_wallet_post_many.

The achievements batch paid each unlocking walker with its own call of stepcoin_wallet_post
while it held every one of those wallets locked; syncs of those walkers waited for the whole
loop. src/stepcoin/wallet/sql/post_many.v1.sql calls the one door once per walker inside one
statement.

Revision ID: 0020
Revises: 0016
Create Date: 2026-12-04 16:40:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(load("stepcoin.wallet", "post_many.v1.sql"))


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS stepcoin_wallet_post_many(uuid[], bigint[], text[], text[], text[])"
    )

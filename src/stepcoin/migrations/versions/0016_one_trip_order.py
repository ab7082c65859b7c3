"""One round trip per order (issue 13): stepcoin_place_order does the whole placement.

POST /v1/orders locks the wallet, checks the key, the account and every line, takes the stock,
writes the order, its lines, the debit and the jobs in one call of one function
(src/stepcoin/shop/sql/place_order.v1.sql) instead of a dozen statements in a transaction.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 18:40:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(load("stepcoin.shop", "place_order.v1.sql"))


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS stepcoin_place_order(uuid, text, text, uuid, text[], bigint[], "
        "integer[], jsonb)"
    )

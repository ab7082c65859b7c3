"""stepcoin_place_order v7 (issue 13): the achievements mark on a first redemption only.

v6 marked the walker for the achievements batch on every order; an order changes only the
batch's `redeemed` fact, already true for a walker who redeemed before (shop/sql/
place_order.v7.sql).

Revision ID: 0047
Revises: 0046
Create Date: 2026-12-06 16:10:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0047"
down_revision: str | Sequence[str] | None = "0046"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(load("stepcoin.shop", "place_order.v7.sql"))


def downgrade() -> None:
    op.execute(load("stepcoin.shop", "place_order.v6.sql"))

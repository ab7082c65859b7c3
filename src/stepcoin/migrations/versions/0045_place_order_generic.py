"""stepcoin_place_order v6 (issue 13): v5 with generic plans for its own statements.

Its statements over the order's arrays were planned on every order (a custom plan counts the
arrays' lines, a generic one guesses, so the custom ones always looked cheaper); v6 is v5's
body with `plan_cache_mode = force_generic_plan` (shop/sql/place_order.v6.sql).

Revision ID: 0045
Revises: 0044
Create Date: 2026-12-06 11:15:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0045"
down_revision: str | Sequence[str] | None = "0044"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(load("stepcoin.shop", "place_order.v6.sql"))


def downgrade() -> None:
    op.execute(load("stepcoin.shop", "place_order.v5.sql"))

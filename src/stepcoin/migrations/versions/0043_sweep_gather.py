"""The order sweep woken after a gathering time (issue 13).

- stepcoin_defer_job gains a six-argument form with the time the job is due
  (sql/defer_job.v2.sql; the five-argument form stays);
- stepcoin_place_order v5 (shop/sql/place_order.v5.sql) queues shop:submit_pending due
  `shop.submit_gather_ms` after the placement that wakes it (v4: at once), so the orders placed
  meanwhile ride on one sweep instead of one sweep every few orders;
- the setting `shop.submit_gather_ms`, seeded with its default (1000).

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-06 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0043"
down_revision: str | Sequence[str] | None = "0042"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SETTING = "shop.submit_gather_ms"
DESCRIPTION = (
    "Milliseconds an order placed while no sweep waits lets others gather before the sweep "
    "that takes them to Shopify runs (0: at once)."
)


def upgrade() -> None:
    op.execute(
        sa.text(
            "INSERT INTO settings (key, value, description) "
            "VALUES (:k, CAST('1000' AS jsonb), :d) ON CONFLICT (key) DO NOTHING"
        ).bindparams(k=SETTING, d=DESCRIPTION)
    )
    op.execute(load("stepcoin", "defer_job.v2.sql"))
    op.execute(load("stepcoin.shop", "place_order.v5.sql"))


def downgrade() -> None:
    op.execute(load("stepcoin.shop", "place_order.v4.sql"))
    op.execute("DROP FUNCTION stepcoin_defer_job(text, text, text, text, jsonb, timestamptz)")
    op.execute(sa.text("DELETE FROM settings WHERE key = :k").bindparams(k=SETTING))

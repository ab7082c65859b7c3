"""The orders the Shopify poll reads, in their own index (issue 13).

`shop:poll_orders` (every 10 minutes) reads the 200 orders Shopify holds that have not moved
for 10 minutes, oldest first (status submitted, fulfilled, shipped or cancel_requested, with a
Shopify id). No index served it: every run read the whole orders table and sorted what it kept
(93.6 ms and 1,402 pages at 20,000 orders, growing with every order ever placed: seconds a
run at a million). A partial index of exactly those orders makes it a read of its first 200
entries; an order leaves it once delivered, cancelled or failed.

Its order is the poll's: the orders that can still move coins first (submitted and
cancel_requested: Shopify cancels only an unfulfilled order, and a cancellation refunds), then
fulfilled and shipped ones, each oldest first. The poll touches each order it reads, so it
cycles through them; orders that Shopify never marks delivered stay shipped and pile up with
every order ever sent, and by age alone a submitted order whose webhook was lost waited behind
all of them (100,000 such orders: ~3.5 days at 200 a run).

On a big table an operator builds it first, outside a transaction:
    CREATE INDEX CONCURRENTLY ix_orders_awaiting_shopify
        ON orders ((status IN ('fulfilled', 'shipped')), updated_at)
        WHERE status IN ('submitted', 'fulfilled', 'shipped', 'cancel_requested')
          AND shopify_order_id IS NOT NULL;
and this migration finds it built.

Revision ID: 0056
Revises: 0055
Create Date: 2026-12-07 07:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0056"
down_revision: str | Sequence[str] | None = "0055"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_orders_awaiting_shopify "
        "ON orders ((status IN ('fulfilled', 'shipped')), updated_at) "
        "WHERE status IN ('submitted', 'fulfilled', 'shipped', 'cancel_requested') "
        "AND shopify_order_id IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_orders_awaiting_shopify")

"""The Shopify poll ends for an order shipped long ago (issue 13).

The poll (`shop:poll_orders`, every 10 minutes, 200 orders a run) reads back the orders Shopify
still holds, a safety net under lost webhooks. An order Shopify never marks delivered (many
carriers never report it) stayed `fulfilled` or `shipped` and was read back for ever: with
every order ever sent in the cycle, each Shopify call a run bought less and less, and the
orders that can still move coins waited behind none of them only because of 0056's order.

`orders.shopify_poll_ended_at` is set by the poll when it reads back an order that is still
fulfilled or shipped `shop.tasks.POLL_SHIPPED_DAYS` (30) days after it shipped; the poll's
partial index leaves such an order out, so the poll reads only the orders within their
horizon. A webhook still moves it (`delivered`), as before.

Adding a nullable column is instant. On a big table an operator builds the new index first,
outside a transaction, under a new name, then swaps it in:
    CREATE INDEX CONCURRENTLY ix_orders_awaiting_shopify_new
        ON orders ((status IN ('fulfilled', 'shipped')), updated_at)
        WHERE status IN ('submitted', 'fulfilled', 'shipped', 'cancel_requested')
          AND shopify_order_id IS NOT NULL AND shopify_poll_ended_at IS NULL;
    DROP INDEX CONCURRENTLY ix_orders_awaiting_shopify;
    ALTER INDEX ix_orders_awaiting_shopify_new RENAME TO ix_orders_awaiting_shopify;
(after `ALTER TABLE orders ADD COLUMN shopify_poll_ended_at timestamptz`), and this migration
finds the column and the index as it would make them.

Revision ID: 0058
Revises: 0057
Create Date: 2026-12-07 10:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0058"
down_revision: str | Sequence[str] | None = "0057"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = "ON orders ((status IN ('fulfilled', 'shipped')), updated_at) "
_POLLED = (
    "WHERE status IN ('submitted', 'fulfilled', 'shipped', 'cancel_requested') "
    "AND shopify_order_id IS NOT NULL"
)


def _built_already() -> bool:
    """Whether ix_orders_awaiting_shopify leaves out the orders whose poll ended (an operator
    built it concurrently first)."""
    found = (
        op.get_bind()
        .exec_driver_sql(
            "SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i JOIN pg_class c "
            "ON c.oid = i.indexrelid WHERE c.relname = 'ix_orders_awaiting_shopify'"
        )
        .scalar()
    )
    return found is not None and "shopify_poll_ended_at" in found


def upgrade() -> None:
    op.execute("ALTER TABLE orders ADD COLUMN IF NOT EXISTS shopify_poll_ended_at timestamptz")
    if not _built_already():
        op.execute("DROP INDEX IF EXISTS ix_orders_awaiting_shopify")
        op.execute(
            "CREATE INDEX ix_orders_awaiting_shopify "
            + _KEY
            + _POLLED
            + " AND shopify_poll_ended_at IS NULL"
        )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_orders_awaiting_shopify")
    op.execute("CREATE INDEX ix_orders_awaiting_shopify " + _KEY + _POLLED)
    op.execute("ALTER TABLE orders DROP COLUMN IF EXISTS shopify_poll_ended_at")

"""The stored order webhooks by the order they are about (issue 13).

Account deletion reduces the handled Shopify webhooks about the walker's orders to their ids
(they carry the address and the email: `shop.privacy.erase_shipping_addresses`). It found
them by comparing three forms of each stored payload's order id with the walker's orders: no
index could serve that, so every deletion read every order webhook kept
(`retention.webhook_events_days`, 30 days of them by default; found by the seq-scan audit of
BENCHMARKS.md run 24).

`ix_webhook_events_order` indexes an order webhook's order id as the intake reads it
(`shop.tasks._gid`: the payload's `admin_graphql_api_id`, else the gid made from its `id`),
and the erasure compares that one expression with the order's `shopify_order_id`.

On a big table an operator builds it first, outside a transaction:
    CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_webhook_events_order ON webhook_events
        ((coalesce(nullif(payload ->> 'admin_graphql_api_id', ''),
                   'gid://shopify/Order/' || (payload ->> 'id'))))
        WHERE topic LIKE 'orders/%';
and this migration finds it built.

Revision ID: 0060
Revises: 0059
Create Date: 2026-12-07 11:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0060"
down_revision: str | Sequence[str] | None = "0059"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_webhook_events_order ON webhook_events "
        "((coalesce(nullif(payload ->> 'admin_graphql_api_id', ''), "
        "'gid://shopify/Order/' || (payload ->> 'id')))) WHERE topic LIKE 'orders/%'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_webhook_events_order")

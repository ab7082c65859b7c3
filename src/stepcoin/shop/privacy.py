"""What the shop keeps of a deleted walker: the orders stay for the books, the addresses go."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.shop.models import WEBHOOK_ORDER_GID

UNSENT = "pending"  # not yet created in Shopify: it can still be cancelled and refunded here
HELD = "held"  # waiting for a reviewer (a low trust score): not in Shopify either


async def orders_by_status(session: AsyncSession, user_id: uuid.UUID) -> dict[str, list[uuid.UUID]]:
    """The user's order ids grouped by status, oldest first."""
    rows = await session.execute(
        text("SELECT id, status FROM orders WHERE user_id = :u ORDER BY created_at, id"),
        {"u": user_id},
    )
    grouped: dict[str, list[uuid.UUID]] = {}
    for row in rows:
        grouped.setdefault(row.status, []).append(row.id)
    return grouped


async def erase_shipping_addresses(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Every order of the user keeps its lines and coins; its shipping address keeps only the
    country. The stored Shopify webhooks about those orders (they carry the address and email)
    are reduced to their ids once handled (one still waiting is handled first, as it came)."""
    result = await session.execute(
        text(
            "UPDATE orders SET shipping_address = jsonb_build_object("
            "'erased', true, 'country', shipping_address->'country'), updated_at = now() "
            "WHERE user_id = :u"
        ),
        {"u": user_id},
    )
    # by the order each webhook is about, as the intake read it: its index (migration 0060)
    await session.execute(
        text(
            f"""
            UPDATE webhook_events e
            SET payload = jsonb_build_object('id', e.payload->'id', 'erased', true)
            FROM orders o
            WHERE o.user_id = :u AND o.shopify_order_id IS NOT NULL
              AND e.topic LIKE 'orders/%' AND e.processed_at IS NOT NULL
              AND {WEBHOOK_ORDER_GID.format(e="e.")} = o.shopify_order_id
            """
        ),
        {"u": user_id},
    )
    return int(getattr(result, "rowcount", 0) or 0)

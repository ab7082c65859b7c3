"""Shopify deliveries: stored first, once per webhook id, then handled by a job."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.queue import SHOP_HANDLE_WEBHOOK, defer_in_transaction

# The topics a job handles; any other delivery is stored and left alone.
TOPICS = frozenset(
    {
        "products/create",
        "products/update",
        "products/delete",
        "inventory_levels/update",
        "orders/fulfilled",
        "orders/updated",
        "orders/cancelled",
    }
)


async def receive(
    session: AsyncSession,
    *,
    webhook_id: str,
    topic: str,
    shop_domain: str | None,
    payload: str,
) -> int | None:
    """Store a verified delivery and queue its handling in the caller's transaction; None
    (and nothing written) when this webhook id was stored before, so a retry is a no-op."""
    event_id = (
        await session.execute(
            text(
                "INSERT INTO webhook_events (webhook_id, topic, shop_domain, payload) "
                "VALUES (:wid, :topic, :shop, CAST(:payload AS jsonb)) "
                "ON CONFLICT (webhook_id) DO NOTHING RETURNING id"
            ),
            {
                "wid": webhook_id[:200],
                "topic": topic[:100],
                "shop": shop_domain,
                "payload": payload,
            },
        )
    ).scalar_one_or_none()
    if event_id is None:
        return None
    if topic in TOPICS:
        await defer_in_transaction(
            session,
            SHOP_HANDLE_WEBHOOK,
            {"event_id": event_id},
            lock="shopify-webhooks",
            queue="shop",
        )
    return int(event_id)

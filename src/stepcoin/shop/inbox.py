"""Shopify deliveries: stored first, once per webhook id and once per signed content, then
handled by a job.

The webhook id is a header, outside the HMAC: a replay of a captured body under a fresh id
would pass it. The content key comes from the signed body (topic + resource id + the
resource's updated_at), so such a replay is stored once.
"""

from __future__ import annotations

from typing import Any

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


def content_key(topic: str, payload: Any) -> str | None:
    """topic + resource id (+ location for stock) + updated_at, from the signed body; None when
    the body names no resource (then only the webhook id de-duplicates)."""
    if not isinstance(payload, dict):
        return None
    resource = payload.get("admin_graphql_api_id") or payload.get("id")
    if topic == "inventory_levels/update":
        resource = f"{payload.get('inventory_item_id')}@{payload.get('location_id')}"
    if resource is None or resource == "":
        return None
    return f"{topic}|{resource}|{payload.get('updated_at') or ''}"[:400]


async def receive(
    session: AsyncSession,
    *,
    webhook_id: str,
    topic: str,
    shop_domain: str | None,
    payload: str,
    content_key: str | None = None,
) -> int | None:
    """Store a verified delivery and queue its handling in the caller's transaction; None
    (and nothing written) when this webhook id, or this signed content, was stored before, so
    a retry or a replay is a no-op."""
    event_id = (
        await session.execute(
            text(
                "INSERT INTO webhook_events (webhook_id, topic, shop_domain, payload, "
                "content_key) VALUES (:wid, :topic, :shop, CAST(:payload AS jsonb), :ckey) "
                "ON CONFLICT DO NOTHING RETURNING id"
            ),
            {
                "wid": webhook_id[:200],
                "topic": topic[:100],
                "shop": shop_domain,
                "payload": payload,
                "ckey": content_key,
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

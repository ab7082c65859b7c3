"""What the shop lets go (docs/retention.md): handled Shopify webhook deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def prune_webhook_events(session: AsyncSession, *, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` webhook deliveries handled and received before `cutoff`, oldest
    first. A delivery not handled yet stays whatever its age (the handler still needs it);
    Shopify retries a delivery for 48 hours, so a de-duplication key older than the window
    (at least 7 days) guards nothing any more."""
    result = await session.execute(
        text(
            "DELETE FROM webhook_events WHERE id IN ("
            " SELECT id FROM webhook_events"
            " WHERE received_at < :cutoff AND processed_at IS NOT NULL"
            " ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED)"
        ),
        {"cutoff": cutoff, "batch": batch},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]

"""An admin's "sync now": queued, or run while the admin waits.

Waiting, the Shopify calls run outside any transaction (the sync writes each product in a
short transaction of its own), and the audit row with the outcome is written in one
transaction afterwards, so no connection sits idle in a transaction while Shopify answers.
"""

from __future__ import annotations

import uuid
from typing import Any

from stepcoin import audit
from stepcoin.db import Database, session_scope
from stepcoin.errors import AppError
from stepcoin.shop import catalogue
from stepcoin.shop.shopify import ShopifyError, ShopifyUnavailable
from stepcoin.shop.tasks import sync_catalogue


async def sync_now(database: Database, *, admin_id: uuid.UUID, wait: bool) -> dict[str, Any]:
    """Queue a sync ({status: queued | already_queued, job_id}) or, with `wait`, run it and
    return the run ({id, status, products_seen, created, updated, deactivated}); audited."""
    if not wait:
        async with session_scope(database) as session:
            job_id = await catalogue.request_sync(session, admin_id=admin_id)
        return {"status": "queued" if job_id is not None else "already_queued", "job_id": job_id}
    try:
        outcome = await sync_catalogue(database, trigger="manual")
    except ShopifyError as exc:
        await _audit(database, admin_id, {"wait": True, "status": "failed", "error": str(exc)})
        unavailable = isinstance(exc, ShopifyUnavailable)
        raise AppError(
            f"The sync failed: Shopify {'is unavailable' if unavailable else 'refused it'} "
            f"({exc}). Nothing else changed; try again later.",
            code="shopify_unavailable" if unavailable else "shopify_error",
            status=502,
        ) from exc
    except Exception:
        await _audit(database, admin_id, {"wait": True, "status": "failed"})
        raise
    await _audit(
        database,
        admin_id,
        {"wait": True, "status": outcome["status"], "sync_run_id": outcome["id"]},
    )
    return outcome


async def _audit(database: Database, admin_id: uuid.UUID, after: dict[str, Any]) -> None:
    async with session_scope(database) as session:
        await audit.record(
            session,
            admin_id=admin_id,
            action="shop.sync",
            entity_type="shop",
            entity_id=None,
            after=after,
        )

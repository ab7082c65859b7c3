"""POST /v1/webhooks/shopify: verify, store once, answer at once; a job does the work."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from sqlalchemy import text

from stepcoin.auth.dependencies import SettingsDep
from stepcoin.db import SessionDep
from stepcoin.errors import AppError, Unauthorized
from stepcoin.queue import SHOP_HANDLE_WEBHOOK, defer_in_transaction
from stepcoin.shop.runtime import webhook_secrets
from stepcoin.shop.webhook_signing import verify

router = APIRouter(tags=["webhooks"])
TOPICS = {
    "products/create",
    "products/update",
    "products/delete",
    "inventory_levels/update",
    "orders/fulfilled",
    "orders/updated",
    "orders/cancelled",
}


@router.post("/v1/webhooks/shopify")
async def shopify_webhook(request: Request, session: SessionDep, settings: SettingsDep) -> Any:
    """A Shopify delivery: 200 once the HMAC checks out (401 otherwise); a repeated webhook id
    changes nothing. The body is stored before anything else and handled by a job."""
    body = await request.body()
    if not verify(body, request.headers.get("x-shopify-hmac-sha256"), webhook_secrets(settings)):
        raise Unauthorized("The webhook signature does not match.", code="invalid_signature")
    webhook_id = request.headers.get("x-shopify-webhook-id")
    topic = request.headers.get("x-shopify-topic", "")
    if not webhook_id:
        raise AppError("X-Shopify-Webhook-Id is missing.", code="missing_webhook_id", status=400)
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise AppError("The body is not JSON.", code="malformed_json", status=400) from exc
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
                "shop": request.headers.get("x-shopify-shop-domain"),
                "payload": body.decode("utf-8"),
            },
        )
    ).scalar_one_or_none()
    if event_id is None:
        return {"status": "duplicate"}
    if topic in TOPICS:
        await defer_in_transaction(
            session,
            SHOP_HANDLE_WEBHOOK,
            {"event_id": event_id},
            lock="shopify-webhooks",
            queue="shop",
        )
    return {"status": "accepted", "id": event_id}

"""POST /v1/webhooks/shopify: verify, store once, answer at once; a job does the work."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request

from stepcoin.auth.dependencies import SettingsDep
from stepcoin.db import SessionDep
from stepcoin.errors import AppError, Forbidden, Unauthorized
from stepcoin.shop import inbox
from stepcoin.shop.runtime import expected_shop_domain, webhook_secrets
from stepcoin.shop.webhook_signing import verify

router = APIRouter(tags=["webhooks"])


@router.post("/v1/webhooks/shopify")
async def shopify_webhook(request: Request, session: SessionDep, settings: SettingsDep) -> Any:
    """A Shopify delivery: 200 once the HMAC checks out (401 otherwise) and it comes from the
    configured shop (X-Shopify-Shop-Domain; 403 `wrong_shop_domain` otherwise). A repeated
    webhook id, or the same signed content (topic + resource id + updated_at) under a fresh
    webhook id, changes nothing. The body is stored before anything else and handled by a
    job."""
    body = await request.body()
    if not verify(body, request.headers.get("x-shopify-hmac-sha256"), webhook_secrets(settings)):
        raise Unauthorized("The webhook signature does not match.", code="invalid_signature")
    webhook_id = request.headers.get("x-shopify-webhook-id")
    topic = request.headers.get("x-shopify-topic", "")
    if not webhook_id:
        raise AppError("X-Shopify-Webhook-Id is missing.", code="missing_webhook_id", status=400)
    shop_domain = (request.headers.get("x-shopify-shop-domain") or "").strip().lower()
    expected = expected_shop_domain(settings)
    if not expected or shop_domain != expected:
        raise Forbidden(
            "The webhook comes from another shop than the one configured.",
            code="wrong_shop_domain",
        )
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise AppError("The body is not JSON.", code="malformed_json", status=400) from exc
    event_id = await inbox.receive(
        session,
        webhook_id=webhook_id,
        topic=topic,
        shop_domain=shop_domain,
        payload=body.decode("utf-8"),
        content_key=inbox.content_key(topic, payload),
    )
    if event_id is None:
        return {"status": "duplicate"}
    return {"status": "accepted", "id": event_id}

"""Webhook deliveries as Shopify sends them: REST-style JSON bodies, signed X-Shopify-* headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from shopify_standin.records import (
    LOCATION_ID,
    StandInOrder,
    StandInProduct,
    StandInVariant,
    _money,
    _rest_time,
)

WebhookSender = Callable[[str, bytes, Mapping[str, str]], Awaitable[int]]


def sign(body: bytes, secret: str) -> str:
    """The X-Shopify-Hmac-Sha256 value: base64 HMAC-SHA256 of the raw body under the app secret."""
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode(
        "ascii"
    )


@dataclass
class WebhookDelivery:
    webhook_id: str
    topic: str
    url: str
    body: bytes
    headers: dict[str, str]
    attempts: list[int | str] = field(default_factory=list)

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


# -- webhook bodies (REST-style, as Shopify sends them) ---------------------------------------


def _product_payload(product: StandInProduct) -> dict[str, Any]:
    image = (
        {
            "id": product.image_id,
            "admin_graphql_api_id": f"gid://shopify/ProductImage/{product.image_id}",
            "product_id": product.id,
            "position": 1,
            "src": product.image_url,
            "alt": None,
        }
        if product.image_url
        else None
    )
    return {
        "id": product.id,
        "admin_graphql_api_id": product.gid,
        "title": product.title,
        "body_html": product.description_html,
        "vendor": product.vendor,
        "product_type": product.product_type,
        "handle": product.handle,
        "status": product.status.lower(),
        "tags": ", ".join(product.tags),
        "created_at": _rest_time(product.created_at),
        "updated_at": _rest_time(product.updated_at),
        "published_at": _rest_time(product.created_at) if product.status == "ACTIVE" else None,
        "variants": [
            {
                "id": v.id,
                "admin_graphql_api_id": v.gid,
                "product_id": product.id,
                "title": v.title,
                "price": _money(v.price),
                "sku": v.sku or "",
                "position": v.position,
                "inventory_item_id": v.inventory_item_id,
                "inventory_quantity": v.inventory_quantity,
                "inventory_management": "shopify",
                "created_at": _rest_time(v.created_at),
                "updated_at": _rest_time(v.updated_at),
            }
            for v in product.variants
        ],
        "image": image,
        "images": [image] if image else [],
    }


def _inventory_payload(variant: StandInVariant) -> dict[str, Any]:
    return {
        "inventory_item_id": variant.inventory_item_id,
        "location_id": LOCATION_ID,
        "available": variant.inventory_quantity,
        "updated_at": _rest_time(variant.updated_at),
        "admin_graphql_api_id": (
            f"gid://shopify/InventoryLevel/{LOCATION_ID}"
            f"?inventory_item_id={variant.inventory_item_id}"
        ),
    }


def _order_payload(order: StandInOrder) -> dict[str, Any]:
    address = order.shipping_address
    return {
        "id": order.id,
        "admin_graphql_api_id": order.gid,
        "name": order.name,
        "order_number": order.number,
        "email": order.email,
        "tags": ", ".join(order.tags),
        "note": order.note,
        "source_identifier": order.source_identifier,
        "financial_status": order.financial_status.lower(),
        "fulfillment_status": "fulfilled" if order.fulfillments else None,
        "cancelled_at": _rest_time(order.cancelled_at),
        "cancel_reason": order.cancel_reason.lower() if order.cancel_reason else None,
        "created_at": _rest_time(order.created_at),
        "updated_at": _rest_time(order.updated_at),
        "line_items": [
            {
                "id": line.id,
                "variant_id": line.variant_id,
                "product_id": line.product_id,
                "title": line.title,
                "quantity": line.quantity,
                "price": _money(line.price),
                "sku": line.sku,
            }
            for line in order.line_items
        ],
        "fulfillments": [
            {
                "id": f.id,
                "admin_graphql_api_id": f"gid://shopify/Fulfillment/{f.id}",
                "order_id": order.id,
                "status": "success",
                "tracking_company": f.tracking_company,
                "tracking_number": f.tracking_number,
                "tracking_numbers": [f.tracking_number] if f.tracking_number else [],
                "created_at": _rest_time(f.created_at),
                "updated_at": _rest_time(f.created_at),
            }
            for f in order.fulfillments
        ],
        "shipping_address": {
            "first_name": address.get("firstName"),
            "last_name": address.get("lastName"),
            "address1": address.get("address1"),
            "address2": address.get("address2"),
            "city": address.get("city"),
            "province_code": address.get("provinceCode"),
            "zip": address.get("zip"),
            "country_code": address.get("countryCode"),
            "phone": address.get("phone"),
        }
        if address
        else None,
    }


# -- webhook senders --------------------------------------------------------------------------


def http_webhook_sender(
    *, transport: httpx.AsyncBaseTransport | None = None, timeout: float = 5.0
) -> WebhookSender:
    """POST deliveries with httpx (over a given transport, e.g. httpx.ASGITransport(app))."""

    async def send(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        async with httpx.AsyncClient(
            transport=transport, timeout=timeout, follow_redirects=False
        ) as client:
            response = await client.post(url, content=body, headers=dict(headers))
            return response.status_code

    return send


def asgi_webhook_sender(app: Any) -> WebhookSender:
    """Deliver in-process to an ASGI app (the URL's path is what counts)."""
    return http_webhook_sender(transport=httpx.ASGITransport(app=app))

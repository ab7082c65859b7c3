"""The shop as the app sees it: products, orders, cancellation."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response, status

from stepcoin.auth.dependencies import ActiveClaimsDep, ClaimsDep, SettingsDep
from stepcoin.db import Database, DriverDep, ReadSessionDep, ReplicaSessionDep, get_database
from stepcoin.errors import InvalidInput
from stepcoin.pagination import bigint_id, decode_cursor, encode_cursor, invalid_cursor
from stepcoin.ratelimit import LimitedRoute
from stepcoin.shop import catalogue, orders
from stepcoin.shop.schemas import OrderIn, OrderListOut, OrderOut, ProductListOut, ProductOut
from stepcoin.validation import Int64

router = APIRouter(tags=["shop"])
# counted before the route or its fast path runs (stepcoin.ratelimit; main.py applies them)
LIMITED = (
    LimitedRoute("POST", "/v1/orders", "orders"),
    LimitedRoute("POST", "/v1/orders/{order_id}/cancel", "orders"),
)


@router.get("/v1/products", response_model=ProductListOut)
async def list_products(
    session: ReplicaSessionDep,
    category: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Any:
    """Active products with their coin price and stock."""
    after = _product_cursor(cursor) if cursor else None
    items = await catalogue.list_products(
        session, category=category, limit=limit + 1, after_id=after
    )
    next_cursor = (
        base64.urlsafe_b64encode(f"p{items[limit - 1]['id']}".encode()).decode().rstrip("=")
        if len(items) > limit
        else None
    )
    return {"items": items[:limit], "next_cursor": next_cursor}


@router.get("/v1/products/{product_id}", response_model=ProductOut)
async def get_product(product_id: Int64, session: ReplicaSessionDep) -> Any:
    """One active product."""
    return await catalogue.get_product(session, product_id)


@router.post("/v1/orders", status_code=status.HTTP_201_CREATED, response_model=OrderOut)
async def create_order(
    body: OrderIn,
    claims: ClaimsDep,
    driver: DriverDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="Required; a retry returns the first order."),
    ] = None,
) -> Any:
    """Redeem coins for products: all lines or none; 409 lists every short line or the missing
    coins; 403 `email_unverified` until the walker's email is verified."""
    if not idempotency_key or not (1 <= len(idempotency_key) <= 200):
        raise InvalidInput(
            "An Idempotency-Key header (1-200 characters) is required.",
            code="idempotency_key_required",
        )
    order, created = await orders.place_order(
        driver, user_id=claims.user_id, idempotency_key=idempotency_key, body=body
    )
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return order


@router.get("/v1/orders", response_model=OrderListOut)
async def list_orders(
    claims: ActiveClaimsDep,
    session: ReadSessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> Any:
    """Your orders, newest first."""
    before = decode_cursor(cursor, uuid.UUID) if cursor else None
    items = await orders.list_orders(
        session, user_id=claims.user_id, limit=limit + 1, before=before
    )
    next_cursor = None
    if len(items) > limit:
        last = items[limit - 1]
        next_cursor = encode_cursor(last["created_at"], last["id"])
    return {"items": items[:limit], "next_cursor": next_cursor}


def _product_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("p"):
            raise ValueError(raw)
        return bigint_id(raw[1:])
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise invalid_cursor() from exc


@router.get("/v1/orders/{order_id}", response_model=OrderOut)
async def get_order(order_id: uuid.UUID, claims: ActiveClaimsDep, session: ReadSessionDep) -> Any:
    """One of your orders (anyone else's is a 404)."""
    return await orders.get_order(session, order_id, user_id=claims.user_id)


@router.post(
    "/v1/orders/{order_id}/cancel",
    response_model=OrderOut,
    responses={202: {"model": OrderOut, "description": "Sent to Shopify: a cancel request"}},
)
async def cancel_order(
    order_id: uuid.UUID,
    claims: ActiveClaimsDep,
    database: Annotated[Database, Depends(get_database)],
    settings: SettingsDep,
    response: Response,
) -> Any:
    """Cancel before shipping. Not yet sent to Shopify: cancelled at once, coins refunded and
    stock returned (200). Already in Shopify: a cancel request, whose answer from Shopify is
    awaited a few seconds (STEPCOIN_CANCEL_WAIT_SECONDS): confirmed in time, 200 `cancelled`
    with the coins back; else 202 with status `cancel_requested`, the coins coming back when
    Shopify confirms; if Shopify refuses (already fulfilled) the order goes back to its status
    with `cancel_refused_reason` set."""
    order, requested = await orders.cancel_and_wait(
        database, order_id, user_id=claims.user_id, wait_seconds=settings.cancel_wait_seconds
    )
    if requested:
        response.status_code = status.HTTP_202_ACCEPTED
    return order

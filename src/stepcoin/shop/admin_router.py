"""The admins' shop: products, the Shopify sync, orders. Every change is audited."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from stepcoin.auth.dependencies import ClaimsDep, CurrentUser, current_user, require_roles
from stepcoin.db import Database, SessionDep, get_database, session_scope
from stepcoin.pagination import decode_cursor, encode_cursor
from stepcoin.shop import catalogue, orders, sync
from stepcoin.shop import queries as shop_queries
from stepcoin.shop.schemas import AdminOrderUpdate, OrderStatus, ProductCreate, ProductUpdate
from stepcoin.validation import Int64

router = APIRouter(prefix="/v1/admin", tags=["admin: shop"])
Staff = Annotated[CurrentUser, Depends(require_roles("admin", "support"))]
Admin = Annotated[CurrentUser, Depends(require_roles("admin"))]
DatabaseDep = Annotated[Database, Depends(get_database)]


@router.get("/products")
async def list_products(
    staff: Staff,
    session: SessionDep,
    category: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    after_id: Int64 | None = None,
) -> Any:
    """All products, active or not, with their Shopify link and overrides."""
    items = await catalogue.list_products(
        session, category=category, limit=limit, after_id=after_id, include_inactive=True
    )
    last_sync = await shop_queries.last_sync_run(session)
    return {"items": items, "last_sync": last_sync}


@router.post("/products", status_code=status.HTTP_201_CREATED)
async def create_product(body: ProductCreate, admin: Admin, session: SessionDep) -> Any:
    """A product that lives only here (not in Shopify)."""
    return await catalogue.create_product(session, body.model_dump(), admin_id=admin.id)


@router.patch("/products/{product_id}")
async def update_product(
    product_id: Int64, body: ProductUpdate, admin: Admin, session: SessionDep
) -> Any:
    """Coin price, stock override, active; overrides stick over syncs until released."""
    return await catalogue.update_product(
        session, product_id, body.model_dump(exclude_unset=True), admin_id=admin.id
    )


async def admin_checked_apart(claims: ClaimsDep, database: DatabaseDep) -> CurrentUser:
    """An admin, re-read in a transaction of its own that has ended before the handler runs,
    for a handler that must not hold a transaction open (it waits for Shopify)."""
    async with session_scope(database) as session:
        user = await current_user(claims, session)
    admin: CurrentUser = await require_roles("admin")(user)
    return admin


@router.post(
    "/shopify/sync",
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"description": "With ?wait=true: the finished sync run."}},
)
async def sync_now(
    admin: Annotated[CurrentUser, Depends(admin_checked_apart)],
    database: DatabaseDep,
    response: Response,
    wait: bool = False,
) -> Any:
    """Sync the catalogue from Shopify now: queued (202), or with ?wait=true run at once.

    Queued: when a sync is already waiting or running, nothing more is queued (202 with
    `status: already_queued`)."""
    outcome = await sync.sync_now(database, admin_id=admin.id, wait=wait)
    if wait:
        response.status_code = status.HTTP_200_OK
    return outcome


@router.get("/orders")
async def list_orders(
    staff: Staff,
    session: SessionDep,
    status_filter: Annotated[OrderStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Any:
    """Every order, newest first, filterable by status."""
    before = decode_cursor(cursor, uuid.UUID) if cursor else None
    items = await orders.list_orders(
        session, user_id=None, status=status_filter, limit=limit + 1, before=before
    )
    next_cursor = None
    if len(items) > limit:
        next_cursor = encode_cursor(items[limit - 1]["created_at"], items[limit - 1]["id"])
    return {"items": items[:limit], "next_cursor": next_cursor}


@router.patch("/orders/{order_id}")
async def update_order(
    order_id: uuid.UUID, body: AdminOrderUpdate, admin: Admin, session: SessionDep
) -> Any:
    """Move an order forward, or cancel/fail it (which refunds and restocks)."""
    return await orders.advance_status(
        session,
        order_id,
        body.status,
        admin_id=admin.id,
        note=body.note,
    )

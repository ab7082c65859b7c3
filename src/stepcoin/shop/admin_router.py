"""The admins' shop: products, the Shopify sync, orders. Every change is audited."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import text

from stepcoin import audit
from stepcoin.auth.dependencies import CurrentUser, require_roles
from stepcoin.db import Database, SessionDep, get_database
from stepcoin.pagination import decode_cursor, encode_cursor
from stepcoin.shop import catalogue, orders
from stepcoin.shop.schemas import AdminOrderUpdate, OrderStatus, ProductCreate, ProductUpdate

router = APIRouter(prefix="/v1/admin", tags=["admin: shop"])
Staff = Annotated[CurrentUser, Depends(require_roles("admin", "support"))]
Admin = Annotated[CurrentUser, Depends(require_roles("admin"))]


@router.get("/products")
async def list_products(
    staff: Staff,
    session: SessionDep,
    category: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
    after_id: int | None = None,
) -> Any:
    """All products, active or not, with their Shopify link and overrides."""
    items = await catalogue.list_products(
        session, category=category, limit=limit, after_id=after_id, include_inactive=True
    )
    last_sync = (
        (
            await session.execute(
                text(
                    "SELECT id, trigger, status, started_at, finished_at, products_seen, created, "
                    "updated, deactivated, error FROM shop_sync_runs ORDER BY id DESC LIMIT 1"
                )
            )
        )
        .mappings()
        .first()
    )
    return {"items": items, "last_sync": dict(last_sync) if last_sync else None}


@router.post("/products", status_code=status.HTTP_201_CREATED)
async def create_product(body: ProductCreate, admin: Admin, session: SessionDep) -> Any:
    """A product that lives only here (not in Shopify)."""
    return await catalogue.create_product(session, body.model_dump(), admin_id=admin.id)


@router.patch("/products/{product_id}")
async def update_product(
    product_id: int, body: ProductUpdate, admin: Admin, session: SessionDep
) -> Any:
    """Coin price, stock override, active; overrides stick over syncs until released."""
    return await catalogue.update_product(
        session, product_id, body.model_dump(exclude_unset=True), admin_id=admin.id
    )


@router.post("/shopify/sync", status_code=status.HTTP_202_ACCEPTED)
async def sync_now(
    admin: Admin,
    session: SessionDep,
    database: Annotated[Database, Depends(get_database)],
    response: Response,
    wait: bool = False,
) -> Any:
    """Sync the catalogue from Shopify now: queued (202), or with ?wait=true run at once.

    Queued: when a sync is already waiting or running, nothing more is queued (202 with
    `status: already_queued`)."""
    if not wait:
        job_id = await catalogue.request_sync(session, admin_id=admin.id)
        if job_id is None:
            return {"status": "already_queued", "job_id": None}
        return {"status": "queued", "job_id": job_id}
    await audit.record(
        session,
        admin_id=admin.id,
        action="shop.sync",
        entity_type="shop",
        entity_id=None,
        after={"wait": wait},
    )
    from stepcoin.shop.tasks import sync_catalogue

    await session.commit()
    response.status_code = status.HTTP_200_OK
    return await sync_catalogue(database, trigger="manual")


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

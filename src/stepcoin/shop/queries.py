"""Reading the shop for the people who run it: orders by filter, one order's people, times and
coin movements, products by text, the sync runs. Queries only; the rules stay in orders.py
and catalogue.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.shop.catalogue import select_products
from stepcoin.shop.models import ORDER_STATUSES
from stepcoin.users.repository import like_pattern
from stepcoin.wallet import reports as wallet_reports

SYNC_RUN_COLUMNS = (
    "id, trigger, status, started_at, finished_at, products_seen, created, updated, "
    "deactivated, error"
)


async def orders_by_status(session: AsyncSession) -> list[tuple[str, int]]:
    """Every order status with its count (zero included), in the lifecycle's order.

    Cost: an index-only scan of ix_orders_status_created, i.e. all orders (a few million at
    1M users: some hundreds of ms; the Prometheus collector runs the same query).
    """
    rows = await session.execute(text("SELECT status, count(*) AS n FROM orders GROUP BY status"))
    counts = {row.status: int(row.n) for row in rows}
    known = [(status, counts.pop(status, 0)) for status in ORDER_STATUSES]
    return known + sorted(counts.items())


def order_code_of(search: str) -> str:
    """An order code as people type it (with its dash, spaces, lower case) as stored."""
    return search.replace("-", "").replace(" ", "").upper()


async def search_orders(
    session: AsyncSession,
    *,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    search: str | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Orders newest first with the walker's email and the units ordered, keyset on
    (created_at, id). `search` is an order code (with or without its dash) or part of an
    email; since <= created_at < until."""
    conditions: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if status:
        conditions.append("o.status = :status")
        params["status"] = status
    if since is not None:
        conditions.append("o.created_at >= :since")
        params["since"] = since
    if until is not None:
        conditions.append("o.created_at < :until")
        params["until"] = until
    if search:
        conditions.append("(o.order_code = :code OR u.email ILIKE :email ESCAPE '\\')")
        params["code"] = order_code_of(search)
        params["email"] = like_pattern(search)
    if before is not None:
        conditions.append("(o.created_at, o.id) < (:b_at, :b_id)")
        params["b_at"], params["b_id"] = before
    where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    rows = await session.execute(
        text(
            "SELECT o.id, o.order_code, o.user_id, u.email, o.total_coins, o.status, "
            "o.created_at, o.shopify_order_id, o.shopify_order_name, "
            "(SELECT coalesce(sum(i.quantity), 0) FROM order_items i WHERE i.order_id = o.id) "
            "AS units FROM orders o JOIN users u ON u.id = o.user_id "
            f"{where} ORDER BY o.created_at DESC, o.id DESC LIMIT :limit"
        ),
        params,
    )
    return [dict(r) for r in rows.mappings()]


async def order_walker_and_times(session: AsyncSession, order_id: uuid.UUID) -> dict[str, Any]:
    """The walker's email and name and the order's status stamps (submitted_at ...
    cancelled_at); an empty dict for an unknown order."""
    row = (
        (
            await session.execute(
                text(
                    "SELECT u.email, u.full_name, o.submitted_at, o.fulfilled_at, o.shipped_at, "
                    "o.delivered_at, o.cancelled_at FROM orders o JOIN users u "
                    "ON u.id = o.user_id WHERE o.id = :id"
                ),
                {"id": order_id},
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else {}


async def order_coin_movements(
    session: AsyncSession, order: dict[str, Any]
) -> list[dict[str, Any]]:
    """The ledger rows of an order (`orders.get_order`'s dict): its redemption and refund."""
    order_id = order["id"]
    return await wallet_reports.movements_by_reference(
        session, order["user_id"], [f"order:{order_id}", f"refund:{order_id}"]
    )


async def search_products(
    session: AsyncSession,
    *,
    active: bool | None,
    search: str | None,
    after_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Products by id (keyset), optionally only (in)active or matching a text (title, category,
    Shopify ids)."""
    conditions: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if active is True:
        conditions.append("is_active")
    elif active is False:
        conditions.append("NOT is_active")
    if search:
        params["q"] = like_pattern(search)
        conditions.append(
            "(title ILIKE :q ESCAPE '\\' OR category ILIKE :q ESCAPE '\\' "
            "OR shopify_product_id ILIKE :q ESCAPE '\\' OR shopify_variant_id ILIKE :q ESCAPE '\\')"
        )
    return await select_products(session, conditions, params, after_id=after_id, limit=limit)


async def recent_sync_runs(session: AsyncSession, limit: int = 10) -> list[dict[str, Any]]:
    """The latest catalogue sync runs, newest first."""
    rows = await session.execute(
        text(f"SELECT {SYNC_RUN_COLUMNS} FROM shop_sync_runs ORDER BY id DESC LIMIT :limit"),
        {"limit": limit},
    )
    return [dict(r) for r in rows.mappings()]


async def last_sync_run(session: AsyncSession) -> dict[str, Any] | None:
    """The latest catalogue sync run, or None before the first."""
    runs = await recent_sync_runs(session, limit=1)
    return runs[0] if runs else None

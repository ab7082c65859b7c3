"""Console pages: orders (filter, read, move forward, cancel with a refund).

Changes go through `orders.advance_status`, exactly as PATCH /v1/admin/orders/{id}: a move
forward is audited there, and cancelling refunds coins and stock exactly once (a second cancel
finds the order cancelled and is refused, so nothing is paid twice). Admin-only like the API.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.console.pages.audit import entity_history
from stepcoin.console.web import (
    PREFIX,
    AdminFormDep,
    ConsoleUserDep,
    field_limits,
    perform,
    render,
    zone,
)
from stepcoin.db import ReadSessionDep
from stepcoin.errors import InvalidInput, NotFound
from stepcoin.pagination import decode_cursor, encode_cursor
from stepcoin.shop import orders
from stepcoin.shop import queries as shop_queries
from stepcoin.shop.schemas import AdminOrderUpdate, OrderStatus

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE_SIZE = 50
STATUSES: tuple[str, ...] = get_args(OrderStatus)
_, MAX_NOTE = field_limits(AdminOrderUpdate, "note")
FilterQuery = Annotated[str, Query(max_length=200)]
CursorQuery = Annotated[str | None, Query(max_length=200)]


def _order_id(raw: str) -> uuid.UUID:
    """A path's order id; anything that is not a UUID is simply not an order."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("No such order.", code="order_not_found") from None


def _day(raw: str, label: str) -> date | None:
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        day = None
    if day is None or not 1900 <= day.year <= 9000:
        raise InvalidInput(f"{label} must be a date like 2025-01-31.", code="invalid_date")
    return day


@router.get("/orders")
async def order_list(
    request: Request,
    user: ConsoleUserDep,
    session: ReadSessionDep,
    status: FilterQuery = "",
    q: FilterQuery = "",
    cursor: CursorQuery = None,
    from_: Annotated[str, Query(alias="from", max_length=20)] = "",
    to: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """Orders newest first, by status and creation date (days in the admin's time zone)."""
    q = q.strip()
    error = None
    rows: list[dict[str, Any]] = []
    next_cursor = None
    try:
        if status and status not in STATUSES:
            raise InvalidInput(f"Unknown status {status!r}.", code="invalid_status")
        tz = zone(user.timezone)
        first, last = _day(from_, "From"), _day(to, "To")
        since = datetime.combine(first, time.min, tz) if first else None
        until = datetime.combine(last + timedelta(days=1), time.min, tz) if last else None
        before = decode_cursor(cursor, uuid.UUID) if cursor else None
        rows = await shop_queries.search_orders(
            session,
            status=status or None,
            since=since,
            until=until,
            search=q or None,
            before=before,
            limit=PAGE_SIZE + 1,
        )
    except InvalidInput as exc:
        error = exc.detail
    if len(rows) > PAGE_SIZE:
        last_row = rows[PAGE_SIZE - 1]
        next_cursor = encode_cursor(last_row["created_at"], last_row["id"])
    return render(
        request,
        user,
        "orders.html",
        {
            "orders": rows[:PAGE_SIZE],
            "next_cursor": next_cursor,
            "statuses": STATUSES,
            "filters": {"status": status, "q": q, "from": from_, "to": to},
            "error": error,
        },
        status=422 if error else 200,
        section="orders",
    )


@router.get("/orders/{order_id}")
async def order_detail(
    request: Request, order_id: str, user: ConsoleUserDep, session: ReadSessionDep
) -> Response:
    """One order: items, address, its timeline, its coin movements, and the admins' forms."""
    oid = _order_id(order_id)
    order = await orders.get_order(session, oid)
    extra = await shop_queries.order_walker_and_times(session, oid)
    timeline = [("placed", order["created_at"])] + [
        (name, extra[f"{name}_at"])
        for name in ("submitted", "fulfilled", "shipped", "delivered", "cancelled")
        if extra[f"{name}_at"] is not None
    ]
    if order["status"] == "failed":  # failing stamps cancelled_at too
        timeline = [(("failed" if n == "cancelled" else n), at) for n, at in timeline]
    ledger = await shop_queries.order_coin_movements(session, order)
    history = await entity_history(session, "order", str(oid), limit=50)
    rank = orders.STATUS_RANK.get(order["status"])
    forward = [s for s, r in orders.STATUS_RANK.items() if rank is not None and r > rank]
    return render(
        request,
        user,
        "orders_detail.html",
        {
            "order": order,
            "code": f"{order['order_code'][:4]}-{order['order_code'][4:]}",
            "walker": extra,
            "timeline": timeline,
            "ledger": ledger,
            "history": history,
            "forward": forward,
            "cancellable": order["status"] in orders.CONFIRMABLE,
        },
        section="orders",
    )


def _note(raw: str) -> str | None:
    if len(raw) > MAX_NOTE:
        raise InvalidInput(f"The note may be at most {MAX_NOTE} characters.", code="note_too_long")
    return raw or None


@router.post("/orders/{order_id}/status")
async def change_status(request: Request, order_id: str, form: AdminFormDep) -> Response:
    """Move the order to a later status (or cancel/fail it) as PATCH /v1/admin/orders does."""
    back = f"{PREFIX}/orders/{order_id}"

    async def action(session: AsyncSession) -> str:
        oid = _order_id(order_id)
        new_status = form.get("status")
        if new_status not in STATUSES:
            raise InvalidInput("Choose one of the order statuses.", code="invalid_status")
        updated = await orders.advance_status(
            session, oid, new_status, admin_id=form.user.id, note=_note(form.get("note"))
        )
        return f"Order {updated['order_code']} is now {updated['status']}."

    return await perform(request, action, back=back)


@router.post("/orders/{order_id}/cancel")
async def cancel(request: Request, order_id: str, form: AdminFormDep) -> Response:
    """Cancel with a refund: PATCH status=cancelled; coins and stock come back exactly once."""
    back = f"{PREFIX}/orders/{order_id}"

    async def action(session: AsyncSession) -> str:
        oid = _order_id(order_id)
        updated = await orders.advance_status(
            session, oid, "cancelled", admin_id=form.user.id, note=_note(form.get("reason"))
        )
        return (
            f"Order {updated['order_code']} cancelled; {updated['total_coins']:,} coins "
            "went back to the walker and the stock was restored."
        )

    return await perform(request, action, back=back)

"""Console pages: the reward catalogue, its Shopify sync runs, and admins' product edits.

Edits go through `catalogue.update_product` (audited there) and the sync through the same
audit row and queued job as POST /v1/admin/shopify/sync; both are admin-only like the API.
"""

from __future__ import annotations

from typing import Annotated, Any

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
)
from stepcoin.db import ReadSessionDep
from stepcoin.errors import InvalidInput, NotFound
from stepcoin.shop import catalogue
from stepcoin.shop import queries as shop_queries
from stepcoin.shop.schemas import ProductUpdate

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE_SIZE = 50
MIN_COIN_PRICE, MAX_COIN_PRICE = field_limits(ProductUpdate, "coin_price")
MIN_STOCK, MAX_STOCK = field_limits(ProductUpdate, "stock_quantity")
SHOW: dict[str, bool | None] = {"all": None, "active": True, "inactive": False}
ShowQuery = Annotated[str, Query(pattern="^(all|active|inactive)$")]
TextQuery = Annotated[str, Query(max_length=200)]
CursorQuery = Annotated[str | None, Query(max_length=30)]


def _after_id(cursor: str | None) -> int | None:
    """A product page cursor is the last id shown; anything else starts from the top."""
    if cursor and cursor.isdigit() and 0 < int(cursor) < 2**63:
        return int(cursor)
    return None


@router.get("/products")
async def products(
    request: Request,
    user: ConsoleUserDep,
    session: ReadSessionDep,
    show: ShowQuery = "all",
    q: TextQuery = "",
    cursor: CursorQuery = None,
) -> Response:
    """The last sync runs, a Sync now button, and the products (filter, search, pages)."""
    q = q.strip()
    rows = await shop_queries.search_products(
        session,
        active=SHOW[show],
        search=q or None,
        after_id=_after_id(cursor),
        limit=PAGE_SIZE + 1,
    )
    next_cursor = str(rows[PAGE_SIZE - 1]["id"]) if len(rows) > PAGE_SIZE else None
    runs = await shop_queries.recent_sync_runs(session, limit=10)
    return render(
        request,
        user,
        "products.html",
        {
            "products": rows[:PAGE_SIZE],
            "next_cursor": next_cursor,
            "runs": runs,
            "last_run": runs[0] if runs else None,
            "sync_queued": await catalogue.sync_in_progress(session),
            "show": show,
            "q": q,
        },
        section="products",
    )


@router.post("/products/sync")
async def sync_now(request: Request, form: AdminFormDep) -> Response:
    """Queue a catalogue sync, audited, exactly as POST /v1/admin/shopify/sync does (admins)."""

    async def action(session: AsyncSession) -> str:
        if await catalogue.request_sync(session, admin_id=form.user.id) is None:
            return "A sync is already queued or running; its outcome appears below."
        return "Sync queued: the worker pulls the catalogue from Shopify shortly."

    return await perform(request, action, back=f"{PREFIX}/products")


@router.get("/products/{product_id}")
async def product(
    request: Request, product_id: int, user: ConsoleUserDep, session: ReadSessionDep
) -> Response:
    """One product: its Shopify link, overrides, the edit form (admins) and its audit trail."""
    if not 0 < product_id < 2**63:
        raise NotFound("No such product.", code="product_not_found")
    row = await catalogue.get_product(session, product_id, include_inactive=True)
    history = await entity_history(session, "product", str(product_id), limit=20)
    return render(
        request,
        user,
        "products_detail.html",
        {"product": row, "history": history},
        section="products",
    )


def _whole_number(raw: str, label: str, *, low: int, high: int) -> int:
    """A form field as an int within [low, high], or InvalidInput naming the field."""
    text_value = raw.replace(",", "").replace("\u202f", "").replace(" ", "")
    try:
        value = int(text_value)
    except ValueError:
        raise InvalidInput(
            f"{label} must be a whole number (you entered {raw!r}).", code="invalid_number"
        ) from None
    if value < low or value > high:
        raise InvalidInput(
            f"{label} must be between {low:,} and {high:,} (you entered {value:,}).",
            code="out_of_range",
        )
    return value


def product_changes(form_values: dict[str, str], current: dict[str, Any]) -> dict[str, Any]:
    """The ProductUpdate fields that differ from the product now; unchanged fields are left
    out so that saving the active flag does not pin the price or stock as overrides."""
    changes: dict[str, Any] = {}
    price_raw = form_values.get("coin_price", "")
    stock_raw = form_values.get("stock_quantity", "")
    if price_raw:
        price = _whole_number(price_raw, "Coin price", low=MIN_COIN_PRICE, high=MAX_COIN_PRICE)
        if price != current["coin_price"]:
            changes["coin_price"] = price
    if stock_raw:
        stock = _whole_number(stock_raw, "Stock", low=MIN_STOCK, high=MAX_STOCK)
        if stock != current["stock_quantity"]:
            changes["stock_quantity"] = stock
    active = form_values.get("is_active") == "1"
    if active != current["is_active"]:
        changes["is_active"] = active
    if form_values.get("release_overrides") == "1":
        if "coin_price" in changes or "stock_quantity" in changes:
            raise InvalidInput(
                "Either hand price and stock back to Shopify or set new ones, not both.",
                code="release_and_override",
            )
        changes["release_overrides"] = True
    return changes


@router.post("/products/{product_id}")
async def update_product(request: Request, product_id: int, form: AdminFormDep) -> Response:
    """Coin price, stock and active flag through catalogue.update_product (admins; audited)."""
    back = f"{PREFIX}/products/{product_id}"

    async def action(session: AsyncSession) -> str:
        if not 0 < product_id < 2**63:
            raise NotFound("No such product.", code="product_not_found")
        current = await catalogue.get_product(session, product_id, include_inactive=True)
        values = {
            key: form.get(key)
            for key in ("coin_price", "stock_quantity", "is_active", "release_overrides")
        }
        changes = product_changes(values, current)
        if not changes:
            return "Nothing changed."
        await catalogue.update_product(session, product_id, changes, admin_id=form.user.id)
        return "Product saved."

    return await perform(request, action, back=back)

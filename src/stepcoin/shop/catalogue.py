"""The reward catalogue: products from Shopify (one reward product per variant), admin edits.

Default coin price: the variant's Shopify price x `shop.coins_per_currency_unit`, rounded up
(12.50 → 1,250 coins at the default 100). An admin's price sticks (`coin_price_overridden`)
until released. Stock mirrors Shopify's inventory minus units in our orders that Shopify has
not received yet (status pending), unless an admin overrides it. Products archived, drafted or
deleted in Shopify become inactive; rows are never deleted (orders reference them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.errors import InvalidInput, NotFound
from stepcoin.queue import SHOP_SYNC_CATALOGUE, defer_in_transaction

PRODUCT_COLUMNS = (
    "id, title, description, image_url, category, coin_price, stock_quantity, is_active, "
    "shopify_product_id, shopify_variant_id, price_amount, coin_price_overridden, "
    "stock_overridden, last_synced_at, updated_at"
)


def default_coin_price(price: Decimal, coins_per_unit: int) -> int:
    return max(1, math.ceil(price * coins_per_unit))


async def list_products(
    session: AsyncSession,
    *,
    category: str | None,
    limit: int,
    after_id: int | None,
    include_inactive: bool = False,
) -> list[dict[str, Any]]:
    conditions = [] if include_inactive else ["is_active"]
    params: dict[str, Any] = {"limit": limit}
    if category:
        conditions.append("category = :category")
        params["category"] = category
    return await select_products(session, conditions, params, after_id=after_id, limit=limit)


async def select_products(
    session: AsyncSession,
    conditions: list[str],
    params: dict[str, Any],
    *,
    after_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Products meeting every condition, by id after the keyset cursor (shared by the shop's
    list and the staff search)."""
    params = {**params, "limit": limit}
    if after_id is not None:
        conditions = [*conditions, "id > :after"]
        params["after"] = after_id
    where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    rows = await session.execute(
        text(f"SELECT {PRODUCT_COLUMNS} FROM reward_products {where} ORDER BY id LIMIT :limit"),
        params,
    )
    return [dict(r) for r in rows.mappings()]


async def get_product(
    session: AsyncSession, product_id: int, *, include_inactive: bool = False
) -> dict[str, Any]:
    row = (
        (
            await session.execute(
                text(f"SELECT {PRODUCT_COLUMNS} FROM reward_products WHERE id = :id"),
                {"id": product_id},
            )
        )
        .mappings()
        .first()
    )
    if row is None or (not include_inactive and not row["is_active"]):
        raise NotFound("No such product.", code="product_not_found")
    return dict(row)


async def create_product(
    session: AsyncSession, data: Mapping[str, Any], *, admin_id: Any
) -> dict[str, Any]:
    """A product that is not in Shopify (e.g. a digital reward); audited."""
    row = (
        (
            await session.execute(
                text(
                    "INSERT INTO reward_products (title, description, image_url, category, "
                    "coin_price, stock_quantity, is_active, price_amount, coin_price_overridden, "
                    "stock_overridden) VALUES (:title, :description, :image_url, :category, "
                    ":coin_price, :stock_quantity, :is_active, :price_amount, true, true) "
                    f"RETURNING {PRODUCT_COLUMNS}"
                ),
                dict(data),
            )
        )
        .mappings()
        .one()
    )
    await audit.record(
        session,
        admin_id=admin_id,
        action="product.create",
        entity_type="product",
        entity_id=str(row["id"]),
        after=_auditable(row),
    )
    return dict(row)


def _auditable(row: Any) -> dict[str, Any]:
    keys = ("title", "category", "coin_price", "stock_quantity", "is_active")
    return {k: row[k] for k in keys}


async def update_product(
    session: AsyncSession, product_id: int, changes: Mapping[str, Any], *, admin_id: Any
) -> dict[str, Any]:
    before = (
        (
            await session.execute(
                text(f"SELECT {PRODUCT_COLUMNS} FROM reward_products WHERE id = :id FOR UPDATE"),
                {"id": product_id},
            )
        )
        .mappings()
        .first()
    )
    if before is None:
        raise NotFound("No such product.", code="product_not_found")
    if changes.get("release_overrides") and (
        changes.get("coin_price") is not None or changes.get("stock_quantity") is not None
    ):
        raise InvalidInput(
            "release_overrides hands price and stock back to Shopify; it cannot come with a "
            "new coin_price or stock_quantity.",
            code="conflicting_changes",
        )
    sets, params = [], {"id": product_id}
    for column in ("coin_price", "stock_quantity", "is_active", "title", "category"):
        if changes.get(column) is not None:
            sets.append(f"{column} = :{column}")
            params[column] = changes[column]
    if changes.get("coin_price") is not None:
        sets.append("coin_price_overridden = true")
    if changes.get("stock_quantity") is not None:
        sets.append("stock_overridden = true")
    if changes.get("release_overrides"):
        sets.append("coin_price_overridden = false, stock_overridden = false")
    if not sets:
        return dict(before)
    row = (
        (
            await session.execute(
                text(
                    f"UPDATE reward_products SET {', '.join(sets)}, updated_at = now() "
                    f"WHERE id = :id RETURNING {PRODUCT_COLUMNS}"
                ),
                params,
            )
        )
        .mappings()
        .one()
    )
    await audit.record(
        session,
        admin_id=admin_id,
        action="product.update",
        entity_type="product",
        entity_id=str(product_id),
        before=_auditable(before),
        after=_auditable(row),
    )
    return dict(row)


# --- sync on request ---


async def sync_in_progress(session: AsyncSession) -> bool:
    """A catalogue sync job is waiting or running."""
    return bool(
        (
            await session.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE task_name = :task "
                    "AND status IN ('todo', 'doing'))"
                ),
                {"task": SHOP_SYNC_CATALOGUE},
            )
        ).scalar_one()
    )


async def request_sync(session: AsyncSession, *, admin_id: Any) -> int | None:
    """Queue a catalogue sync in the caller's transaction, audited; None (and nothing written)
    when one is already waiting or running: a second one would only repeat it."""
    if await sync_in_progress(session):
        return None
    await audit.record(
        session,
        admin_id=admin_id,
        action="shop.sync",
        entity_type="shop",
        entity_id=None,
        after={"wait": False},
    )
    return await defer_in_transaction(
        session, SHOP_SYNC_CATALOGUE, {"trigger": "manual"}, queue="shop"
    )


# --- from Shopify ---------------------------------------------------------------------------

_UPSERT_VARIANT = text(
    """
    INSERT INTO reward_products AS p (
        shopify_product_id, shopify_variant_id, shopify_inventory_item_id, title, description,
        image_url, price_amount, coin_price, stock_quantity, category, is_active,
        shopify_updated_at, inventory_updated_at, last_synced_at)
    VALUES (:pid, CAST(:vid AS varchar), :iid, :title, :description, :image_url, :price,
            :coin_price,
            greatest(:stock - coalesce((SELECT sum(i.quantity) FROM order_items i
                                        JOIN orders o ON o.id = i.order_id
                                        JOIN reward_products rp ON rp.id = i.product_id
                                        WHERE rp.shopify_variant_id = CAST(:vid AS varchar)
                                          AND o.status = 'pending'), 0), 0),
            :category, :active, :updated_at, :updated_at, now())
    ON CONFLICT (shopify_variant_id) DO UPDATE SET
        shopify_product_id = EXCLUDED.shopify_product_id,
        shopify_inventory_item_id = EXCLUDED.shopify_inventory_item_id,
        title = EXCLUDED.title, description = EXCLUDED.description,
        image_url = EXCLUDED.image_url, price_amount = EXCLUDED.price_amount,
        coin_price = CASE WHEN p.coin_price_overridden THEN p.coin_price
                          ELSE EXCLUDED.coin_price END,
        stock_quantity = CASE WHEN p.stock_overridden THEN p.stock_quantity
                              ELSE EXCLUDED.stock_quantity END,
        category = EXCLUDED.category, is_active = EXCLUDED.is_active,
        shopify_updated_at = EXCLUDED.shopify_updated_at,
        inventory_updated_at = EXCLUDED.inventory_updated_at,
        last_synced_at = now(), updated_at = now()
    WHERE p.shopify_updated_at IS NULL OR p.shopify_updated_at <= EXCLUDED.shopify_updated_at
    RETURNING (xmax = 0) AS created
    """
)


async def upsert_shopify_product(
    session: AsyncSession,
    *,
    product_id: str,
    title: str,
    description: str | None,
    image_url: str | None,
    category: str | None,
    active: bool,
    updated_at: datetime,
    variants: Iterable[Mapping[str, Any]],
    coins_per_unit: int,
) -> tuple[int, int]:
    """Upsert each variant; an update older than what is stored is ignored (out of order).

    Returns (created, updated)."""
    created = updated = 0
    for variant in variants:
        variant_title = variant.get("title") or ""
        full_title = (
            title if variant_title in ("", "Default Title") else f"{title} - {variant_title}"
        )
        price = Decimal(str(variant["price"]))
        row = (
            await session.execute(
                _UPSERT_VARIANT,
                {
                    "pid": product_id,
                    "vid": variant["id"],
                    "iid": variant.get("inventory_item_id"),
                    "title": full_title[:300],
                    "description": description,
                    "image_url": image_url,
                    "price": price,
                    "coin_price": default_coin_price(price, coins_per_unit),
                    "stock": max(0, int(variant.get("inventory_quantity") or 0)),
                    "category": category,
                    "active": active,
                    "updated_at": updated_at,
                },
            )
        ).first()
        if row is None:
            continue  # stale update
        if row.created:
            created += 1
        else:
            updated += 1
    return created, updated


async def deactivate_missing(session: AsyncSession, seen_variant_ids: set[str]) -> int:
    """Products that vanished from Shopify become inactive (never deleted)."""
    result = await session.execute(
        text(
            "UPDATE reward_products SET is_active = false, updated_at = now() "
            "WHERE shopify_variant_id IS NOT NULL AND is_active "
            "AND NOT (shopify_variant_id = ANY(:seen))"
        ),
        {"seen": sorted(seen_variant_ids)},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def deactivate_shopify_product(session: AsyncSession, product_id: str) -> int:
    result = await session.execute(
        text(
            "UPDATE reward_products SET is_active = false, updated_at = now() "
            "WHERE shopify_product_id = :pid AND is_active"
        ),
        {"pid": product_id},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def set_inventory(
    session: AsyncSession, *, inventory_item_id: str, available: int, updated_at: datetime
) -> int:
    """An inventory level webhook; older than the last applied inventory change: ignored."""
    result = await session.execute(
        text(
            """
            UPDATE reward_products p SET
                stock_quantity = greatest(:available - coalesce((
                    SELECT sum(i.quantity) FROM order_items i JOIN orders o ON o.id = i.order_id
                    WHERE i.product_id = p.id AND o.status = 'pending'), 0), 0),
                inventory_updated_at = :at, updated_at = now()
            WHERE shopify_inventory_item_id = :iid AND NOT stock_overridden
              AND (inventory_updated_at IS NULL OR inventory_updated_at <= :at)
            """
        ),
        {"available": max(0, available), "iid": inventory_item_id, "at": updated_at},
    )
    return int(getattr(result, "rowcount", 0) or 0)

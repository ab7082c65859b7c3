"""Factories for shop tests."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from tests.conftest import bearer, register

ADDRESS = {
    "name": "Ada Walker",
    "line1": "1 Step Street",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}


async def product(
    engine,
    *,
    price: int = 100,
    stock: int = 10,
    title: str = "Water bottle",
    shopify: bool = False,
    active: bool = True,
) -> int:
    async with engine.begin() as conn:
        return (
            await conn.execute(
                text(
                    "INSERT INTO reward_products (title, coin_price, stock_quantity, is_active, "
                    "category, shopify_product_id, shopify_variant_id) VALUES (:t, :p, :s, :a, "
                    "'gear', :pid, :vid) RETURNING id"
                ),
                {
                    "t": title,
                    "p": price,
                    "s": stock,
                    "a": active,
                    "pid": f"gid://shopify/Product/{uuid.uuid4().int % 10**9}" if shopify else None,
                    "vid": f"gid://shopify/ProductVariant/{uuid.uuid4().int % 10**9}"
                    if shopify
                    else None,
                },
            )
        ).scalar_one()


async def walker_with_coins(client, engine, coins: int, *, verified: bool = True) -> dict[str, Any]:
    account = await register(client, verified=verified)
    if coins:
        async with engine.begin() as conn:
            await conn.execute(  # through the wallet's one door, like every movement
                text(
                    "SELECT * FROM stepcoin_wallet_post(:u, ARRAY[CAST(:c AS bigint)], "
                    "ARRAY['admin_adjustment'], ARRAY[CAST(:ref AS text)])"
                ),
                {"c": coins, "u": account["user"]["id"], "ref": f"seed:{uuid.uuid4()}"},
            )
    return account


async def order(
    client,
    token: str,
    items: list[tuple[int, int]],
    *,
    key: str | None = None,
    address: dict | None = None,
):
    return await client.post(
        "/v1/orders",
        json={
            "items": [{"product_id": p, "quantity": q} for p, q in items],
            "shipping_address": address or ADDRESS,
        },
        headers={**bearer(token), "Idempotency-Key": key or str(uuid.uuid4())},
    )


async def stock(engine, product_id: int) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT stock_quantity FROM reward_products WHERE id = :id"),
                {"id": product_id},
            )
        ).scalar_one()


async def refunds(engine) -> int:
    """How many refunds the ledger holds (each test's database is its own)."""
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT count(*) FROM coin_transactions WHERE transaction_type = 'refund'")
                )
            ).scalar_one()
        )

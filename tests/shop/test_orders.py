"""Orders paid in coins: all or nothing, once per key, refunds once, under concurrency."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tests.conftest import bearer
from tests.shop.helpers import ADDRESS, order, product, refunds, stock, walker_with_coins
from tests.steps.helpers import ledger_ok, wallet


async def test_order_debits_coins_takes_stock_and_writes_the_ledger(client, engine):
    bottle = await product(engine, price=150, stock=5)
    socks = await product(engine, price=40, stock=3, title="Socks")
    me = await walker_with_coins(client, engine, 1000)
    response = await order(client, me["access_token"], [(bottle, 2), (socks, 1)])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending" and body["total_coins"] == 340
    assert len(body["order_code"]) == 8
    assert {(i["product_id"], i["quantity"], i["coin_price"]) for i in body["items"]} == {
        (bottle, 2, 150),
        (socks, 1, 40),
    }
    assert body["shipping_address"]["country"] == "DE"
    assert await stock(engine, bottle) == 3 and await stock(engine, socks) == 2
    assert (await wallet(client, me["access_token"]))["available_coins"] == 660
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT amount, transaction_type, balance_after FROM coin_transactions "
                    "WHERE transaction_type = 'redemption'"
                )
            )
        ).one()
        outbox = (
            await conn.execute(
                text(
                    "SELECT o.status, (SELECT count(*) FROM procrastinate_jobs "
                    " WHERE task_name = 'shop:submit_pending' AND status = 'todo') "
                    "FROM orders o WHERE o.id = :id"
                ),
                {"id": body["id"]},
            )
        ).one()
    assert tuple(row) == (-340, "redemption", 660)
    # the push to Shopify: the pending order is the outbox entry, its sweep woken in the same
    # transaction
    assert tuple(outbox) == ("pending", 1)
    await ledger_ok(engine)


async def test_price_is_frozen_at_purchase(client, engine):
    bottle = await product(engine, price=100)
    me = await walker_with_coins(client, engine, 500)
    placed = (await order(client, me["access_token"], [(bottle, 1)])).json()
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE reward_products SET coin_price = 999 WHERE id = :id"), {"id": bottle}
        )
    again = await client.get(f"/v1/orders/{placed['id']}", headers=bearer(me["access_token"]))
    assert again.json()["items"][0]["coin_price"] == 100


async def test_one_409_names_every_short_line_and_the_missing_coins(client, engine):
    a = await product(engine, price=100, stock=1)
    b = await product(engine, price=100, stock=0)
    c = await product(engine, price=100, stock=10)
    me = await walker_with_coins(client, engine, 150)
    response = await order(client, me["access_token"], [(a, 2), (b, 1), (c, 1)])
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "insufficient_stock_and_coins"
    assert {(line["product_id"], line["problem"]) for line in body["lines"]} == {
        (a, "insufficient_stock"),
        (b, "insufficient_stock"),
    }
    assert body["missing_coins"] == 250
    assert await stock(engine, a) == 1 and await stock(engine, c) == 10
    assert (await wallet(client, me["access_token"]))["available_coins"] == 150


async def test_inactive_or_unknown_products_are_refused(client, engine):
    gone = await product(engine, active=False)
    me = await walker_with_coins(client, engine, 1000)
    response = await order(client, me["access_token"], [(gone, 1), (987654, 1)])
    assert response.status_code == 409
    assert {line["problem"] for line in response.json()["lines"]} == {"not_available"}


@pytest.mark.parametrize(
    "change",
    [
        {"country": "XX"},
        {"country": "Germany"},
        {"postal_code": ""},
        {"name": None},
        {"line1": "   "},
        {"planet": "Mars"},
    ],
)
async def test_shipping_address_is_validated(client, engine, change):
    bottle = await product(engine)
    me = await walker_with_coins(client, engine, 1000)
    address = {k: v for k, v in {**ADDRESS, **change}.items() if v is not None}
    response = await order(client, me["access_token"], [(bottle, 1)], address=address)
    assert response.status_code == 422
    assert await stock(engine, bottle) == 10


async def test_idempotency_key_is_required_and_bound_to_the_body(client, engine):
    bottle = await product(engine)
    me = await walker_with_coins(client, engine, 1000)
    missing = await client.post(
        "/v1/orders",
        json={"items": [{"product_id": bottle, "quantity": 1}], "shipping_address": ADDRESS},
        headers=bearer(me["access_token"]),
    )
    assert missing.status_code == 422 and missing.json()["code"] == "idempotency_key_required"
    first = await order(client, me["access_token"], [(bottle, 1)], key="k-1")
    retry = await order(client, me["access_token"], [(bottle, 1)], key="k-1")
    assert first.status_code == retry.status_code == 201
    assert first.json() == retry.json()
    assert retry.headers.get("idempotent-replayed") == "true"
    other_body = await order(client, me["access_token"], [(bottle, 2)], key="k-1")
    assert other_body.status_code == 422 and other_body.json()["code"] == "idempotency_key_reused"
    assert await stock(engine, bottle) == 9


async def test_ten_concurrent_requests_with_one_key_make_one_order(client, engine):
    bottle = await product(engine, stock=50)
    me = await walker_with_coins(client, engine, 10_000)
    responses = await asyncio.gather(
        *[order(client, me["access_token"], [(bottle, 1)], key="same") for _ in range(10)]
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len({r.text for r in responses}) == 1
    assert await stock(engine, bottle) == 49
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM orders"))).scalar_one() == 1
    await ledger_ok(engine)


async def test_hundred_concurrent_orders_for_stock_k(client, engine):
    k = 7
    bottle = await product(engine, price=100, stock=k)
    walkers = [await walker_with_coins(client, engine, 100) for _ in range(25)]
    attempts = [walkers[i % 25] for i in range(100)]
    responses = await asyncio.gather(
        *[order(client, w["access_token"], [(bottle, 1)]) for w in attempts]
    )
    codes = [r.status_code for r in responses]
    assert codes.count(201) == k, codes
    assert set(codes) <= {201, 409}
    assert await stock(engine, bottle) == 0
    async with engine.connect() as conn:
        spent = (
            await conn.execute(
                text("SELECT count(*) FROM coin_transactions WHERE transaction_type = 'redemption'")
            )
        ).scalar_one()
        balances = (await conn.execute(text("SELECT available_coins FROM wallets"))).scalars().all()
    assert spent == k
    assert sorted(balances) == sorted([0] * k + [100] * (25 - k))  # failed ones untouched
    await ledger_ok(engine)


async def test_concurrent_orders_from_one_user_with_coins_for_one(client, engine):
    a = await product(engine, price=100, stock=10)
    me = await walker_with_coins(client, engine, 100)
    responses = await asyncio.gather(
        *[order(client, me["access_token"], [(a, 1)]) for _ in range(8)]
    )
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 1 and codes.count(409) == 7
    assert (await wallet(client, me["access_token"]))["available_coins"] == 0
    assert await stock(engine, a) == 9
    await ledger_ok(engine)


async def test_cancel_refunds_once_and_restocks(client, engine):
    bottle = await product(engine, price=120, stock=4)
    me = await walker_with_coins(client, engine, 500)
    placed = (await order(client, me["access_token"], [(bottle, 2)])).json()
    cancels = await asyncio.gather(
        *[
            client.post(f"/v1/orders/{placed['id']}/cancel", headers=bearer(me["access_token"]))
            for _ in range(5)
        ]
    )
    assert sorted(r.status_code for r in cancels) == [200, 409, 409, 409, 409]
    assert await stock(engine, bottle) == 4
    assert (await wallet(client, me["access_token"]))["available_coins"] == 500
    assert await refunds(engine) == 1
    await ledger_ok(engine)


async def test_orders_are_private(client, engine):
    bottle = await product(engine)
    alice = await walker_with_coins(client, engine, 500)
    bob = await walker_with_coins(client, engine, 500)
    placed = (await order(client, alice["access_token"], [(bottle, 1)])).json()
    assert (
        await client.get(f"/v1/orders/{placed['id']}", headers=bearer(bob["access_token"]))
    ).status_code == 404
    assert (
        await client.post(f"/v1/orders/{placed['id']}/cancel", headers=bearer(bob["access_token"]))
    ).status_code == 404
    bobs = (await client.get("/v1/orders", headers=bearer(bob["access_token"]))).json()
    assert bobs["items"] == []
    alices = (await client.get("/v1/orders", headers=bearer(alice["access_token"]))).json()
    assert [o["id"] for o in alices["items"]] == [placed["id"]]
    assert (await client.get("/v1/orders")).status_code == 401


async def test_products_listing(client, engine):
    first = await product(engine, title="A")
    await product(engine, title="Hidden", active=False)
    second = await product(engine, title="B")
    page = (await client.get("/v1/products?limit=1")).json()
    assert [p["id"] for p in page["items"]] == [first] and page["next_cursor"]
    rest = (await client.get(f"/v1/products?limit=5&cursor={page['next_cursor']}")).json()
    assert [p["id"] for p in rest["items"]] == [second]
    assert (await client.get(f"/v1/products/{second}")).json()["coin_price"] == 100
    assert (await client.get("/v1/products/999999")).status_code == 404
    assert (await client.get("/v1/products?category=gear")).json()["items"]
    assert (await client.get("/v1/products?cursor=%%%")).status_code == 422

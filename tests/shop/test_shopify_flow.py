"""The shop against the Shopify stand-in: catalogue sync, webhooks, pushing and following orders."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from shopify_standin import VariantSpec
from stepcoin.config import STANDIN_SHOP_DOMAIN, STANDIN_WEBHOOK_SECRET
from stepcoin.shop.tasks import submit_order, sync_catalogue
from stepcoin.shop.webhook_signing import sign
from tests.conftest import bearer
from tests.fixtures.plans import plan_of, rows_of_walkers
from tests.shop.conftest import run_jobs
from tests.shop.helpers import order, refunds, stock, walker_with_coins
from tests.steps.helpers import ledger_ok, make_admin, wallet


async def products(engine) -> dict[str, dict]:
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM reward_products"))).mappings().all()
    return {r["shopify_variant_id"]: dict(r) for r in rows}


def vgid(variant) -> str:
    return f"gid://shopify/ProductVariant/{variant.id}"


async def test_sync_upserts_variants_prices_and_deactivates(app, engine, standin):
    shoes = standin.add_product(
        title="Trail shoes",
        product_type="shoes",
        variants=[
            VariantSpec(title="42", price="89.90", inventory=4),
            VariantSpec(title="43", price="89.90", inventory=0),
        ],
    )
    bottle = standin.add_product(title="Bottle", price="12.50", inventory=20, product_type="gear")
    draft = standin.add_product(title="Secret", price="5.00", inventory=5, status="DRAFT")
    result = await sync_catalogue(app.state.database, trigger="test")
    assert result["status"] == "succeeded" and result["created"] == 4
    rows = await products(engine)
    assert rows[vgid(bottle.variants[0])]["coin_price"] == 1250  # 12.50 x 100
    assert rows[vgid(bottle.variants[0])]["stock_quantity"] == 20
    assert rows[vgid(shoes.variants[0])]["title"] == "Trail shoes - 42"
    assert rows[vgid(shoes.variants[0])]["category"] == "shoes"
    assert rows[vgid(draft.variants[0])]["is_active"] is False

    standin.update_product(bottle.id, price="15.00")
    standin.delete_product(shoes.id)
    await sync_catalogue(app.state.database, trigger="test")
    rows = await products(engine)
    assert rows[vgid(bottle.variants[0])]["coin_price"] == 1500
    assert rows[vgid(shoes.variants[0])]["is_active"] is False  # gone from Shopify: inactive
    async with engine.connect() as conn:
        run = (
            await conn.execute(
                text("SELECT status, deactivated FROM shop_sync_runs ORDER BY id DESC LIMIT 1")
            )
        ).one()
    assert run.status == "succeeded" and run.deactivated == 2


async def test_admin_price_sticks_over_syncs(client, app, engine, standin):
    bottle = standin.add_product(title="Bottle", price="12.50", inventory=20)
    admin = await make_admin(client, engine)
    synced = await client.post("/v1/admin/shopify/sync?wait=true", headers=bearer(admin))
    assert synced.status_code == 200 and synced.json()["created"] == 1
    product_id = (await products(engine))[vgid(bottle.variants[0])]["id"]
    patched = await client.patch(
        f"/v1/admin/products/{product_id}", json={"coin_price": 999}, headers=bearer(admin)
    )
    assert patched.status_code == 200 and patched.json()["coin_price"] == 999
    contradictory = await client.patch(
        f"/v1/admin/products/{product_id}",
        json={"coin_price": 5, "release_overrides": True},
        headers=bearer(admin),
    )
    assert contradictory.status_code == 422
    assert contradictory.json()["code"] == "conflicting_changes"
    standin.update_product(bottle.id, price="20.00")
    await client.post("/v1/admin/shopify/sync?wait=true", headers=bearer(admin))
    assert (await products(engine))[vgid(bottle.variants[0])]["coin_price"] == 999
    listing = (await client.get("/v1/admin/products", headers=bearer(admin))).json()
    assert listing["last_sync"]["status"] == "succeeded"
    walker = await walker_with_coins(client, engine, 0)
    forbidden = await client.post("/v1/admin/shopify/sync", headers=bearer(walker["access_token"]))
    assert forbidden.status_code == 403
    async with engine.connect() as conn:
        actions = (
            (await conn.execute(text("SELECT action FROM admin_logs ORDER BY id"))).scalars().all()
        )
    assert "product.update" in actions and "shop.sync" in actions


async def _deliver(
    client,
    body: bytes,
    *,
    topic: str,
    webhook_id: str,
    secret=STANDIN_WEBHOOK_SECRET,
    signature: str | None = None,
    shop_domain: str = STANDIN_SHOP_DOMAIN,
):
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Shop-Domain": shop_domain,
        "Content-Type": "application/json",
    }
    if signature is not False:
        headers["X-Shopify-Hmac-Sha256"] = signature or sign(body, secret)
    return await client.post("/v1/webhooks/shopify", content=body, headers=headers)


async def test_webhook_signature_checks(client, engine):
    body = b'{"id": 1, "title": "x", "updated_at": "2026-01-01T00:00:00Z", "variants": []}'
    ok = await _deliver(client, body, topic="products/update", webhook_id="w-ok")
    assert ok.status_code == 200
    tampered = body.replace(b'"x"', b'"y"')
    good_sig = sign(body, STANDIN_WEBHOOK_SECRET)
    assert (
        await _deliver(
            client, tampered, topic="products/update", webhook_id="w-1", signature=good_sig
        )
    ).status_code == 401
    assert (
        await _deliver(client, body, topic="products/update", webhook_id="w-2", signature=False)
    ).status_code == 401
    assert (
        await _deliver(client, body, topic="products/update", webhook_id="w-3", secret="wrong")
    ).status_code == 401
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT webhook_id FROM webhook_events"))).scalars().all()
    assert stored == ["w-ok"]


async def test_the_same_webhook_five_times_has_one_effect(client, app, engine, standin):
    bottle = standin.add_product(title="Bottle", price="12.50", inventory=20)
    await sync_catalogue(app.state.database, trigger="test")
    standin.set_inventory(bottle.variants[0].id, 7)
    deliveries = await standin.drain_webhooks()
    inventory = [d for d in deliveries if d.topic == "inventory_levels/update"][-1]
    for _ in range(4):
        await standin.deliver_again(inventory.webhook_id)
    await run_jobs(app)
    async with engine.connect() as conn:
        events = (
            await conn.execute(
                text("SELECT count(*) FROM webhook_events WHERE webhook_id = :w"),
                {"w": inventory.webhook_id},
            )
        ).scalar_one()
    assert events == 1
    assert (await products(engine))[vgid(bottle.variants[0])]["stock_quantity"] == 7


async def test_out_of_order_product_updates_never_go_back(client, app, engine, standin):
    bottle = standin.add_product(title="Bottle v1", price="12.50", inventory=20)
    standin.update_product(bottle.id, title="Bottle v2")
    deliveries = [d for d in await standin.drain_webhooks() if d.topic.startswith("products/")]
    newer, older = deliveries[-1], deliveries[0]
    for delivery in (newer, older):  # the newer arrives first
        response = await _deliver(
            client, delivery.body, topic=delivery.topic, webhook_id=f"replay-{uuid.uuid4()}"
        )
        assert response.status_code == 200
    await run_jobs(app)
    assert (await products(engine))[vgid(bottle.variants[0])]["title"] == "Bottle v2"


async def _shop_with_order(client, app, engine, standin, *, qty=1, coins=5000):
    bottle = standin.add_product(title="Bottle", price="12.50", inventory=10)
    await sync_catalogue(app.state.database, trigger="test")
    product_id = (await products(engine))[vgid(bottle.variants[0])]["id"]
    walker = await walker_with_coins(client, engine, coins)
    placed = await order(client, walker["access_token"], [(product_id, qty)])
    assert placed.status_code == 201, placed.text
    return walker, placed.json(), product_id


async def order_row(engine, order_id):
    async with engine.connect() as conn:
        return (
            (await conn.execute(text("SELECT * FROM orders WHERE id = :id"), {"id": order_id}))
            .mappings()
            .one()
        )


async def test_order_is_pushed_to_shopify_once_and_followed_to_shipped(
    client, app, engine, standin
):
    walker, placed, _product_id = await _shop_with_order(client, app, engine, standin)
    await run_jobs(app)
    row = await order_row(engine, placed["id"])
    assert row["status"] == "submitted" and row["shopify_order_id"]
    in_shopify = standin.orders_with_tag(f"stepcoin-{placed['order_code']}")
    assert len(in_shopify) == 1
    # the job running again (a retry) finds the order by its tag instead of creating another
    await submit_order(app.state.database, uuid.UUID(placed["id"]), attempt=1)
    assert len(standin.orders_with_tag(f"stepcoin-{placed['order_code']}")) == 1

    standin.fulfill_order(in_shopify[0].id, "TRACK-123")
    await standin.drain_webhooks()
    await run_jobs(app)
    shown = await client.get(f"/v1/orders/{placed['id']}", headers=bearer(walker["access_token"]))
    assert shown.json()["status"] == "shipped"
    assert shown.json()["tracking_numbers"] == ["TRACK-123"]
    late_cancel = await client.post(
        f"/v1/orders/{placed['id']}/cancel", headers=bearer(walker["access_token"])
    )
    assert late_cancel.status_code == 409


async def test_permanent_refusal_fails_the_order_and_refunds_once(client, app, engine, standin):
    walker, placed, product_id = await _shop_with_order(client, app, engine, standin, qty=2)
    assert await stock(engine, product_id) == 8
    standin.fail_next(1, status=400, when="orderCreate")
    await run_jobs(app)
    row = await order_row(engine, placed["id"])
    assert row["status"] == "failed"
    assert await stock(engine, product_id) == 10
    assert (await wallet(client, walker["access_token"]))["available_coins"] == 5000
    await submit_order(app.state.database, uuid.UUID(placed["id"]), attempt=0)  # nothing again
    assert await refunds(engine) == 1
    await ledger_ok(engine)


async def test_shopify_down_retries_then_fails_after_the_last_attempt(client, app, engine, standin):
    from stepcoin.shop.shopify import ShopifyUnavailable

    walker, placed, product_id = await _shop_with_order(client, app, engine, standin)
    standin.fail_next(100, status=503)
    with pytest.raises(ShopifyUnavailable):
        await submit_order(app.state.database, uuid.UUID(placed["id"]), attempt=0)
    assert (await order_row(engine, placed["id"]))["status"] == "pending"
    outcome = await submit_order(app.state.database, uuid.UUID(placed["id"]), attempt=7)
    assert outcome == "failed"
    assert (await wallet(client, walker["access_token"]))["available_coins"] == 5000
    assert await stock(engine, product_id) == 10
    await ledger_ok(engine)


async def test_cancel_after_submit_cancels_in_shopify_and_refunds_once(
    client, app, engine, standin
):
    walker, placed, product_id = await _shop_with_order(client, app, engine, standin)
    await run_jobs(app)  # submitted
    cancelled = await client.post(
        f"/v1/orders/{placed['id']}/cancel", headers=bearer(walker["access_token"])
    )
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancel_requested"
    await run_jobs(app)  # cancel_in_shopify: Shopify confirms, the refund follows
    in_shopify = standin.orders_with_tag(f"stepcoin-{placed['order_code']}")[0]
    assert in_shopify.cancelled_at is not None
    await standin.drain_webhooks()  # Shopify answers with orders/cancelled
    await run_jobs(app)
    assert await refunds(engine) == 1
    assert await stock(engine, product_id) == 10
    await ledger_ok(engine)


async def test_cancelled_in_shopify_refunds_here(client, app, engine, standin):
    walker, placed, _product_id = await _shop_with_order(client, app, engine, standin)
    await run_jobs(app)
    in_shopify = standin.orders_with_tag(f"stepcoin-{placed['order_code']}")[0]
    standin.cancel_order(in_shopify.id)
    await standin.drain_webhooks()
    await run_jobs(app)
    assert (await order_row(engine, placed["id"]))["status"] == "cancelled"
    assert (await wallet(client, walker["access_token"]))["available_coins"] == 5000
    await ledger_ok(engine)


async def test_admin_moves_orders_forward_only(client, app, engine, standin):
    _walker, placed, _product_id = await _shop_with_order(client, app, engine, standin)
    admin = await make_admin(client, engine)
    back = await client.patch(
        f"/v1/admin/orders/{placed['id']}", json={"status": "pending"}, headers=bearer(admin)
    )
    assert back.status_code == 409
    forward = await client.patch(
        f"/v1/admin/orders/{placed['id']}", json={"status": "delivered"}, headers=bearer(admin)
    )
    assert forward.status_code == 200 and forward.json()["status"] == "delivered"
    listed = (await client.get("/v1/admin/orders?status=delivered", headers=bearer(admin))).json()
    assert [o["id"] for o in listed["items"]] == [placed["id"]]
    support = await make_admin(client, engine, role="support")
    denied = await client.patch(
        f"/v1/admin/orders/{placed['id']}", json={"status": "cancelled"}, headers=bearer(support)
    )
    assert denied.status_code == 403


async def test_polling_moves_orders_when_webhooks_are_lost(client, app, engine, standin):
    from stepcoin.shop.tasks import poll_orders

    _walker, placed, _ = await _shop_with_order(client, app, engine, standin)
    await run_jobs(app)
    standin.configure_webhooks(None, None)  # every webhook from now on is lost
    in_shopify = standin.orders_with_tag(f"stepcoin-{placed['order_code']}")[0]
    standin.fulfill_order(in_shopify.id, "LOST-WEBHOOK-1")
    assert await poll_orders(0) == 0  # too recent to poll
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE orders SET updated_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": placed["id"]},
        )
    assert await poll_orders(0) == 1
    row = await order_row(engine, placed["id"])
    assert row["status"] == "shipped" and row["tracking_numbers"] == ["LOST-WEBHOOK-1"]
    assert row["shopify_poll_ended_at"] is None


async def test_the_poll_ends_for_an_order_shipped_long_ago(client, app, engine, standin):
    """Shopify never marks the order delivered (many carriers never say): it is read back
    until POLL_SHIPPED_DAYS after it shipped, then no more (it leaves the poll's index)."""
    from stepcoin.shop.tasks import POLL_SHIPPED_DAYS, poll_orders

    _walker, placed, _ = await _shop_with_order(client, app, engine, standin)
    await run_jobs(app)
    in_shopify = standin.orders_with_tag(f"stepcoin-{placed['order_code']}")[0]
    standin.fulfill_order(in_shopify.id, "NEVER-DELIVERED-1")
    await run_jobs(app)  # the webhook: shipped
    assert (await order_row(engine, placed["id"]))["status"] == "shipped"

    async def shipped_days_ago(days: int) -> None:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE orders SET updated_at = now() - interval '1 hour', "
                    "shipped_at = now() - make_interval(days => :d) WHERE id = :id"
                ),
                {"id": placed["id"], "d": days},
            )

    await shipped_days_ago(POLL_SHIPPED_DAYS - 1)
    await poll_orders(0)
    row = await order_row(engine, placed["id"])
    assert row["status"] == "shipped" and row["shopify_poll_ended_at"] is None
    assert row["updated_at"] > datetime.now(UTC) - timedelta(minutes=5)  # read back: touched
    await shipped_days_ago(POLL_SHIPPED_DAYS + 1)
    await poll_orders(0)
    ended = (await order_row(engine, placed["id"]))["shopify_poll_ended_at"]
    assert ended is not None
    await shipped_days_ago(POLL_SHIPPED_DAYS + 2)
    await poll_orders(0)
    row = await order_row(engine, placed["id"])
    assert row["shopify_poll_ended_at"] == ended and row["updated_at"] < ended  # not read


async def test_the_poll_reads_only_the_orders_it_may_move(engine):
    """The poll's read is the start of its own partial index: it neither reads nor sorts the
    orders that Shopify is done with (delivered, cancelled, failed, or never sent), which grow
    with every order ever placed (migration 0056); and the orders that can still move coins
    come first, however many older shipped ones wait (shipped orders Shopify never marks
    delivered pile up)."""
    from stepcoin.shop.tasks import POLL_AFTER_MINUTES, POLLED_ORDERS

    async with engine.connect() as conn, conn.begin() as transaction:
        await conn.execute(
            text(
                rows_of_walkers(
                    "orders (user_id, order_code, total_coins, status, shipping_address, "
                    "shopify_order_id, idempotency_key, request_fingerprint, updated_at)",
                    "walker, 'P' || n, 10, "
                    "CASE WHEN n % 2 = 0 THEN 'shipped' WHEN n % 50 = 1 THEN 'submitted' "
                    "WHEN n % 50 = 3 THEN 'cancel_requested' ELSE 'delivered' END, '{}', "
                    "'gid://shopify/Order/' || n, 'k' || n, 'f', "
                    "now() - (6000 - n + 11) * interval '1 minute'",
                    walkers=60,
                    rows=6000,
                    label="poll",
                )
            )
        )  # 3,000 shipped, 120 submitted, 120 cancel_requested, 2,760 delivered; by age, n
        await conn.execute(text("ANALYZE orders"))
        params = {"m": POLL_AFTER_MINUTES, "limit": 300}
        plan = await plan_of(conn, POLLED_ORDERS, params)
        rows = (await conn.execute(text(POLLED_ORDERS), params)).all()
        await transaction.rollback()
    assert "ix_orders_awaiting_shopify" in plan, plan
    assert "Seq Scan on orders" not in plan and " Sort " not in plan, plan
    numbers = [int(r.shopify_order_id.rsplit("/", 1)[1]) for r in rows]
    can_refund = [n for n in range(1, 6001) if n % 50 in (1, 3)]  # the oldest first
    assert numbers[:240] == can_refund
    assert numbers[240:] == list(range(2, 6001, 2))[:60]  # then the shipped, oldest first


async def test_sync_now_queues_one_sync_at_a_time(client, engine):
    admin = await make_admin(client, engine)
    first = await client.post("/v1/admin/shopify/sync", headers=bearer(admin))
    assert first.status_code == 202 and first.json()["status"] == "queued"
    second = await client.post("/v1/admin/shopify/sync", headers=bearer(admin))
    assert second.status_code == 202 and second.json() == {
        "status": "already_queued",
        "job_id": None,
    }
    async with engine.connect() as conn:
        jobs = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM procrastinate_jobs "
                    "WHERE task_name = 'shop:sync_catalogue'"
                )
            )
        ).scalar_one()
        audited = (
            await conn.execute(text("SELECT count(*) FROM admin_logs WHERE action = 'shop.sync'"))
        ).scalar_one()
    assert jobs == 1 and audited == 1

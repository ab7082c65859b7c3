"""Issue 12 hole 12: a cancel after the order reached Shopify is a request; the coins come
back only when Shopify confirms, exactly once, and a refusal puts the order back."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from stepcoin.config import Settings
from stepcoin.shop import tasks
from stepcoin.shop.tasks import CANCEL_RETRY, ShopSwitchedOff, cancel_order_in_shopify
from tests.conftest import bearer
from tests.shop.conftest import run_jobs
from tests.shop.test_shopify_flow import _shop_with_order, order_row
from tests.steps.helpers import ledger_ok, wallet

PRICE = 1250  # the stand-in's 12.50 x 100


async def refunds(engine, order_id) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text(
                    "SELECT count(*) FROM coin_transactions "
                    "WHERE transaction_type = 'refund' AND reference_id = :r"
                ),
                {"r": f"refund:{order_id}"},
            )
        ).scalar_one()


async def _submitted(client, app, engine, standin):
    walker, placed, product_id = await _shop_with_order(client, app, engine, standin)
    await run_jobs(app)  # submit_order: now in Shopify
    assert (await order_row(engine, placed["id"]))["status"] == "submitted"
    return walker, placed, product_id


async def test_cancel_after_submission_is_a_request_refunded_once_when_shopify_confirms(
    client, app, engine, standin
):
    walker, placed, _product_id = await _submitted(client, app, engine, standin)
    token = walker["access_token"]
    asked = await client.post(f"/v1/orders/{placed['id']}/cancel", headers=bearer(token))
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] == "cancel_requested"
    assert asked.json()["cancel_requested_at"] is not None
    # nothing is refunded before Shopify says so
    assert (await wallet(client, token))["available_coins"] == 5000 - PRICE
    again = await client.post(f"/v1/orders/{placed['id']}/cancel", headers=bearer(token))
    assert again.status_code == 202 and again.json()["status"] == "cancel_requested"

    await run_jobs(app)  # cancel_in_shopify: Shopify confirms in its answer
    in_shopify = standin.orders_with_tag(f"stepcoin-{placed['order_code']}")[0]
    assert in_shopify.cancelled_at is not None
    shown = await client.get(f"/v1/orders/{placed['id']}", headers=bearer(token))
    assert shown.json()["status"] == "cancelled"
    assert (await wallet(client, token))["available_coins"] == 5000
    await standin.drain_webhooks()  # ... and the orders/cancelled webhook confirms again
    await run_jobs(app)
    assert await refunds(engine, placed["id"]) == 1
    assert (await wallet(client, token))["available_coins"] == 5000
    await ledger_ok(engine)


async def test_the_webhook_confirming_first_refunds_once_and_the_job_adds_nothing(
    client, app, engine, standin
):
    walker, placed, _product_id = await _submitted(client, app, engine, standin)
    token = walker["access_token"]
    asked = await client.post(f"/v1/orders/{placed['id']}/cancel", headers=bearer(token))
    assert asked.status_code == 202
    # Shopify's staff cancel it before our job runs: the webhook is the first confirmation
    in_shopify = standin.orders_with_tag(f"stepcoin-{placed['order_code']}")[0]
    standin.cancel_order(in_shopify.id)
    await standin.drain_webhooks()
    await run_jobs(app)  # the webhook job and the cancel job, in whichever order
    assert await cancel_order_in_shopify(app.state.database, uuid.UUID(placed["id"])) == (
        "cancelled (already refunded)"
    )
    assert (await order_row(engine, placed["id"]))["status"] == "cancelled"
    assert await refunds(engine, placed["id"]) == 1
    assert (await wallet(client, token))["available_coins"] == 5000
    await ledger_ok(engine)


async def test_a_refused_cancel_puts_the_order_back_and_tells_the_walker(
    client, app, engine, standin
):
    walker, placed, _product_id = await _submitted(client, app, engine, standin)
    token = walker["access_token"]
    in_shopify = standin.orders_with_tag(f"stepcoin-{placed['order_code']}")[0]
    standin.auto_deliver = False  # the fulfilment webhook is still on its way
    standin.fulfill_order(in_shopify.id, None)
    asked = await client.post(f"/v1/orders/{placed['id']}/cancel", headers=bearer(token))
    assert asked.status_code == 202
    await run_jobs(app)  # Shopify refuses: the order is fulfilled
    shown = (await client.get(f"/v1/orders/{placed['id']}", headers=bearer(token))).json()
    assert shown["status"] == "submitted"
    assert "fulfilled" in shown["cancel_refused_reason"]
    assert (await wallet(client, token))["available_coins"] == 5000 - PRICE
    assert await refunds(engine, placed["id"]) == 0
    await standin.drain_webhooks()
    await run_jobs(app)
    shown = (await client.get(f"/v1/orders/{placed['id']}", headers=bearer(token))).json()
    assert shown["status"] == "fulfilled"
    await ledger_ok(engine)


async def test_a_fulfilment_webhook_during_the_request_refuses_it(client, app, engine, standin):
    walker, placed, _ = await _submitted(client, app, engine, standin)
    token = walker["access_token"]
    asked = await client.post(f"/v1/orders/{placed['id']}/cancel", headers=bearer(token))
    assert asked.status_code == 202
    in_shopify = standin.orders_with_tag(f"stepcoin-{placed['order_code']}")[0]
    standin.fulfill_order(in_shopify.id, "TRACK-9")
    await standin.drain_webhooks()
    await run_jobs(app)
    shown = (await client.get(f"/v1/orders/{placed['id']}", headers=bearer(token))).json()
    assert shown["status"] == "shipped" and shown["cancel_refused_reason"]
    assert await refunds(engine, placed["id"]) == 0


async def test_cancel_before_submission_is_immediate_with_refund(client, app, engine, standin):
    walker, placed, _product_id = await _shop_with_order(client, app, engine, standin)
    token = walker["access_token"]
    cancelled = await client.post(f"/v1/orders/{placed['id']}/cancel", headers=bearer(token))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await wallet(client, token))["available_coins"] == 5000
    await run_jobs(app)  # the submit job finds a cancelled order and pushes nothing
    assert standin.orders_with_tag(f"stepcoin-{placed['order_code']}") == []
    assert await refunds(engine, placed["id"]) == 1


async def test_the_cancel_job_stops_when_the_shop_is_switched_off(
    client, app, engine, standin, monkeypatch, caplog
):
    walker, placed, _ = await _submitted(client, app, engine, standin)
    asked = await client.post(
        f"/v1/orders/{placed['id']}/cancel", headers=bearer(walker["access_token"])
    )
    assert asked.status_code == 202
    production = Settings(env="production", jwt_secret="a-production-jwt-secret-of-forty-chars!")
    monkeypatch.setattr(tasks, "get_settings", lambda: production)
    monkeypatch.setattr(tasks, "shop_available", lambda settings: False)
    with pytest.raises(ShopSwitchedOff) as raised:
        await cancel_order_in_shopify(app.state.database, uuid.UUID(placed["id"]))
    assert "no shop is configured" in caplog.text
    # the queue does not retry it (the old job retried 50 times against no shop)
    job = type("Job", (), {"attempts": 0})()
    assert CANCEL_RETRY.get_retry_decision(exception=raised.value, job=job) is None
    assert (await order_row(engine, placed["id"]))["status"] == "cancel_requested"


async def test_cancel_requested_is_not_set_by_hand_but_an_admin_may_settle_it(
    client, app, engine, standin
):
    from tests.steps.helpers import make_admin

    walker, placed, _ = await _submitted(client, app, engine, standin)
    admin = await make_admin(client, engine)
    by_hand = await client.patch(
        f"/v1/admin/orders/{placed['id']}",
        json={"status": "cancel_requested"},
        headers=bearer(admin),
    )
    assert by_hand.status_code == 422 and by_hand.json()["code"] == "invalid_status_change"
    asked = await client.post(
        f"/v1/orders/{placed['id']}/cancel", headers=bearer(walker["access_token"])
    )
    assert asked.status_code == 202
    settled = await client.patch(
        f"/v1/admin/orders/{placed['id']}", json={"status": "cancelled"}, headers=bearer(admin)
    )
    assert settled.status_code == 200 and settled.json()["status"] == "cancelled"
    await run_jobs(app)  # the cancel job still tells Shopify, and refunds nothing more
    await standin.drain_webhooks()
    await run_jobs(app)
    assert await refunds(engine, placed["id"]) == 1
    await ledger_ok(engine)


async def test_a_worker_answering_in_time_makes_the_cancel_a_200_with_the_coins_back(
    client, app, engine, standin, monkeypatch
):
    """API.md: a cancel answers 200 with the coins back while the order has not shipped. With
    a worker beside the API (`stepcoin serve`), Shopify's confirmation usually comes within the
    request's short wait: the walker gets the outcome at once; the coins still moved only on
    Shopify's confirmation (the job's refund, once)."""
    import asyncio

    walker, placed, _product_id = await _submitted(client, app, engine, standin)
    token = walker["access_token"]
    monkeypatch.setattr(app.state.settings, "cancel_wait_seconds", 5.0)

    async def worker_beside_the_api() -> None:
        while (await order_row(engine, placed["id"]))["status"] != "cancel_requested":
            await asyncio.sleep(0.02)
        await run_jobs(app)

    worker = asyncio.create_task(worker_beside_the_api())
    asked = await client.post(f"/v1/orders/{placed['id']}/cancel", headers=bearer(token))
    await worker
    assert asked.status_code == 200, asked.text
    assert asked.json()["status"] == "cancelled"
    assert standin.orders_with_tag(f"stepcoin-{placed['order_code']}")[0].cancelled_at
    assert (await wallet(client, token))["available_coins"] == 5000
    assert await refunds(engine, placed["id"]) == 1
    await ledger_ok(engine)


async def test_without_an_answer_in_time_the_cancel_stays_a_202_request(
    client, app, engine, standin, monkeypatch
):
    walker, placed, _product_id = await _submitted(client, app, engine, standin)
    monkeypatch.setattr(app.state.settings, "cancel_wait_seconds", 0.3)
    asked = await client.post(
        f"/v1/orders/{placed['id']}/cancel", headers=bearer(walker["access_token"])
    )
    assert asked.status_code == 202 and asked.json()["status"] == "cancel_requested"
    assert await refunds(engine, placed["id"]) == 0

"""A worker killed between creating the Shopify order and recording it: after a restart the
order reaches Shopify exactly once (the retried job finds it by its tag)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import text

from shopify_standin import ShopifyStandIn, serve_in_thread
from stepcoin.shop import runtime
from stepcoin.shop.shopify import STANDIN_ACCESS_TOKEN, STANDIN_SHOP_DOMAIN
from stepcoin.shop.tasks import sync_catalogue
from tests.shop.conftest import client_for
from tests.shop.helpers import order, walker_with_coins


def start_worker(database_url: str, api_url: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        {
            "DATABASE_URL": database_url,
            "STEPCOIN_SHOPIFY_API_URL": api_url,
            "STEPCOIN_JOB_HEARTBEAT_SECONDS": "0.5",
            "STEPCOIN_JOB_STALLED_SECONDS": "2",
            "STEPCOIN_LOG_LEVEL": "WARNING",
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "stepcoin.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
async def test_killed_worker_order_reaches_shopify_exactly_once(client, app, engine, database_url):
    shop = ShopifyStandIn(access_token=STANDIN_ACCESS_TOKEN, shop_domain=STANDIN_SHOP_DOMAIN)
    bottle = shop.add_product(title="Bottle", price="12.50", inventory=10)
    runtime.override_client_factory(lambda: client_for(shop))
    try:
        await sync_catalogue(app.state.database, trigger="test")
    finally:
        runtime.override_client_factory(None)
    async with engine.connect() as conn:
        product_id = (
            await conn.execute(
                text("SELECT id FROM reward_products WHERE shopify_variant_id = :v"),
                {"v": f"gid://shopify/ProductVariant/{bottle.variants[0].id}"},
            )
        ).scalar_one()
    walker = await walker_with_coins(client, engine, 5000)
    placed = (await order(client, walker["access_token"], [(product_id, 1)])).json()
    tag = f"stepcoin-{placed['order_code']}"
    # Shopify creates the order, then its answer hangs: the worker dies waiting for it
    shop.delay_next(1, 120, after_execute=True, when="orderCreate")

    with serve_in_thread(shop) as base:
        api_url = f"{base}/admin/api/2025-01/graphql.json"
        first = start_worker(database_url, api_url)
        try:
            wait_for(lambda: len(shop.orders_with_tag(tag)) == 1, 60, "the order in Shopify")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        async with engine.connect() as conn:
            status = (
                await conn.execute(
                    text("SELECT status FROM orders WHERE id = :id"), {"id": placed["id"]}
                )
            ).scalar_one()
        assert status == "pending"  # the crash happened before we recorded it
        time.sleep(3)  # the dead worker's heartbeat goes stale

        second = start_worker(database_url, api_url)
        try:

            def submitted() -> bool:
                import psycopg

                with psycopg.connect(database_url) as conn:
                    row = conn.execute(
                        "SELECT status FROM orders WHERE id = %s", (placed["id"],)
                    ).fetchone()
                return row is not None and row[0] == "submitted"

            wait_for(submitted, 90, "the order to be recorded as submitted")
        finally:
            second.send_signal(signal.SIGTERM)
            try:
                second.wait(30)
            except subprocess.TimeoutExpired:
                second.kill()
    assert len(shop.orders_with_tag(tag)) == 1
    assert shop.order_create_calls.get(tag, 0) == 1

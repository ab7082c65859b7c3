"""A Shopify stand-in per test, wired to the app: jobs talk to it, its webhooks reach the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from shopify_standin import ShopifyStandIn, asgi_webhook_sender
from stepcoin.config import STANDIN_ACCESS_TOKEN, STANDIN_SHOP_DOMAIN, STANDIN_WEBHOOK_SECRET
from stepcoin.shop import runtime
from stepcoin.shop.shopify import ShopifyClient
from stepcoin.worker import open_jobs

API_VERSION = "2025-01"


async def _no_sleep(seconds: float) -> None:
    return None


def client_for(standin: ShopifyStandIn) -> ShopifyClient:
    return ShopifyClient(
        shop_domain=STANDIN_SHOP_DOMAIN,
        access_token=STANDIN_ACCESS_TOKEN,
        api_version=API_VERSION,
        transport=httpx.ASGITransport(app=standin.build_app()),
        base_url=f"http://{STANDIN_SHOP_DOMAIN}/admin/api/{API_VERSION}/graphql.json",
        sleep=_no_sleep,
    )


@pytest.fixture
async def standin(app: Any) -> AsyncIterator[ShopifyStandIn]:
    shop = ShopifyStandIn(access_token=STANDIN_ACCESS_TOKEN, shop_domain=STANDIN_SHOP_DOMAIN)
    shop.configure_webhooks(
        "http://stepcoin.test/v1/webhooks/shopify",
        STANDIN_WEBHOOK_SECRET,
        sender=asgi_webhook_sender(app),
    )
    runtime.override_client_factory(lambda: client_for(shop))
    try:
        yield shop
    finally:
        runtime.override_client_factory(None)


async def run_jobs(app: Any) -> None:
    """Run every queued shop job now (what the worker would do); a job that raised fails the
    test instead of hiding in a retry. The sweep an order woke is due only after
    `shop.submit_gather_ms` (place_order.v5.sql): its time is taken as passed."""
    async with app.state.database.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE procrastinate_jobs SET scheduled_at = now() WHERE queue_name = 'shop' "
                "AND task_name = 'shop:submit_pending' AND status = 'todo' "
                "AND scheduled_at > now()"
            )
        )
    async with open_jobs(app.state.database) as jobs:
        await jobs.run_worker_async(wait=False, install_signal_handlers=False, queues=["shop"])
    async with app.state.database.engine.connect() as conn:
        broken = (
            await conn.execute(
                text(
                    "SELECT task_name, status, attempts FROM procrastinate_jobs "
                    "WHERE queue_name = 'shop' AND (status = 'failed' "
                    "OR (status = 'todo' AND attempts > 0))"
                )
            )
        ).all()
    assert not broken, f"jobs raised: {broken}"

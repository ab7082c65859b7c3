"""The stand-in itself: signed webhook deliveries, control endpoints, the standalone server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shopify_standin import (
    ShopifyStandIn,
    asgi_webhook_sender,
    serve_in_thread,
)
from stepcoin.shop.shopify import ShopifyClient
from stepcoin.shop.webhook_signing import verify
from tests.fixtures.ports import free_port as _free_port
from tests.shopify.conftest import API_VERSION, DOMAIN, SHIPPING, TOKEN

SECRET = "shpss_webhook_secret"
HOOK_URL = "http://stepcoin.test/v1/webhooks/shopify"


class Receiver:
    """A webhook endpoint that records what arrives."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []

        async def hook(request: Request) -> JSONResponse:
            self.received.append((dict(request.headers), await request.body()))
            return JSONResponse({"ok": True})

        self.app = Starlette(routes=[Route("/v1/webhooks/shopify", hook, methods=["POST"])])

    def topics(self) -> list[str]:
        return [headers["x-shopify-topic"] for headers, _ in self.received]

    def last(self, topic: str) -> tuple[dict[str, str], Any]:
        for headers, body in reversed(self.received):
            if headers["x-shopify-topic"] == topic:
                return headers, json.loads(body)
        raise AssertionError(f"no {topic} webhook in {self.topics()}")


@pytest.fixture
def receiver(standin: ShopifyStandIn) -> Receiver:
    receiving = Receiver()
    standin.configure_webhooks(HOOK_URL, SECRET, sender=asgi_webhook_sender(receiving.app))
    return receiving


async def test_product_changes_send_signed_webhooks(
    standin: ShopifyStandIn, receiver: Receiver
) -> None:
    product = standin.add_product(
        title="Water bottle",
        price="12.5",
        product_type="Accessories",
        image_url="https://cdn.example/bottle.png",
        inventory=5,
    )
    standin.update_product(product.id, title="Steel water bottle", price="13.00")
    standin.set_inventory(product.variants[0].gid, 2)
    standin.archive_product(product.gid)
    standin.delete_product(product.id)
    await standin.drain_webhooks()

    assert receiver.topics() == [
        "products/create",
        "products/update",
        "inventory_levels/update",
        "products/update",
        "products/delete",
    ]
    ids = set()
    for headers, body in receiver.received:
        assert verify(body, headers["x-shopify-hmac-sha256"], [SECRET])
        assert headers["x-shopify-shop-domain"] == DOMAIN
        assert headers["x-shopify-api-version"] == API_VERSION
        assert headers["x-shopify-triggered-at"].endswith("Z")
        ids.add(headers["x-shopify-webhook-id"])
    assert len(ids) == 5

    created = json.loads(receiver.received[0][1])
    updated = json.loads(receiver.received[1][1])
    assert updated["id"] == product.id
    assert updated["admin_graphql_api_id"] == product.gid
    assert updated["title"] == "Steel water bottle"
    assert updated["status"] == "active"
    assert updated["product_type"] == "Accessories"
    assert updated["image"]["src"] == "https://cdn.example/bottle.png"
    assert updated["updated_at"] > created["updated_at"]
    variant = updated["variants"][0]
    assert variant["price"] == "13.00"
    assert variant["inventory_quantity"] == 5
    assert variant["admin_graphql_api_id"] == product.variants[0].gid
    assert variant["inventory_item_id"] == product.variants[0].inventory_item_id

    _, level = receiver.last("inventory_levels/update")
    assert level["inventory_item_id"] == product.variants[0].inventory_item_id
    assert level["available"] == 2
    assert isinstance(level["location_id"], int)
    _, archived = receiver.last("products/update")
    assert archived["status"] == "archived"
    _, deleted = receiver.last("products/delete")
    assert deleted == {"id": product.id}


async def test_order_webhooks_and_redelivery(standin: ShopifyStandIn, receiver: Receiver) -> None:
    variant = standin.add_product(title="Socks", inventory=9).variants[0]
    async with ShopifyClient(
        shop_domain=DOMAIN,
        access_token=TOKEN,
        api_version=API_VERSION,
        transport=httpx.ASGITransport(app=standin.build_app()),
        base_url=f"https://{DOMAIN}{standin.graphql_path}",
    ) as client:
        shipped = await client.create_order(
            tag="stepcoin-SHIP1", email=None, lines=[(variant.gid, 2)], shipping_address=SHIPPING
        )
        dropped = await client.create_order(
            tag="stepcoin-DROP1", email=None, lines=[(variant.gid, 1)], shipping_address=SHIPPING
        )
    standin.fulfill_order(shipped.id, "TRACK-42")
    standin.cancel_order(dropped.id, restock=True)
    await standin.drain_webhooks()

    assert receiver.topics() == [
        "products/create",
        "inventory_levels/update",  # orderCreate took stock
        "inventory_levels/update",
        "orders/fulfilled",
        "orders/cancelled",
        "inventory_levels/update",  # cancelled with restock
    ]
    _, fulfilled = receiver.last("orders/fulfilled")
    assert fulfilled["admin_graphql_api_id"] == shipped.id
    assert fulfilled["name"] == shipped.name
    assert fulfilled["tags"] == "stepcoin-SHIP1"
    assert fulfilled["fulfillment_status"] == "fulfilled"
    assert fulfilled["cancelled_at"] is None
    assert fulfilled["fulfillments"][0]["tracking_number"] == "TRACK-42"
    _, cancelled = receiver.last("orders/cancelled")
    assert cancelled["tags"] == "stepcoin-DROP1"
    assert cancelled["cancelled_at"] is not None
    assert cancelled["fulfillment_status"] is None
    assert variant.inventory_quantity == 7

    headers, body = receiver.received[3]
    outcome = await standin.deliver_again(headers["x-shopify-webhook-id"])
    assert outcome == 200
    again_headers, again_body = receiver.received[-1]
    assert again_body == body
    assert again_headers["x-shopify-webhook-id"] == headers["x-shopify-webhook-id"]
    assert again_headers["x-shopify-hmac-sha256"] == headers["x-shopify-hmac-sha256"]


async def test_no_webhooks_without_a_target(standin: ShopifyStandIn) -> None:
    standin.add_product(title="Quiet")
    assert standin.deliveries == []


async def test_a_failing_target_is_recorded_not_raised(standin: ShopifyStandIn) -> None:
    async def down(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        raise httpx.ConnectError("refused")

    standin.configure_webhooks(HOOK_URL, SECRET, sender=down)
    standin.add_product(title="Nobody listens")
    deliveries = await standin.drain_webhooks()
    assert deliveries[0].attempts and str(deliveries[0].attempts[0]).startswith("error")


async def test_control_endpoints(standin: ShopifyStandIn, receiver: Receiver) -> None:
    transport = httpx.ASGITransport(app=standin.build_app())
    headers = {"X-Shopify-Access-Token": TOKEN}
    async with httpx.AsyncClient(transport=transport, base_url="http://standin") as http:
        assert (await http.get("/_standin/state")).status_code == 401
        made = await http.post(
            "/_standin/products",
            json={"title": "Band", "price": "39.00", "inventory": 4},
            headers=headers,
        )
        assert made.status_code == 201
        variant_id = made.json()["variants"][0]["admin_graphql_api_id"]
        moved = await http.post(
            "/_standin/inventory", json={"variant_id": variant_id, "quantity": 1}, headers=headers
        )
        assert moved.json()["available"] == 1
        queued = await http.post(
            "/_standin/faults", json={"kind": "fail", "n": 1, "status": 502}, headers=headers
        )
        assert queued.status_code == 200
        failed = await http.post(
            standin.graphql_path, json={"query": "{ shop { name } }"}, headers=headers
        )
        assert failed.status_code == 502
        missing = await http.post(
            "/_standin/orders/123/fulfill", json={"tracking_number": "X"}, headers=headers
        )
        assert missing.status_code == 404
        state = (await http.get("/_standin/state", headers=headers)).json()
    assert state["products"][0]["variants"][0]["inventory_quantity"] == 1
    assert state["calls"] == 1
    await standin.drain_webhooks()
    assert receiver.topics() == ["products/create", "inventory_levels/update"]


async def test_bad_requests_are_answered_like_shopify(standin: ShopifyStandIn) -> None:
    transport = httpx.ASGITransport(app=standin.build_app())
    headers = {"X-Shopify-Access-Token": TOKEN}
    async with httpx.AsyncClient(transport=transport, base_url="http://standin") as http:
        no_query = await http.post(standin.graphql_path, content=b"{}", headers=headers)
        assert no_query.status_code == 400
        wrong_version = await http.post(
            "/admin/api/1999-01/graphql.json", json={"query": "{shop{name}}"}, headers=headers
        )
        assert wrong_version.status_code == 404
        no_first = await http.post(
            standin.graphql_path,
            json={"query": "{ products { nodes { id } } }"},
            headers=headers,
        )
        assert "first or last" in no_first.json()["errors"][0]["message"]


# -- over real HTTP --------------------------------------------------------------------------------


@pytest.fixture
def standalone_server() -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shopify_standin",
            "--port",
            str(port),
            "--token",
            TOKEN,
            "--demo",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise AssertionError(process.stderr.read().decode() if process.stderr else "died")
            try:
                httpx.get(base + "/", timeout=0.5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


@pytest.mark.slow
async def test_standalone_server_answers_over_http(standalone_server: str) -> None:
    async with ShopifyClient(
        shop_domain="stepcoin-standin.myshopify.com",
        access_token=TOKEN,
        api_version="2025-01",
        base_url=f"{standalone_server}/admin/api/2025-01/graphql.json",
    ) as client:
        products = [p async for p in client.iter_products(page_size=4)]
    assert len(products) == 6
    assert {p.category for p in products} >= {"Footwear", "Electronics", "Gift cards"}


@pytest.mark.slow
async def test_serve_in_thread_with_a_real_timeout(standin: ShopifyStandIn) -> None:
    standin.add_product(title="Slow thing")
    standin.delay_next(1, 0.5)
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    with serve_in_thread(standin) as base:
        async with ShopifyClient(
            shop_domain=DOMAIN,
            access_token=TOKEN,
            api_version=API_VERSION,
            base_url=standin.endpoint(base),
            timeout=0.1,
            sleep=record,
        ) as client:
            products = [p async for p in client.iter_products()]
    assert [p.title for p in products] == ["Slow thing"]
    assert len(sleeps) == 1  # one read timeout, then an answer

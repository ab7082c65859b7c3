"""A stand-in shop and a client wired to it in-process; sleeps are recorded, never waited."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from shopify_standin import ShopifyStandIn
from stepcoin.shop.shopify import ShopifyClient

TOKEN = "shpat_test_token"
DOMAIN = "stepcoin-test.myshopify.com"
API_VERSION = "2025-01"


class RecordedSleeps(list[float]):
    """An injectable sleep that remembers what it was asked to wait."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


@pytest.fixture
def standin() -> ShopifyStandIn:
    return ShopifyStandIn(access_token=TOKEN, shop_domain=DOMAIN, api_version=API_VERSION)


@pytest.fixture
def make_client(standin: ShopifyStandIn, sleeps: RecordedSleeps) -> Callable[..., ShopifyClient]:
    def make(**overrides: Any) -> ShopifyClient:
        options: dict[str, Any] = {
            "shop_domain": DOMAIN,
            "access_token": TOKEN,
            "api_version": API_VERSION,
            "transport": httpx.ASGITransport(app=standin.build_app()),
            "base_url": f"https://{DOMAIN}{standin.graphql_path}",
            "sleep": sleeps,
            "rng": random.Random(7),
        }
        options.update(overrides)
        return ShopifyClient(**options)

    return make


@pytest.fixture
async def client(make_client: Callable[..., ShopifyClient]) -> AsyncIterator[ShopifyClient]:
    async with make_client() as shopify:
        yield shopify


SHIPPING = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical Lane",
    "line2": None,
    "city": "London",
    "region": "LND",
    "postal_code": "N1 9GU",
    "country": "gb",
    "phone": "+442071234567",
}

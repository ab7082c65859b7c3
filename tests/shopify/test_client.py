"""The Shopify client against the stand-in (and, for transport faults, a mock transport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest

from shopify_standin import ShopifyStandIn, VariantSpec, demo_catalogue
from stepcoin.config import Settings
from stepcoin.shop.shopify import (
    ORDER_SEARCH_SETTLE_SECONDS,
    ShopifyClient,
    ShopifyError,
    ShopifyUnavailable,
)
from tests.shopify.conftest import API_VERSION, DOMAIN, SHIPPING, TOKEN, RecordedSleeps

# -- catalogue -------------------------------------------------------------------------------


async def test_pagination_returns_every_product_exactly_once(
    standin: ShopifyStandIn, client: ShopifyClient
) -> None:
    made = [
        standin.add_product(title=f"Reward {n}", price=f"{n}.50", inventory=n) for n in range(7)
    ]
    standin.add_product(title="Draft thing", status="DRAFT")
    archived = standin.add_product(title="Old thing")
    standin.archive_product(archived.id)
    many = standin.add_product(
        title="Shoes in many sizes",
        variants=[VariantSpec(f"EU {36 + n}", "80.00", f"SHOE-{n}", n) for n in range(7)],
    )

    seen = [p async for p in client.iter_products(page_size=3)]

    ids = [p.id for p in seen]
    assert len(ids) == len(set(ids)) == 10
    assert set(ids) == {p.gid for p in standin.products}
    assert {p.status for p in seen} == {"ACTIVE", "DRAFT", "ARCHIVED"}
    assert standin.operations["StepCoinProducts"] == 4  # 3 + 3 + 3 + 1
    big = next(p for p in seen if p.id == many.gid)
    assert [v.title for v in big.variants] == [f"EU {36 + n}" for n in range(7)]
    assert standin.operations["StepCoinProductVariants"] == 1
    first = next(p for p in seen if p.id == made[3].gid)
    variant = first.variants[0]
    assert variant.price == Decimal("3.50")
    assert variant.inventory_quantity == 3
    assert variant.inventory_item_id == made[3].variants[0].inventory_item_gid
    assert variant.id.startswith("gid://shopify/ProductVariant/")


async def test_demo_catalogue_reads_whole_with_default_page_size(
    standin: ShopifyStandIn, client: ShopifyClient
) -> None:
    demo_catalogue(standin)
    products = [p async for p in client.iter_products()]
    assert len(products) == 6
    shoes = next(p for p in products if p.title == "Trail Runner Shoes")
    assert shoes.category == "Footwear"
    assert shoes.image_url and shoes.image_url.startswith("data:image/svg+xml")
    assert shoes.description == "Light, grippy shoes for the next ten thousand steps."
    assert len(shoes.variants) == 3
    assert all(p.updated_at.tzinfo is not None for p in products)


async def test_get_product(standin: ShopifyStandIn, client: ShopifyClient) -> None:
    product = standin.add_product(title="Water bottle", price="24.50", product_type="Accessories")
    found = await client.get_product(product.gid)
    assert found is not None
    assert (found.title, found.category, found.variants[0].price) == (
        "Water bottle",
        "Accessories",
        Decimal("24.50"),
    )
    assert await client.get_product(str(product.id)) == found  # a bare number works too
    standin.delete_product(product.id)
    assert await client.get_product(product.gid) is None


# -- orders ----------------------------------------------------------------------------------


async def test_create_order_is_idempotent_by_tag(
    standin: ShopifyStandIn, client: ShopifyClient
) -> None:
    product = standin.add_product(title="Socks", price="14.00", inventory=10)
    variant = product.variants[0]
    lines = [(variant.gid, 2)]

    first = await client.create_order(
        tag="stepcoin-AB12CD", email="ada@example.com", lines=lines, shipping_address=SHIPPING
    )
    again = await client.create_order(
        tag="stepcoin-AB12CD", email="ada@example.com", lines=lines, shipping_address=SHIPPING
    )

    assert again == first
    assert first.name == "#1001"
    assert len(standin.orders_with_tag("stepcoin-AB12CD")) == 1
    assert standin.order_create_calls["stepcoin-AB12CD"] == 1
    order = standin.order(first.id)
    assert order.financial_status == "PAID"
    assert order.email == "ada@example.com"
    assert order.shipping_address == {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "address1": "12 Analytical Lane",
        "city": "London",
        "provinceCode": "LND",
        "zip": "N1 9GU",
        "countryCode": "GB",
        "phone": "+442071234567",
    }
    assert variant.inventory_quantity == 8  # Shopify's stock follows the sale


async def test_create_order_after_an_ambiguous_failure_checks_before_sending_again(
    standin: ShopifyStandIn, client: ShopifyClient, sleeps: RecordedSleeps
) -> None:
    variant = standin.add_product(title="Band", inventory=5).variants[0]
    # orderCreate goes through, but its answer is lost: a 503 after the work was done.
    standin.fail_next(1, 503, after_execute=True, when="orderCreate")

    ref = await client.create_order(
        tag="stepcoin-ZZ99", email=None, lines=[(variant.gid, 1)], shipping_address=SHIPPING
    )

    assert len(standin.orders_with_tag("stepcoin-ZZ99")) == 1
    assert standin.order_create_calls["stepcoin-ZZ99"] == 1
    assert standin.order(ref.id).tags == ["stepcoin-ZZ99"]
    assert sleeps == [ORDER_SEARCH_SETTLE_SECONDS]
    assert standin.operations["StepCoinOrdersByTag"] == 2  # before, and after the lost answer
    assert variant.inventory_quantity == 4


async def test_get_order_follows_fulfilment_and_cancellation(
    standin: ShopifyStandIn, client: ShopifyClient
) -> None:
    variant = standin.add_product(title="Headphones", inventory=3).variants[0]
    ref = await client.create_order(
        tag="stepcoin-FUL1", email=None, lines=[(variant.gid, 1)], shipping_address=SHIPPING
    )

    before = await client.get_order(ref.id)
    assert before is not None
    assert (before.fulfillment_status, before.tracking_numbers, before.cancelled_at) == (
        "UNFULFILLED",
        (),
        None,
    )

    standin.fulfill_order(ref.id, "TRACK-123")
    after = await client.get_order(ref.id)
    assert after is not None
    assert after.fulfillment_status == "FULFILLED"
    assert after.tracking_numbers == ("TRACK-123",)
    assert after.updated_at > before.updated_at
    assert after.name == ref.name

    other = await client.create_order(
        tag="stepcoin-CAN1", email=None, lines=[(variant.gid, 1)], shipping_address=SHIPPING
    )
    standin.cancel_order(other.id)
    cancelled = await client.get_order(other.id)
    assert cancelled is not None and cancelled.cancelled_at is not None
    assert await client.get_order("gid://shopify/Order/1") is None


async def test_cancel_order_restocks_once(standin: ShopifyStandIn, client: ShopifyClient) -> None:
    variant = standin.add_product(title="Bottle", inventory=4).variants[0]
    ref = await client.create_order(
        tag="stepcoin-CX1", email=None, lines=[(variant.gid, 3)], shipping_address=SHIPPING
    )
    assert variant.inventory_quantity == 1

    state = await client.cancel_order(ref.id)
    again = await client.cancel_order(ref.id)

    assert state.cancelled_at is not None and again.cancelled_at == state.cancelled_at
    assert standin.order_cancel_calls[ref.id] == 1
    assert variant.inventory_quantity == 4


async def test_user_errors_are_permanent(
    standin: ShopifyStandIn, client: ShopifyClient, sleeps: RecordedSleeps
) -> None:
    with pytest.raises(ShopifyError) as caught:
        await client.create_order(
            tag="stepcoin-BAD1",
            email=None,
            lines=[("gid://shopify/ProductVariant/999", 1)],
            shipping_address=SHIPPING,
        )
    assert not isinstance(caught.value, ShopifyUnavailable)
    assert "Variant does not exist" in str(caught.value)
    assert sleeps == []
    assert standin.orders == []


# -- retries ---------------------------------------------------------------------------------


async def test_429_waits_as_long_as_retry_after_says(
    standin: ShopifyStandIn, client: ShopifyClient, sleeps: RecordedSleeps
) -> None:
    standin.add_product(title="Thing")
    standin.throttle_next(1, retry_after=3.5)
    products = [p async for p in client.iter_products()]
    assert len(products) == 1
    assert sleeps == [3.5]
    assert standin.calls == 2


async def test_throttled_query_cost_waits_for_the_bucket_to_refill(
    standin: ShopifyStandIn, client: ShopifyClient, sleeps: RecordedSleeps
) -> None:
    product = standin.add_product(title="Thing")
    standin.throttle_next(1, graphql=True, currently_available=4.0)
    assert await client.get_product(product.gid) is not None
    cost = standin.throttled[0]["extensions"]["cost"]
    expected = (cost["requestedQueryCost"] - 4.0) / cost["throttleStatus"]["restoreRate"]
    assert expected > 0
    assert len(sleeps) == 1 and sleeps[0] == pytest.approx(expected)
    assert client.throttle_status is not None
    assert client.throttle_status["maximumAvailable"] == 1000.0


async def test_503_twice_then_success(
    standin: ShopifyStandIn, client: ShopifyClient, sleeps: RecordedSleeps
) -> None:
    standin.add_product(title="Thing")
    standin.fail_next(2, 503)
    assert len([p async for p in client.iter_products()]) == 1
    assert standin.calls == 3
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0  # 0.5 * 2^n, jittered


async def test_503_on_every_try_gives_unavailable(
    standin: ShopifyStandIn, make_client: Callable[..., ShopifyClient], sleeps: RecordedSleeps
) -> None:
    standin.fail_next(10, 503, retry_after=1)
    async with make_client(max_retries=2) as client:
        with pytest.raises(ShopifyUnavailable) as caught:
            await client.get_product("gid://shopify/Product/1")
    assert caught.value.status_code == 503
    assert standin.calls == 3
    assert sleeps == [1.0, 1.0]


async def test_permanent_4xx_is_not_retried(
    standin: ShopifyStandIn, client: ShopifyClient, sleeps: RecordedSleeps
) -> None:
    standin.fail_next(1, 422)
    with pytest.raises(ShopifyError) as caught:
        await client.get_product("gid://shopify/Product/1")
    assert not isinstance(caught.value, ShopifyUnavailable)
    assert caught.value.status_code == 422
    assert standin.calls == 1
    assert sleeps == []


async def test_wrong_token_is_refused(
    standin: ShopifyStandIn, make_client: Callable[..., ShopifyClient], sleeps: RecordedSleeps
) -> None:
    async with make_client(access_token="shpat_wrong") as client:
        with pytest.raises(ShopifyError) as caught:
            await client.get_product("gid://shopify/Product/1")
    assert caught.value.status_code == 401
    assert not isinstance(caught.value, ShopifyUnavailable)
    assert standin.calls == 1 and sleeps == []


async def test_unknown_field_fails_like_on_shopify(
    standin: ShopifyStandIn, client: ShopifyClient
) -> None:
    with pytest.raises(ShopifyError) as caught:
        await client.execute("query { products(first: 1) { nodes { id colour } } }")
    assert "colour" in str(caught.value)
    assert caught.value.errors[0]["extensions"]["code"] == "undefinedField"
    with pytest.raises(ShopifyError, match="'qty' is not defined"):
        await client.execute(
            "mutation($o: OrderCreateOrderInput!) { orderCreate(order: $o) { order { id } } }",
            {"o": {"lineItems": [{"variantId": "gid://shopify/ProductVariant/1", "qty": 1}]}},
        )


async def test_a_query_above_the_cost_limit_is_refused(client: ShopifyClient) -> None:
    with pytest.raises(ShopifyError) as caught:
        await client.execute(
            "{ products(first: 250) { nodes { variants(first: 250) { nodes { id } } } } }"
        )
    assert caught.value.errors[0]["extensions"]["code"] == "MAX_COST_EXCEEDED"


# -- transport faults (mock transport) ---------------------------------------------------------


def _mock_client(
    handler: Callable[[httpx.Request], httpx.Response], sleeps: RecordedSleeps, **options: object
) -> ShopifyClient:
    return ShopifyClient(
        shop_domain=DOMAIN,
        access_token=TOKEN,
        api_version=API_VERSION,
        transport=httpx.MockTransport(handler),
        sleep=sleeps,
        **options,  # type: ignore[arg-type]
    )


def _ok(data: dict[str, object]) -> httpx.Response:
    return httpx.Response(200, json={"data": data})


async def test_redirect_to_another_host_is_an_error_and_not_followed(
    sleeps: RecordedSleeps,
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "https://evil.example/steal"})

    async with _mock_client(handler, sleeps) as client:
        with pytest.raises(ShopifyError, match="redirect") as caught:
            await client.get_product("gid://shopify/Product/1")
    assert caught.value.status_code == 302
    assert not isinstance(caught.value, ShopifyUnavailable)
    assert [r.url.host for r in seen] == [DOMAIN]
    assert seen[0].url.path == f"/admin/api/{API_VERSION}/graphql.json"
    assert seen[0].headers["X-Shopify-Access-Token"] == TOKEN
    assert sleeps == []


async def test_timeouts_and_connection_errors_are_retried(sleeps: RecordedSleeps) -> None:
    attempts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(json.loads(request.content)["query"][:20])
        if len(attempts) == 1:
            raise httpx.ConnectError("refused", request=request)
        if len(attempts) == 2:
            raise httpx.ReadTimeout("slow", request=request)
        return _ok({"product": None})

    async with _mock_client(handler, sleeps) as client:
        assert await client.get_product("gid://shopify/Product/1") is None
    assert len(attempts) == 3 and len(sleeps) == 2


async def test_create_order_never_resends_blindly_after_timeouts(sleeps: RecordedSleeps) -> None:
    operations: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        query = json.loads(request.content)["query"]
        if "orderCreate" in query:
            operations.append("create")
            raise httpx.ReadTimeout("the answer got lost", request=request)
        operations.append("lookup")
        return _ok({"orders": {"nodes": []}})

    async with _mock_client(handler, sleeps, max_retries=2) as client:
        with pytest.raises(ShopifyUnavailable):
            await client.create_order(
                tag="stepcoin-T1",
                email=None,
                lines=[("gid://shopify/ProductVariant/1", 1)],
                shipping_address=SHIPPING,
            )
    assert operations == ["lookup", "create"] * 3
    assert len(sleeps) == 2 and min(sleeps) >= ORDER_SEARCH_SETTLE_SECONDS


async def test_find_order_by_tag_matches_the_tag_exactly(sleeps: RecordedSleeps) -> None:
    queries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        queries.append(json.loads(request.content)["variables"]["query"])
        nodes = [
            {"id": "gid://shopify/Order/1", "name": "#1001", "tags": ["stepcoin-AB1X"]},
            {"id": "gid://shopify/Order/2", "name": "#1002", "tags": ["vip", "StepCoin-AB1"]},
        ]
        return _ok({"orders": {"nodes": nodes}})

    async with _mock_client(handler, sleeps) as client:
        found = await client.find_order_by_tag("stepcoin-AB1")
    assert found is not None and found.id == "gid://shopify/Order/2"
    assert queries == ["tag:'stepcoin-AB1'"]


# -- configuration -----------------------------------------------------------------------------


def test_plain_http_only_for_local_addresses_or_a_given_transport() -> None:
    common = {"shop_domain": DOMAIN, "access_token": TOKEN, "api_version": API_VERSION}
    with pytest.raises(ValueError, match="https"):
        ShopifyClient(**common, base_url="http://shop.example.com/graphql.json")  # type: ignore[arg-type]
    ShopifyClient(**common, base_url="http://127.0.0.1:8787/admin/api/2025-01/graphql.json")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shop_domain"):
        ShopifyClient(
            shop_domain="https://x.myshopify.com/", access_token=TOKEN, api_version=API_VERSION
        )
    with pytest.raises(ValueError, match="api_version"):
        ShopifyClient(shop_domain=DOMAIN, access_token=TOKEN, api_version="latest")


def test_from_settings() -> None:
    real = Settings(
        env="test",
        shopify_shop_domain="my-shop.myshopify.com",
        shopify_access_token="shpat_real",
        shopify_webhook_secrets=["s"],
        shopify_timeout_seconds=7,
    )
    client = ShopifyClient.from_settings(real)
    assert client.endpoint == "https://my-shop.myshopify.com/admin/api/2025-01/graphql.json"

    standin_settings = Settings(env="test")
    assert standin_settings.uses_shopify_standin
    with pytest.raises(ValueError, match="stand-in"):
        ShopifyClient.from_settings(standin_settings)
    local = ShopifyClient.from_settings(
        standin_settings, base_url="http://127.0.0.1:8787/admin/api/2025-01/graphql.json"
    )
    assert local.endpoint.startswith("http://127.0.0.1:8787/")

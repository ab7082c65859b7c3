"""The Shopify Admin GraphQL client: catalogue reads, idempotent order creation, order state.

Every call is a JSON POST of {query, variables} to the shop's graphql.json endpoint. Transient
trouble (HTTP 429, 5xx, timeouts, connection errors, a THROTTLED answer) is retried with
exponential backoff and jitter, waiting as long as Shopify asks (Retry-After, or the cost
bucket's refill time); anything else is a ShopifyError at once. Redirects are never followed,
so the access token never leaves the shop's host.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import logging
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from stepcoin.config import STANDIN_ACCESS_TOKEN, STANDIN_SHOP_DOMAIN, Settings

logger = logging.getLogger("stepcoin.shopify")

# Shopify refuses a single query whose requested cost exceeds 1,000 points. Products are read
# with their first few variants (a reward rarely has more); the rest are paged separately.
MAX_PRODUCTS_PER_PAGE = 50
VARIANTS_PER_PRODUCT = 5
VARIANTS_PER_PAGE = 100
# Orders are found by tag through Shopify's search index, which lags a write by a moment.
ORDER_SEARCH_SETTLE_SECONDS = 2.0

_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)
_API_VERSION = re.compile(r"^(?:\d{4}-\d{2}|unstable)$")

_VARIANT_FIELDS = """
fragment StepCoinVariant on ProductVariant {
  id
  title
  price
  sku
  inventoryQuantity
  inventoryItem { id }
}
"""

_PRODUCT_FIELDS = (
    """
fragment StepCoinProduct on Product {
  id
  title
  description
  productType
  status
  updatedAt
  featuredImage { url }
  variants(first: $variantsFirst) {
    pageInfo { hasNextPage endCursor }
    nodes { ...StepCoinVariant }
  }
}
"""
    + _VARIANT_FIELDS
)

PRODUCTS_QUERY = (
    """
query StepCoinProducts($first: Int!, $after: String, $variantsFirst: Int!) {
  products(first: $first, after: $after, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes { ...StepCoinProduct }
  }
}
"""
    + _PRODUCT_FIELDS
)

PRODUCT_QUERY = (
    """
query StepCoinProduct($id: ID!, $variantsFirst: Int!) {
  product(id: $id) { ...StepCoinProduct }
}
"""
    + _PRODUCT_FIELDS
)

PRODUCT_VARIANTS_QUERY = (
    """
query StepCoinProductVariants($id: ID!, $first: Int!, $after: String) {
  product(id: $id) {
    variants(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...StepCoinVariant }
    }
  }
}
"""
    + _VARIANT_FIELDS
)

ORDERS_BY_TAG_QUERY = """
query StepCoinOrdersByTag($query: String!) {
  orders(first: 5, query: $query) {
    nodes { id name tags }
  }
}
"""

ORDER_CREATE_MUTATION = """
mutation StepCoinOrderCreate($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) {
    order { id name }
    userErrors { field message }
  }
}
"""

ORDER_CANCEL_MUTATION = """
mutation StepCoinOrderCancel(
  $orderId: ID!
  $reason: OrderCancelReason!
  $refund: Boolean!
  $restock: Boolean!
  $notifyCustomer: Boolean
  $staffNote: String
) {
  orderCancel(
    orderId: $orderId
    reason: $reason
    refund: $refund
    restock: $restock
    notifyCustomer: $notifyCustomer
    staffNote: $staffNote
  ) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}
"""

ORDER_QUERY = """
query StepCoinOrder($id: ID!) {
  order(id: $id) {
    id
    name
    displayFulfillmentStatus
    cancelledAt
    updatedAt
    fulfillments(first: 10) {
      trackingInfo(first: 5) { number }
    }
  }
}
"""


@dataclass(frozen=True)
class ShopifyVariant:
    id: str
    title: str
    price: Decimal
    sku: str | None
    inventory_item_id: str | None
    inventory_quantity: int


@dataclass(frozen=True)
class ShopifyProduct:
    id: str
    title: str
    description: str
    image_url: str | None
    category: str | None
    status: str
    updated_at: datetime
    variants: tuple[ShopifyVariant, ...]


@dataclass(frozen=True)
class ShopifyOrderRef:
    id: str
    name: str


@dataclass(frozen=True)
class ShopifyOrderState:
    id: str
    name: str
    fulfillment_status: str | None
    cancelled_at: datetime | None
    tracking_numbers: tuple[str, ...]
    updated_at: datetime


class ShopifyError(Exception):
    """Shopify refused the call for good (userErrors, GraphQL errors, 4xx other than 429)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        errors: Sequence[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.errors: tuple[Any, ...] = tuple(errors or ())


class ShopifyUnavailable(ShopifyError):
    """Shopify stayed unreachable, overloaded or throttled through every retry; try later."""


class _Transient(Exception):
    """One failed attempt worth retrying.

    `outcome_unknown` marks failures after which the request may have been carried out
    (a read timeout, a 5xx): a non-idempotent mutation must not simply be sent again.
    """

    def __init__(
        self,
        message: str,
        *,
        wait: float | None = None,
        outcome_unknown: bool,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.wait = wait
        self.outcome_unknown = outcome_unknown
        self.status_code = status_code


class _OutcomeUnknown(ShopifyUnavailable):
    """A mutation's request failed in a way that leaves open whether Shopify applied it."""


def product_gid(product_id: int | str) -> str:
    """gid://shopify/Product/N for a numeric id (a gid passes through unchanged)."""
    return _gid("Product", product_id)


def order_gid(order_id: int | str) -> str:
    """gid://shopify/Order/N for a numeric id (a gid passes through unchanged)."""
    return _gid("Order", order_id)


def _gid(kind: str, value: int | str) -> str:
    text = str(value)
    return f"gid://shopify/{kind}/{text}" if text.isdigit() else text


class ShopifyClient:
    """An async client of one shop's GraphQL Admin API (use as an async context manager)."""

    def __init__(
        self,
        *,
        shop_domain: str,
        access_token: str,
        api_version: str,
        timeout: float = 10.0,
        max_retries: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        base_url: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_wait: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        domain = shop_domain.strip().lower()
        if not _HOSTNAME.match(domain):
            raise ValueError(
                "shop_domain must be a host name such as my-shop.myshopify.com, "
                f"not {shop_domain!r}"
            )
        if not _API_VERSION.match(api_version):
            raise ValueError(f"api_version must look like 2025-01, not {api_version!r}")
        if not access_token:
            raise ValueError("access_token is required")
        if timeout <= 0 or max_retries < 0:
            raise ValueError("timeout must be positive and max_retries not negative")
        endpoint = base_url or f"https://{domain}/admin/api/{api_version}/graphql.json"
        _check_endpoint(endpoint, transport_given=transport is not None)

        self.shop_domain = domain
        self.api_version = api_version
        self.endpoint = endpoint
        self._max_retries = max_retries
        self._sleep = sleep
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._max_wait = max_wait
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={
                "X-Shopify-Access-Token": access_token,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": "stepcoin-shopify-client/1",
            },
        )
        # The cost bucket as of the last answer: {"maximumAvailable", "currentlyAvailable",
        # "restoreRate"}; for metrics and logs.
        self.throttle_status: dict[str, float] | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        base_url: str | None = None,
        **options: Any,
    ) -> ShopifyClient:
        """The client of the configured shop, or of the local stand-in when none is configured.

        With no shop configured (settings.uses_shopify_standin) the stand-in's address
        (base_url) or an in-process transport must be given.
        """
        if settings.uses_shopify_standin:
            if base_url is None and transport is None:
                raise ValueError(
                    "no Shopify shop is configured (STEPCOIN_SHOPIFY_SHOP_DOMAIN and "
                    "STEPCOIN_SHOPIFY_ACCESS_TOKEN): pass the stand-in's base_url or transport"
                )
            shop_domain = settings.shopify_shop_domain or STANDIN_SHOP_DOMAIN
            token = (
                settings.shopify_access_token.get_secret_value()
                if settings.shopify_access_token
                else STANDIN_ACCESS_TOKEN
            )
        else:
            assert settings.shopify_shop_domain and settings.shopify_access_token
            shop_domain = settings.shopify_shop_domain
            token = settings.shopify_access_token.get_secret_value()
        return cls(
            shop_domain=shop_domain,
            access_token=token,
            api_version=settings.shopify_api_version,
            timeout=settings.shopify_timeout_seconds,
            transport=transport,
            base_url=base_url,
            **options,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- catalogue ---------------------------------------------------------------------------

    async def iter_products(self, *, page_size: int = 50) -> AsyncIterator[ShopifyProduct]:
        """Every product of the shop, whatever its status, each exactly once (cursor pages)."""
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        first = min(page_size, MAX_PRODUCTS_PER_PAGE)
        after: str | None = None
        while True:
            data = await self.execute(
                PRODUCTS_QUERY,
                {"first": first, "after": after, "variantsFirst": VARIANTS_PER_PRODUCT},
            )
            try:
                connection = data["products"]
                nodes = list(connection["nodes"])
                has_next = bool(connection["pageInfo"]["hasNextPage"])
                after = connection["pageInfo"]["endCursor"]
            except (KeyError, TypeError) as exc:
                raise ShopifyError(f"unexpected products answer: {exc!r}") from exc
            for node in nodes:
                yield await self._product(node)
            if not has_next:
                return
            if not after:
                raise ShopifyError("products page says hasNextPage but gives no endCursor")

    async def get_product(self, product_id: str) -> ShopifyProduct | None:
        """One product by gid (any status), or None when Shopify has no such product."""
        data = await self.execute(
            PRODUCT_QUERY,
            {"id": product_gid(product_id), "variantsFirst": VARIANTS_PER_PAGE},
        )
        node = data.get("product")
        return None if node is None else await self._product(node)

    async def _product(self, node: Mapping[str, Any]) -> ShopifyProduct:
        try:
            variants_connection = node["variants"]
            variant_nodes = list(variants_connection["nodes"])
            has_next = bool(variants_connection["pageInfo"]["hasNextPage"])
            cursor = variants_connection["pageInfo"]["endCursor"]
            image = node.get("featuredImage") or {}
            product_id = str(node["id"])
            product = ShopifyProduct(
                id=product_id,
                title=str(node["title"]),
                description=str(node.get("description") or ""),
                image_url=image.get("url") or None,
                category=node.get("productType") or None,
                status=str(node["status"]),
                updated_at=_parse_datetime(node["updatedAt"]),
                variants=(),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ShopifyError(f"unexpected product answer: {exc!r}") from exc
        while has_next:
            data = await self.execute(
                PRODUCT_VARIANTS_QUERY,
                {"id": product_id, "first": VARIANTS_PER_PAGE, "after": cursor},
            )
            try:
                page = data["product"]["variants"]
                variant_nodes.extend(page["nodes"])
                has_next = bool(page["pageInfo"]["hasNextPage"]) and bool(
                    page["pageInfo"]["endCursor"]
                )
                cursor = page["pageInfo"]["endCursor"]
            except (KeyError, TypeError) as exc:
                # The product vanished between two pages: what was read so far stands.
                logger.warning("variants of %s stopped mid-way: %r", product_id, exc)
                break
        return dataclasses.replace(product, variants=tuple(_variant(v) for v in variant_nodes))

    # -- orders ------------------------------------------------------------------------------

    async def find_order_by_tag(self, tag: str) -> ShopifyOrderRef | None:
        """The order carrying exactly this tag, if Shopify's order search knows one."""
        data = await self.execute(ORDERS_BY_TAG_QUERY, {"query": f"tag:{_search_quote(tag)}"})
        try:
            nodes = data["orders"]["nodes"]
            wanted = tag.casefold()
            for node in nodes:
                if any(str(t).casefold() == wanted for t in node.get("tags") or ()):
                    return ShopifyOrderRef(id=str(node["id"]), name=str(node["name"]))
        except (KeyError, TypeError) as exc:
            raise ShopifyError(f"unexpected orders answer: {exc!r}") from exc
        return None

    async def create_order(
        self,
        *,
        tag: str,
        email: str | None,
        lines: Sequence[tuple[str, int]],
        shipping_address: Mapping[str, str | None],
    ) -> ShopifyOrderRef:
        """Create the paid order tagged `tag`, or return the one a previous attempt created.

        orderCreate has no idempotency key, so the tag is the key: it is looked up first, and
        after a failure that may have created the order anyway (a timeout, a 5xx) it is
        looked up again instead of sending the mutation blindly a second time.
        """
        if not tag or not lines:
            raise ValueError("an order needs a tag and at least one line")
        order_input: dict[str, Any] = {
            "lineItems": [{"variantId": variant, "quantity": qty} for variant, qty in lines],
            "tags": [tag],
            "financialStatus": "PAID",
            "sourceIdentifier": tag,
            "note": "Paid in StepCoin coins.",
            "shippingAddress": _mailing_address(shipping_address),
        }
        if email:
            order_input["email"] = email
        options = {
            "sendReceipt": False,
            "sendFulfillmentReceipt": False,
            "inventoryBehaviour": "DECREMENT_IGNORING_POLICY",
        }
        attempt = 0
        while True:
            existing = await self.find_order_by_tag(tag)
            if existing is not None:
                logger.info("shopify order for %s already exists: %s", tag, existing.id)
                return existing
            try:
                data = await self.execute(
                    ORDER_CREATE_MUTATION,
                    {"order": order_input, "options": options},
                    retry_outcome_unknown=False,
                )
            except _OutcomeUnknown as exc:
                if attempt >= self._max_retries:
                    raise ShopifyUnavailable(
                        f"orderCreate for {tag} failed {attempt + 1} times: {exc}",
                        status_code=exc.status_code,
                    ) from exc
                wait = max(self._backoff(attempt), ORDER_SEARCH_SETTLE_SECONDS)
                logger.warning(
                    "orderCreate for %s may or may not have happened (%s); checking again in %.2fs",
                    tag,
                    exc,
                    wait,
                )
                await self._sleep(wait)
                attempt += 1
                continue
            return _created_order(tag, data)

    async def cancel_order(
        self,
        order_id: str,
        *,
        reason: str = "OTHER",
        restock: bool = True,
        staff_note: str | None = "Cancelled in StepCoin; coins refunded there.",
    ) -> ShopifyOrderState:
        """Cancel an order in Shopify (stock back, no money refund: it was paid in coins).

        Idempotent: an order already cancelled is left alone. Shopify cancels in a background
        job, so the state returned may still show cancelled_at unset for a moment.
        """
        state = await self.get_order(order_id)
        if state is None:
            raise ShopifyError(f"no Shopify order {order_id}")
        if state.cancelled_at is not None:
            return state
        data = await self.execute(
            ORDER_CANCEL_MUTATION,
            {
                "orderId": state.id,
                "reason": reason,
                "refund": False,
                "restock": restock,
                "notifyCustomer": False,
                "staffNote": staff_note,
            },
        )
        try:
            errors = data["orderCancel"]["orderCancelUserErrors"] or []
        except (KeyError, TypeError) as exc:
            raise ShopifyError(f"unexpected orderCancel answer: {exc!r}") from exc
        if errors:
            # A retried request whose first try went through is refused as already cancelled.
            again = await self.get_order(order_id)
            if again is not None and again.cancelled_at is not None:
                return again
            text = "; ".join(str(e.get("message")) for e in errors)
            raise ShopifyError(f"orderCancel for {order_id} refused: {text}", errors=errors)
        logger.info("cancelled shopify order %s", state.id)
        return await self.get_order(order_id) or state

    async def get_order(self, order_id: str) -> ShopifyOrderState | None:
        """An order's fulfilment and cancellation state, or None when it does not exist."""
        data = await self.execute(ORDER_QUERY, {"id": order_gid(order_id)})
        node = data.get("order")
        if node is None:
            return None
        try:
            tracking: list[str] = []
            for fulfillment in node.get("fulfillments") or ():
                for info in fulfillment.get("trackingInfo") or ():
                    number = info.get("number")
                    if number and number not in tracking:
                        tracking.append(str(number))
            cancelled = node.get("cancelledAt")
            return ShopifyOrderState(
                id=str(node["id"]),
                name=str(node["name"]),
                fulfillment_status=node.get("displayFulfillmentStatus"),
                cancelled_at=_parse_datetime(cancelled) if cancelled else None,
                tracking_numbers=tuple(tracking),
                updated_at=_parse_datetime(node["updatedAt"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ShopifyError(f"unexpected order answer: {exc!r}") from exc

    # -- transport ---------------------------------------------------------------------------

    async def execute(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        retry_outcome_unknown: bool = True,
    ) -> dict[str, Any]:
        """Run one GraphQL operation and return its `data`, retrying transient failures.

        With retry_outcome_unknown=False a failure that may have been applied (a timeout
        after sending, a 5xx) is raised at once, for the caller to check before repeating.
        """
        payload = {"query": query, "variables": dict(variables or {})}
        attempt = 0
        while True:
            try:
                return await self._attempt(payload)
            except _Transient as exc:
                if exc.outcome_unknown and not retry_outcome_unknown:
                    raise _OutcomeUnknown(str(exc), status_code=exc.status_code) from exc
                if attempt >= self._max_retries:
                    raise ShopifyUnavailable(
                        f"Shopify unavailable after {attempt + 1} attempts: {exc}",
                        status_code=exc.status_code,
                    ) from exc
                wait = exc.wait if exc.wait is not None else self._backoff(attempt)
                wait = min(max(wait, 0.0), self._max_wait)
                logger.warning(
                    "shopify call failed (%s); retry %d/%d in %.2fs",
                    exc,
                    attempt + 1,
                    self._max_retries,
                    wait,
                )
                await self._sleep(wait)
                attempt += 1

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._backoff_cap, self._backoff_base * (2.0**attempt))
        return ceiling * (0.5 + 0.5 * self._rng.random())

    async def _attempt(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.post(self.endpoint, json=payload)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached Shopify: safe to send again.
            raise _Transient(f"connection failed: {exc!r}", outcome_unknown=False) from exc
        except httpx.TimeoutException as exc:
            raise _Transient(f"timed out: {exc!r}", outcome_unknown=True) from exc
        except httpx.TransportError as exc:
            raise _Transient(f"transport error: {exc!r}", outcome_unknown=True) from exc

        status = response.status_code
        if 300 <= status < 400:
            raise ShopifyError(
                f"Shopify answered {status} redirecting to "
                f"{response.headers.get('location')!r}; redirects are never followed",
                status_code=status,
            )
        body = _json_or_none(response)
        if status == 429:
            wait = _retry_after(response.headers.get("retry-after"))
            if wait is None and body is not None:
                wait = _throttle_wait(body)
            raise _Transient(
                "throttled (429)", wait=wait, outcome_unknown=False, status_code=status
            )
        if status >= 500:
            raise _Transient(
                f"server error {status}",
                wait=_retry_after(response.headers.get("retry-after")),
                outcome_unknown=True,
                status_code=status,
            )
        if status >= 400:
            raise ShopifyError(
                f"Shopify refused the call with {status}: {_error_text(body, response)}",
                status_code=status,
                errors=_error_list(body),
            )
        if not isinstance(body, dict):
            raise _Transient(
                f"answer {status} is not a JSON object", outcome_unknown=True, status_code=status
            )
        self._remember_cost(body)
        errors = body.get("errors")
        if errors:
            codes = {_error_code(e) for e in _error_list(body)}
            if "THROTTLED" in codes:
                raise _Transient(
                    "throttled (query cost)",
                    wait=_throttle_wait(body),
                    outcome_unknown=False,
                    status_code=status,
                )
            if "INTERNAL_SERVER_ERROR" in codes:
                raise _Transient("Shopify internal error", outcome_unknown=True, status_code=status)
            raise ShopifyError(
                f"GraphQL errors: {_error_text(body, response)}",
                status_code=status,
                errors=_error_list(body),
            )
        data = body.get("data")
        if not isinstance(data, dict):
            raise ShopifyError("GraphQL answer without data", status_code=status)
        return data

    def _remember_cost(self, body: Mapping[str, Any]) -> None:
        cost = _cost(body)
        status = cost.get("throttleStatus") if cost else None
        if isinstance(status, dict):
            self.throttle_status = {
                k: float(v) for k, v in status.items() if isinstance(v, int | float)
            }


def _check_endpoint(endpoint: str, *, transport_given: bool) -> None:
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError(f"base_url has no host: {endpoint!r}")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and (transport_given or host in _LOCAL_HOSTS):
        return
    raise ValueError(
        f"base_url must be https (plain http only for 127.0.0.1/localhost): {endpoint!r}"
    )


def _search_quote(value: str) -> str:
    """A value for Shopify's search syntax, single-quoted with quotes and backslashes escaped."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _mailing_address(address: Mapping[str, str | None]) -> dict[str, str]:
    """Our shipping address (name, line1, ...) as Shopify's MailingAddressInput."""
    name = (address.get("name") or "").strip()
    first, _, last = name.rpartition(" ")
    mapped: dict[str, str | None] = {
        "firstName": first.strip() or None,
        "lastName": last or None,
        "address1": address.get("line1"),
        "address2": address.get("line2"),
        "city": address.get("city"),
        "provinceCode": address.get("region"),
        "zip": address.get("postal_code"),
        "countryCode": (address.get("country") or "").upper() or None,
        "phone": address.get("phone"),
    }
    return {key: value for key, value in mapped.items() if value}


def _created_order(tag: str, data: Mapping[str, Any]) -> ShopifyOrderRef:
    try:
        payload = data["orderCreate"]
        user_errors = payload.get("userErrors") or []
        if user_errors:
            text = "; ".join(
                f"{'.'.join(e.get('field') or []) or 'order'}: {e.get('message')}"
                for e in user_errors
            )
            raise ShopifyError(f"orderCreate for {tag} refused: {text}", errors=user_errors)
        order = payload["order"]
        if order is None:
            raise ShopifyError(f"orderCreate for {tag} returned no order")
        ref = ShopifyOrderRef(id=str(order["id"]), name=str(order["name"]))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ShopifyError(f"unexpected orderCreate answer: {exc!r}") from exc
    logger.info("created shopify order %s (%s) for %s", ref.id, ref.name, tag)
    return ref


def _variant(node: Mapping[str, Any]) -> ShopifyVariant:
    try:
        item = node.get("inventoryItem") or {}
        return ShopifyVariant(
            id=str(node["id"]),
            title=str(node["title"]),
            price=Decimal(str(node["price"])),
            sku=node.get("sku") or None,
            inventory_item_id=item.get("id"),
            inventory_quantity=int(node.get("inventoryQuantity") or 0),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ShopifyError(f"unexpected variant answer: {exc!r}") from exc


def _parse_datetime(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _cost(body: Mapping[str, Any]) -> dict[str, Any] | None:
    extensions = body.get("extensions")
    cost = extensions.get("cost") if isinstance(extensions, dict) else None
    return cost if isinstance(cost, dict) else None


def _throttle_wait(body: Any) -> float | None:
    """Seconds until the cost bucket holds the requested cost again, from extensions.cost."""
    cost = _cost(body) if isinstance(body, dict) else None
    if not cost:
        return None
    status = cost.get("throttleStatus") or {}
    try:
        requested = float(cost["requestedQueryCost"])
        available = float(status["currentlyAvailable"])
        rate = float(status["restoreRate"])
    except (KeyError, TypeError, ValueError):
        return None
    if rate <= 0 or requested <= available:
        return None
    return (requested - available) / rate


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _error_list(body: Any) -> list[Any]:
    if not isinstance(body, dict):
        return []
    errors = body.get("errors")
    if isinstance(errors, list):
        return errors
    return [errors] if errors else []


def _error_code(error: Any) -> str | None:
    if isinstance(error, dict):
        extensions = error.get("extensions")
        if isinstance(extensions, dict) and extensions.get("code"):
            return str(extensions["code"])
    return None


def _error_text(body: Any, response: httpx.Response) -> str:
    errors = _error_list(body)
    if errors:
        parts = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
        return "; ".join(parts)[:500]
    return response.text[:200]

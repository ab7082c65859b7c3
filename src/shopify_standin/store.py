"""The stand-in shop: in-memory state, control methods, GraphQL execution, webhook queue."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from graphql import (
    GraphQLError,
    OperationType,
    execute,
    parse,
    validate,
)
from starlette.applications import Starlette
from starlette.requests import Request

from shopify_standin.admin_api import (
    MAX_QUERY_COST,
    MUTATION_COST,
    _actual_cost,
    _error_json,
    _operation,
    _OrderView,
    _requested_cost,
    _Root,
    _validation_code,
)
from shopify_standin.app import _routes
from shopify_standin.records import (
    StandInError,
    StandInFulfillment,
    StandInLineItem,
    StandInOrder,
    StandInProduct,
    StandInVariant,
    VariantSpec,
    _handle,
    _numeric_id,
    _utc_now,
)
from shopify_standin.schema import admin_schema
from shopify_standin.webhooks import (
    WebhookDelivery,
    WebhookSender,
    _inventory_payload,
    _order_payload,
    _product_payload,
    http_webhook_sender,
    sign,
)

logger = logging.getLogger("shopify_standin")

# Who the stand-in is unless told otherwise. StepCoin's settings know the same values (they are
# public, so a production StepCoin refuses them) and a test keeps the two in step.
DEFAULT_API_VERSION = "2025-01"
DEFAULT_SHOP_DOMAIN = "stepcoin-standin.myshopify.com"
DEFAULT_ACCESS_TOKEN = "shpat_stepcoin_standin"


@dataclass
class _Fault:
    kind: str  # "status" | "throttle" | "throttle_graphql" | "delay"
    status: int = 503
    retry_after: float | None = None
    seconds: float = 0.0
    after_execute: bool = False
    currently_available: float = 0.0
    when: str | None = None  # only a call whose query text contains this


class _CostBucket:
    """Shopify's leaky bucket of query-cost points."""

    def __init__(
        self, maximum: float, restore_rate: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.maximum = maximum
        self.restore_rate = restore_rate
        self._clock = clock
        self._level = maximum
        self._at = clock()

    def available(self) -> float:
        now = self._clock()
        self._level = min(self.maximum, self._level + (now - self._at) * self.restore_rate)
        self._at = now
        return self._level

    def take(self, cost: float) -> bool:
        if self.available() < cost:
            return False
        self._level -= cost
        return True

    def refund(self, amount: float) -> None:
        self._level = min(self.maximum, self.available() + max(amount, 0.0))

    def status(self) -> dict[str, float]:
        return {
            "maximumAvailable": float(self.maximum),
            "currentlyAvailable": float(round(self.available(), 1)),
            "restoreRate": float(self.restore_rate),
        }


class ShopifyStandIn:
    """An in-memory shop (thread-safe) with a GraphQL Admin endpoint and webhook deliveries."""

    def __init__(
        self,
        *,
        access_token: str = DEFAULT_ACCESS_TOKEN,
        shop_domain: str = DEFAULT_SHOP_DOMAIN,
        api_version: str = DEFAULT_API_VERSION,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_sender: WebhookSender | None = None,
        auto_deliver: bool = True,
        bucket_size: float = 1000.0,
        restore_rate: float = 100.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.access_token = access_token
        self.shop_domain = shop_domain
        self.api_version = api_version
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.webhook_sender: WebhookSender = webhook_sender or http_webhook_sender()
        self.auto_deliver = auto_deliver
        self._clock = clock
        self._lock = threading.RLock()
        self._bucket = _CostBucket(bucket_size, restore_rate)
        self._products: dict[int, StandInProduct] = {}
        self._variants: dict[int, StandInVariant] = {}
        self._orders: dict[int, StandInOrder] = {}
        self._faults: deque[_Fault] = deque()
        self._next_ids = {
            "product": 8_000_000_001,
            "variant": 44_000_000_001,
            "inventory_item": 46_000_000_001,
            "image": 30_000_000_001,
            "order": 5_500_000_001,
            "line_item": 13_000_000_001,
            "fulfillment": 4_800_000_001,
            "number": 1001,
        }
        # Counters for tests.
        self.calls = 0
        self.operations: Counter[str] = Counter()
        self.order_create_calls: Counter[str] = Counter()
        self.order_cancel_calls: Counter[str] = Counter()
        self.throttled: list[dict[str, Any]] = []
        # Webhooks: every delivery made (for deliver_again) and those not yet sent.
        self.deliveries: list[WebhookDelivery] = []
        self._pending: deque[WebhookDelivery] = deque()
        self._drain_task: asyncio.Task[None] | None = None
        self._drain_loop: asyncio.AbstractEventLoop | None = None
        self._home_loop: asyncio.AbstractEventLoop | None = None
        self._webhooks_of_call: list[WebhookDelivery | None] = []

    # -- ids and time ----------------------------------------------------------------------

    def _new_id(self, kind: str) -> int:
        value = self._next_ids[kind]
        self._next_ids[kind] = value + 1
        return value

    def _now_after(self, previous: datetime | None) -> datetime:
        """Now, but strictly after `previous`: Shopify's timestamps have one-second grain."""
        now = self._clock()
        if previous is not None and now <= previous:
            return previous + timedelta(seconds=1)
        return now

    @property
    def graphql_path(self) -> str:
        return f"/admin/api/{self.api_version}/graphql.json"

    def endpoint(self, base_url: str) -> str:
        """The GraphQL endpoint under a server address such as http://127.0.0.1:8787."""
        return base_url.rstrip("/") + self.graphql_path

    # -- reading the store -------------------------------------------------------------------

    def product(self, product_id: int | str) -> StandInProduct:
        with self._lock:
            found = self._products.get(_numeric_id(product_id, "Product"))
            if found is None:
                raise StandInError(f"no product {product_id}")
            return found

    def variant(self, variant_id: int | str) -> StandInVariant:
        with self._lock:
            found = self._variants.get(_numeric_id(variant_id, "ProductVariant"))
            if found is None:
                raise StandInError(f"no variant {variant_id}")
            return found

    def order(self, order_id: int | str) -> StandInOrder:
        with self._lock:
            found = self._orders.get(_numeric_id(order_id, "Order"))
            if found is None:
                raise StandInError(f"no order {order_id}")
            return found

    @property
    def products(self) -> list[StandInProduct]:
        with self._lock:
            return list(self._products.values())

    @property
    def orders(self) -> list[StandInOrder]:
        with self._lock:
            return list(self._orders.values())

    def orders_with_tag(self, tag: str) -> list[StandInOrder]:
        wanted = tag.casefold()
        with self._lock:
            return [o for o in self._orders.values() if wanted in {t.casefold() for t in o.tags}]

    # -- control methods ---------------------------------------------------------------------

    def add_product(
        self,
        *,
        title: str,
        price: Decimal | str | float = "10.00",
        description: str = "",
        product_type: str | None = None,
        image_url: str | None = None,
        status: str = "ACTIVE",
        inventory: int = 0,
        sku: str | None = None,
        tags: Sequence[str] = (),
        vendor: str = "StepCoin Stand-in",
        variants: Sequence[VariantSpec | Mapping[str, Any]] | None = None,
    ) -> StandInProduct:
        """Create a product (one default variant unless `variants` are given): products/create."""
        specs = [
            spec if isinstance(spec, VariantSpec) else VariantSpec(**dict(spec))
            for spec in (variants or [VariantSpec(price=price, sku=sku, inventory=inventory)])
        ]
        if not specs:
            raise ValueError("a product needs at least one variant")
        with self._lock:
            now = self._clock()
            product = StandInProduct(
                id=self._new_id("product"),
                title=title,
                handle=_handle(title),
                description_html=description,
                product_type=product_type or "",
                vendor=vendor,
                status=status.upper(),
                tags=list(tags),
                image_url=image_url,
                image_id=self._new_id("image") if image_url else None,
                created_at=now,
                updated_at=now,
            )
            for position, spec in enumerate(specs, start=1):
                variant = StandInVariant(
                    id=self._new_id("variant"),
                    product_id=product.id,
                    title=spec.title,
                    price=Decimal(str(spec.price)),
                    sku=spec.sku,
                    inventory_item_id=self._new_id("inventory_item"),
                    inventory_quantity=spec.inventory,
                    position=position,
                    created_at=now,
                    updated_at=now,
                )
                product.variants.append(variant)
                self._variants[variant.id] = variant
            self._products[product.id] = product
            delivery = self._webhook("products/create", _product_payload(product))
        self._dispatch([delivery])
        return product

    def update_product(
        self,
        product_id: int | str,
        *,
        title: str | None = None,
        description: str | None = None,
        product_type: str | None = None,
        image_url: str | None = None,
        status: str | None = None,
        price: Decimal | str | float | None = None,
        tags: Sequence[str] | None = None,
    ) -> StandInProduct:
        """Change a product (price: every variant's), bump updatedAt: products/update."""
        with self._lock:
            product = self.product(product_id)
            if title is not None:
                product.title = title
            if description is not None:
                product.description_html = description
            if product_type is not None:
                product.product_type = product_type
            if image_url is not None:
                product.image_url = image_url or None
                product.image_id = self._new_id("image") if image_url else None
            if status is not None:
                product.status = status.upper()
            if tags is not None:
                product.tags = list(tags)
            product.updated_at = self._now_after(product.updated_at)
            if price is not None:
                for variant in product.variants:
                    variant.price = Decimal(str(price))
                    variant.updated_at = product.updated_at
            delivery = self._webhook("products/update", _product_payload(product))
        self._dispatch([delivery])
        return product

    def update_variant(
        self,
        variant_id: int | str,
        *,
        title: str | None = None,
        price: Decimal | str | float | None = None,
        sku: str | None = None,
    ) -> StandInVariant:
        """Change one variant (its product's updatedAt moves too): products/update."""
        with self._lock:
            variant = self.variant(variant_id)
            product = self._products[variant.product_id]
            if title is not None:
                variant.title = title
            if price is not None:
                variant.price = Decimal(str(price))
            if sku is not None:
                variant.sku = sku or None
            product.updated_at = self._now_after(product.updated_at)
            variant.updated_at = product.updated_at
            delivery = self._webhook("products/update", _product_payload(product))
        self._dispatch([delivery])
        return variant

    def archive_product(self, product_id: int | str) -> StandInProduct:
        """Status ARCHIVED: products/update."""
        return self.update_product(product_id, status="ARCHIVED")

    def delete_product(self, product_id: int | str) -> None:
        """Remove a product and its variants: products/delete (the body holds only the id)."""
        with self._lock:
            product = self.product(product_id)
            del self._products[product.id]
            for variant in product.variants:
                self._variants.pop(variant.id, None)
            delivery = self._webhook("products/delete", {"id": product.id})
        self._dispatch([delivery])

    def set_inventory(self, variant_id: int | str, quantity: int) -> StandInVariant:
        """Set a variant's available quantity: inventory_levels/update."""
        with self._lock:
            variant = self.variant(variant_id)
            variant.inventory_quantity = quantity
            variant.updated_at = self._now_after(variant.updated_at)
            delivery = self._webhook("inventory_levels/update", _inventory_payload(variant))
        self._dispatch([delivery])
        return variant

    def fulfill_order(
        self,
        order_id: int | str,
        tracking_number: str | None,
        *,
        tracking_company: str | None = "StepCoin Post",
    ) -> StandInOrder:
        """Ship the whole order with a tracking number: orders/fulfilled."""
        with self._lock:
            order = self.order(order_id)
            if order.cancelled_at is not None:
                raise StandInError(f"order {order.name} is cancelled")
            order.updated_at = self._now_after(order.updated_at)
            order.fulfillments.append(
                StandInFulfillment(
                    id=self._new_id("fulfillment"),
                    tracking_number=tracking_number,
                    tracking_company=tracking_company if tracking_number else None,
                    created_at=order.updated_at,
                )
            )
            delivery = self._webhook("orders/fulfilled", _order_payload(order))
        self._dispatch([delivery])
        return order

    def cancel_order(
        self, order_id: int | str, *, reason: str = "OTHER", restock: bool = False
    ) -> StandInOrder:
        """Cancel an order (optionally returning its stock): orders/cancelled."""
        with self._lock:
            order = self.order(order_id)
            deliveries = self._cancel(order, reason, restock)
        self._dispatch(deliveries)
        return order

    def _cancel(
        self, order: StandInOrder, reason: str, restock: bool
    ) -> list[WebhookDelivery | None]:
        if order.cancelled_at is not None:
            return []
        order.updated_at = self._now_after(order.updated_at)
        order.cancelled_at = order.updated_at
        order.cancel_reason = reason.upper()
        deliveries = [self._webhook("orders/cancelled", _order_payload(order))]
        if restock and not order.fulfillments:
            for line in order.line_items:
                variant = self._variants.get(line.variant_id or 0)
                if variant is not None:
                    variant.inventory_quantity += line.quantity
                    variant.updated_at = self._now_after(variant.updated_at)
                    deliveries.append(
                        self._webhook("inventory_levels/update", _inventory_payload(variant))
                    )
        return deliveries

    # -- test hooks --------------------------------------------------------------------------

    def throttle_next(
        self,
        n: int = 1,
        *,
        retry_after: float = 2.0,
        graphql: bool = False,
        currently_available: float = 0.0,
        when: str | None = None,
    ) -> None:
        """Answer the next n calls as throttled: HTTP 429 + Retry-After, or (graphql=True) a
        200 with a THROTTLED error and a cost bucket holding `currently_available` points."""
        kind = "throttle_graphql" if graphql else "throttle"
        with self._lock:
            self._faults.extend(
                _Fault(
                    kind,
                    retry_after=retry_after,
                    currently_available=currently_available,
                    when=when,
                )
                for _ in range(n)
            )

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        retry_after: float | None = None,
        after_execute: bool = False,
        when: str | None = None,
    ) -> None:
        """Answer the next n calls with `status`; after_execute=True runs the operation first
        (the change happens, the caller only sees the failure); `when` limits the fault to
        calls whose query contains that text (e.g. "orderCreate")."""
        with self._lock:
            self._faults.extend(
                _Fault(
                    "status",
                    status=status,
                    retry_after=retry_after,
                    after_execute=after_execute,
                    when=when,
                )
                for _ in range(n)
            )

    def delay_next(
        self,
        n: int = 1,
        seconds: float = 1.0,
        *,
        after_execute: bool = False,
        when: str | None = None,
    ) -> None:
        """Hold the next n answers for `seconds` (to make a client time out)."""
        with self._lock:
            self._faults.extend(
                _Fault("delay", seconds=seconds, after_execute=after_execute, when=when)
                for _ in range(n)
            )

    # -- webhooks ----------------------------------------------------------------------------

    def configure_webhooks(
        self, url: str | None, secret: str | None, *, sender: WebhookSender | None = None
    ) -> None:
        """Where changes are delivered, and the app secret that signs them."""
        with self._lock:
            self.webhook_url = url
            self.webhook_secret = secret
            if sender is not None:
                self.webhook_sender = sender

    def _webhook(self, topic: str, payload: Mapping[str, Any]) -> WebhookDelivery | None:
        if not self.webhook_url or not self.webhook_secret:
            return None
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        webhook_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(body, self.webhook_secret),
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Shop-Domain": self.shop_domain,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        delivery = WebhookDelivery(webhook_id, topic, self.webhook_url, body, headers)
        self.deliveries.append(delivery)
        self._pending.append(delivery)
        return delivery

    def _dispatch(self, deliveries: Iterable[WebhookDelivery | None]) -> None:
        """Start sending queued deliveries in the background.

        On the event loop running in this thread, else on the loop that serves the stand-in's
        HTTP app; with neither, they wait for drain_webhooks().
        """
        if not any(d is not None for d in deliveries) or not self.auto_deliver:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            home = self._home_loop
            if home is not None and home.is_running() and not home.is_closed():
                home.call_soon_threadsafe(self._start_drain, home)
            return
        self._start_drain(loop)

    def _start_drain(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            if self._drain_task is not None:
                return  # The running drain picks up what was queued.
            self._drain_task = loop.create_task(self._send_pending())
            self._drain_loop = loop

    async def _send_pending(self) -> None:
        try:
            while True:
                with self._lock:
                    if not self._pending:
                        if self._drain_task is asyncio.current_task():
                            self._drain_task = None
                        return
                    delivery = self._pending.popleft()
                await self._send(delivery)
        except BaseException:
            with self._lock:
                if self._drain_task is asyncio.current_task():
                    self._drain_task = None
            raise

    async def _send(self, delivery: WebhookDelivery) -> int | str:
        try:
            outcome: int | str = await self.webhook_sender(
                delivery.url, delivery.body, delivery.headers
            )
        except Exception as exc:  # a webhook target that is down is Shopify's normal weather
            outcome = f"error: {exc!r}"
            logger.warning("webhook %s to %s failed: %r", delivery.topic, delivery.url, exc)
        delivery.attempts.append(outcome)
        return outcome

    async def drain_webhooks(self) -> list[WebhookDelivery]:
        """Send every queued delivery (in order) and wait for those already under way."""
        task = self._drain_task
        if task is not None and self._drain_loop is asyncio.get_running_loop():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while True:
            with self._lock:
                if not self._pending:
                    break
                delivery = self._pending.popleft()
            await self._send(delivery)
        return list(self.deliveries)

    async def deliver_again(self, webhook_id: str) -> int | str:
        """Send a past delivery once more, same id, body and signature (a Shopify retry)."""
        for delivery in self.deliveries:
            if delivery.webhook_id == webhook_id:
                return await self._send(delivery)
        raise StandInError(f"no delivery {webhook_id}")

    # -- GraphQL -----------------------------------------------------------------------------

    def execute_graphql(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        operation_name: str | None = None,
        *,
        fault: _Fault | None = None,
    ) -> dict[str, Any]:
        """Run one request body as Shopify would and return the JSON answer (status 200)."""
        try:
            document = parse(query)
        except GraphQLError as exc:
            return {"errors": [_error_json(exc, "PARSE_ERROR")]}
        schema = admin_schema()
        problems = validate(schema, document)
        if problems:
            return {"errors": [_error_json(e, _validation_code(e)) for e in problems]}
        operation = _operation(document, operation_name)
        if operation is None:
            return {"errors": [{"message": "No operation named " + repr(operation_name)}]}
        with self._lock:
            self.operations[operation.name.value if operation.name else "anonymous"] += 1
        try:
            requested = _requested_cost(schema, document, operation, dict(variables or {}))
        except (GraphQLError, ValueError, TypeError) as exc:
            return {"errors": [{"message": f"Invalid arguments: {exc}"}]}
        if requested > MAX_QUERY_COST:
            return {
                "errors": [
                    {
                        "message": (
                            f"Query cost is {requested}, which exceeds the single query max "
                            f"cost limit ({MAX_QUERY_COST})."
                        ),
                        "extensions": {
                            "code": "MAX_COST_EXCEEDED",
                            "cost": requested,
                            "maxCost": MAX_QUERY_COST,
                        },
                    }
                ]
            }
        with self._lock:
            if fault is not None and fault.kind == "throttle_graphql":
                status = self._bucket.status()
                status["currentlyAvailable"] = fault.currently_available
                return self._throttled_answer(requested, status)
            if not self._bucket.take(requested):
                return self._throttled_answer(requested, self._bucket.status())
            self._webhooks_of_call = []
            result = execute(
                schema,
                document,
                root_value=_Root(self),
                variable_values=dict(variables or {}),
                operation_name=operation_name,
            )
            assert not isinstance(result, Awaitable)
            deliveries = self._webhooks_of_call
            self._webhooks_of_call = []
            actual = min(
                requested,
                _actual_cost(result.data)
                + (MUTATION_COST if operation.operation == OperationType.MUTATION else 0),
            )
            self._bucket.refund(requested - actual)
            answer: dict[str, Any] = {}
            if result.errors:
                answer["errors"] = [_error_json(e, None) for e in result.errors]
            answer["data"] = result.data
            answer["extensions"] = {
                "cost": {
                    "requestedQueryCost": requested,
                    "actualQueryCost": actual,
                    "throttleStatus": self._bucket.status(),
                }
            }
        self._dispatch(deliveries)
        return answer

    def _throttled_answer(self, requested: int, status: dict[str, float]) -> dict[str, Any]:
        answer = {
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {
                        "code": "THROTTLED",
                        "documentation": "https://shopify.dev/api/usage/rate-limits",
                    },
                }
            ],
            "extensions": {
                "cost": {
                    "requestedQueryCost": requested,
                    "actualQueryCost": None,
                    "throttleStatus": status,
                }
            },
        }
        self.throttled.append(answer)
        return answer

    def _create_order(
        self, order_input: Mapping[str, Any], options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """orderCreate: validate, take stock as the options say, store the order."""
        tags = [str(t) for t in order_input.get("tags") or []]
        for tag in tags or ["(untagged)"]:
            self.order_create_calls[tag] += 1
        errors: list[dict[str, Any]] = []
        lines = list(order_input.get("lineItems") or [])
        if not lines:
            errors.append({"field": ["order", "lineItems"], "message": "Line items can't be blank"})
        behaviour = str(options.get("inventoryBehaviour") or "BYPASS")
        resolved: list[tuple[StandInVariant | None, Mapping[str, Any]]] = []
        for index, line in enumerate(lines):
            where = ["order", "lineItems", str(index)]
            quantity = int(line.get("quantity") or 0)
            if quantity < 1:
                errors.append(
                    {"field": [*where, "quantity"], "message": "Quantity must be greater than 0"}
                )
            variant: StandInVariant | None = None
            if line.get("variantId") is not None:
                try:
                    variant = self._variants.get(
                        _numeric_id(str(line["variantId"]), "ProductVariant")
                    )
                except StandInError:
                    variant = None
                if variant is None:
                    errors.append(
                        {"field": [*where, "variantId"], "message": "Variant does not exist"}
                    )
                elif (
                    behaviour == "DECREMENT_OBEYING_POLICY"
                    and variant.inventory_quantity < quantity
                ):
                    errors.append(
                        {"field": [*where, "quantity"], "message": "Not enough inventory"}
                    )
            elif not line.get("title"):
                errors.append({"field": [*where, "title"], "message": "Title can't be blank"})
            resolved.append((variant, line))
        if errors:
            return {"order": None, "userErrors": errors}
        now = self._clock()
        line_items: list[StandInLineItem] = []
        for variant, line in resolved:
            product = self._products.get(variant.product_id) if variant else None
            line_items.append(
                StandInLineItem(
                    id=self._new_id("line_item"),
                    variant_id=variant.id if variant else None,
                    product_id=product.id if product else None,
                    title=str(line.get("title") or (product.title if product else "Item")),
                    quantity=int(line["quantity"]),
                    price=variant.price if variant else Decimal("0"),
                    sku=line.get("sku") or (variant.sku if variant else None),
                )
            )
            if variant is not None and behaviour != "BYPASS":
                variant.inventory_quantity -= int(line["quantity"])
                variant.updated_at = self._now_after(variant.updated_at)
                self._webhooks_of_call.append(
                    self._webhook("inventory_levels/update", _inventory_payload(variant))
                )
        address = order_input.get("shippingAddress") or {}
        order = StandInOrder(
            id=self._new_id("order"),
            number=self._new_id("number"),
            email=order_input.get("email"),
            tags=tags,
            note=order_input.get("note"),
            source_identifier=order_input.get("sourceIdentifier"),
            financial_status=str(order_input.get("financialStatus") or "PENDING"),
            line_items=line_items,
            shipping_address={k: str(v) for k, v in address.items() if v is not None},
            created_at=now,
            updated_at=now,
        )
        self._orders[order.id] = order
        return {"order": _OrderView(self, order), "userErrors": []}

    # -- HTTP --------------------------------------------------------------------------------

    def build_app(self) -> Starlette:
        """The ASGI app: POST /admin/api/{version}/graphql.json, plus /_standin/ controls."""
        return Starlette(routes=_routes(self))

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("x-shopify-access-token") == self.access_token

    def _take_fault(self, query: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.when is None or fault.when in query:
                    self._faults.remove(fault)
                    return fault
            return None

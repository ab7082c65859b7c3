"""A local Shopify stand-in that speaks the Admin GraphQL protocol for the parts StepCoin uses.

Queries are validated and executed by graphql-core against an SDL that is a faithful subset of
Shopify's Admin schema (same type, field, argument and enum names), so a misspelt field fails
here as it would on Shopify. Answers carry `extensions.cost` from a leaky cost bucket; a query
above 1,000 points is refused like on Shopify. Changes made through the control methods send
signed webhooks (X-Shopify-* headers, REST-style JSON bodies) to a configured URL.

Run it alone: python -m stepcoin.shop.standin --port 8787 --demo
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import re
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInt,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    build_schema,
    execute,
    get_named_type,
    get_nullable_type,
    parse,
    validate,
)
from graphql.utilities import value_from_ast
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from stepcoin.shop.shopify import STANDIN_ACCESS_TOKEN, STANDIN_SHOP_DOMAIN
from stepcoin.shop.webhook_signing import sign

logger = logging.getLogger("stepcoin.shopify.standin")

DEFAULT_API_VERSION = "2025-01"
LOCATION_ID = 70_000_000_001
MAX_QUERY_COST = 1000
MAX_PAGE_SIZE = 250
MUTATION_COST = 10

WebhookSender = Callable[[str, bytes, Mapping[str, str]], Awaitable[int]]

_COUNTRY_CODES = (
    "AC AD AE AF AG AI AL AM AN AO AR AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO "
    "BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ "
    "DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ "
    "GR GS GT GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI "
    "KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MK ML MM MN MO "
    "MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK "
    "PL PM PN PS PT PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST "
    "SV SX SY SZ TA TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC "
    "VE VG VN VU WF WS XK YE YT ZA ZM ZW ZZ"
)

# A subset of Shopify's Admin GraphQL schema: names and types as Shopify has them.
SCHEMA_SDL = (
    """
schema { query: QueryRoot mutation: Mutation }

scalar DateTime
scalar Money
scalar URL
scalar HTML

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}

enum ProductStatus { ACTIVE ARCHIVED DRAFT }
enum ProductSortKeys {
  CREATED_AT ID INVENTORY_TOTAL PRODUCT_TYPE PUBLISHED_AT RELEVANCE TITLE UPDATED_AT VENDOR
}
enum ProductVariantSortKeys {
  FULL_TITLE ID INVENTORY_LEVELS_AVAILABLE INVENTORY_MANAGEMENT INVENTORY_POLICY
  INVENTORY_QUANTITY NAME POPULAR POSITION RELEVANCE SKU TITLE
}
enum OrderSortKeys {
  CREATED_AT CUSTOMER_NAME DESTINATION FINANCIAL_STATUS FULFILLMENT_STATUS ID ORDER_NUMBER
  PO_NUMBER PROCESSED_AT RELEVANCE TOTAL_ITEMS_QUANTITY TOTAL_PRICE UPDATED_AT
}
enum OrderDisplayFulfillmentStatus {
  FULFILLED IN_PROGRESS ON_HOLD OPEN PARTIALLY_FULFILLED PENDING_FULFILLMENT REQUEST_DECLINED
  RESTOCKED SCHEDULED UNFULFILLED
}
enum OrderDisplayFinancialStatus {
  AUTHORIZED EXPIRED PAID PARTIALLY_PAID PARTIALLY_REFUNDED PENDING REFUNDED VOIDED
}
enum OrderCreateFinancialStatus {
  AUTHORIZED EXPIRED PAID PARTIALLY_PAID PARTIALLY_REFUNDED PENDING REFUNDED VOIDED
}
enum OrderCreateInputsInventoryBehavior {
  BYPASS DECREMENT_IGNORING_POLICY DECREMENT_OBEYING_POLICY
}
enum OrderCancelReason { CUSTOMER DECLINED FRAUD INVENTORY OTHER STAFF }
enum FulfillmentStatus { CANCELLED ERROR FAILURE OPEN PENDING SUCCESS }
enum CurrencyCode { EUR GBP USD }
"""
    + "enum CountryCode { "
    + _COUNTRY_CODES
    + " }\n"
    + """
type Image {
  id: ID
  altText: String
  url: URL!
  width: Int
  height: Int
}

type InventoryItem {
  id: ID!
  sku: String
  tracked: Boolean!
  legacyResourceId: String!
}

type ProductVariant {
  id: ID!
  legacyResourceId: String!
  title: String!
  displayName: String!
  price: Money!
  compareAtPrice: Money
  sku: String
  position: Int!
  inventoryQuantity: Int
  inventoryItem: InventoryItem!
  product: Product!
  createdAt: DateTime!
  updatedAt: DateTime!
}

type ProductVariantEdge { cursor: String! node: ProductVariant! }
type ProductVariantConnection {
  edges: [ProductVariantEdge!]!
  nodes: [ProductVariant!]!
  pageInfo: PageInfo!
}

type Product {
  id: ID!
  legacyResourceId: String!
  title: String!
  handle: String!
  description(truncateAt: Int): String!
  descriptionHtml: HTML!
  vendor: String!
  productType: String!
  status: ProductStatus!
  tags: [String!]!
  totalInventory: Int!
  featuredImage: Image
  createdAt: DateTime!
  updatedAt: DateTime!
  variants(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    sortKey: ProductVariantSortKeys = POSITION
  ): ProductVariantConnection!
}

type ProductEdge { cursor: String! node: Product! }
type ProductConnection {
  edges: [ProductEdge!]!
  nodes: [Product!]!
  pageInfo: PageInfo!
}

type FulfillmentTrackingInfo {
  company: String
  number: String
  url: URL
}

type Fulfillment {
  id: ID!
  name: String!
  status: FulfillmentStatus!
  createdAt: DateTime!
  updatedAt: DateTime!
  trackingInfo(first: Int): [FulfillmentTrackingInfo!]!
}

type MailingAddress {
  address1: String
  address2: String
  city: String
  countryCodeV2: CountryCode
  firstName: String
  lastName: String
  name: String
  phone: String
  provinceCode: String
  zip: String
}

type LineItem {
  id: ID!
  title: String!
  quantity: Int!
  sku: String
  variant: ProductVariant
}

type LineItemEdge { cursor: String! node: LineItem! }
type LineItemConnection {
  edges: [LineItemEdge!]!
  nodes: [LineItem!]!
  pageInfo: PageInfo!
}

type Order {
  id: ID!
  legacyResourceId: String!
  name: String!
  email: String
  note: String
  tags: [String!]!
  sourceIdentifier: String
  displayFulfillmentStatus: OrderDisplayFulfillmentStatus!
  displayFinancialStatus: OrderDisplayFinancialStatus
  cancelledAt: DateTime
  cancelReason: OrderCancelReason
  closed: Boolean!
  createdAt: DateTime!
  processedAt: DateTime!
  updatedAt: DateTime!
  shippingAddress: MailingAddress
  fulfillments(first: Int): [Fulfillment!]!
  lineItems(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): LineItemConnection!
}

type OrderEdge { cursor: String! node: Order! }
type OrderConnection {
  edges: [OrderEdge!]!
  nodes: [Order!]!
  pageInfo: PageInfo!
}

type Shop {
  name: String!
  myshopifyDomain: String!
  currencyCode: CurrencyCode!
}

input MailingAddressInput {
  address1: String
  address2: String
  city: String
  company: String
  countryCode: CountryCode
  firstName: String
  lastName: String
  phone: String
  provinceCode: String
  zip: String
}

input OrderCreateLineItemInput {
  variantId: ID
  quantity: Int!
  title: String
  sku: String
  requiresShipping: Boolean
}

input OrderCreateOrderInput {
  billingAddress: MailingAddressInput
  buyerAcceptsMarketing: Boolean
  currency: CurrencyCode
  email: String
  financialStatus: OrderCreateFinancialStatus
  lineItems: [OrderCreateLineItemInput!]
  note: String
  phone: String
  processedAt: DateTime
  shippingAddress: MailingAddressInput
  sourceIdentifier: String
  sourceName: String
  tags: [String!]
  test: Boolean
}

input OrderCreateOptionsInput {
  inventoryBehaviour: OrderCreateInputsInventoryBehavior = BYPASS
  sendFulfillmentReceipt: Boolean = false
  sendReceipt: Boolean = false
}

type OrderCreateUserError {
  field: [String!]
  message: String!
}

type OrderCreatePayload {
  order: Order
  userErrors: [OrderCreateUserError!]!
}

enum OrderCancelUserErrorCode { INVALID NOT_FOUND NO_REFUND_PERMISSION }

type OrderCancelUserError {
  code: OrderCancelUserErrorCode
  field: [String!]
  message: String!
}

type UserError {
  field: [String!]
  message: String!
}

type Job {
  id: ID!
  done: Boolean!
}

type OrderCancelPayload {
  job: Job
  orderCancelUserErrors: [OrderCancelUserError!]!
  userErrors: [UserError!]!
}

type QueryRoot {
  shop: Shop!
  product(id: ID!): Product
  products(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    sortKey: ProductSortKeys = ID
    query: String
  ): ProductConnection!
  productVariant(id: ID!): ProductVariant
  order(id: ID!): Order
  orders(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    sortKey: OrderSortKeys = PROCESSED_AT
    query: String
  ): OrderConnection!
}

type Mutation {
  orderCreate(order: OrderCreateOrderInput!, options: OrderCreateOptionsInput): OrderCreatePayload
  orderCancel(
    orderId: ID!
    reason: OrderCancelReason!
    refund: Boolean!
    restock: Boolean!
    notifyCustomer: Boolean = false
    staffNote: String
  ): OrderCancelPayload
}
"""
)

_SCHEMA: GraphQLSchema | None = None


def admin_schema() -> GraphQLSchema:
    """The stand-in's GraphQL schema (built once)."""
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = build_schema(SCHEMA_SDL)
    return _SCHEMA


# -- the store ---------------------------------------------------------------------------------


@dataclass
class StandInVariant:
    id: int
    product_id: int
    title: str
    price: Decimal
    sku: str | None
    inventory_item_id: int
    inventory_quantity: int
    position: int
    created_at: datetime
    updated_at: datetime

    @property
    def gid(self) -> str:
        return f"gid://shopify/ProductVariant/{self.id}"

    @property
    def inventory_item_gid(self) -> str:
        return f"gid://shopify/InventoryItem/{self.inventory_item_id}"


@dataclass
class StandInProduct:
    id: int
    title: str
    handle: str
    description_html: str
    product_type: str
    vendor: str
    status: str
    tags: list[str]
    image_url: str | None
    image_id: int | None
    created_at: datetime
    updated_at: datetime
    variants: list[StandInVariant] = field(default_factory=list)

    @property
    def gid(self) -> str:
        return f"gid://shopify/Product/{self.id}"


@dataclass
class StandInLineItem:
    id: int
    variant_id: int | None
    product_id: int | None
    title: str
    quantity: int
    price: Decimal
    sku: str | None


@dataclass
class StandInFulfillment:
    id: int
    tracking_number: str | None
    tracking_company: str | None
    created_at: datetime


@dataclass
class StandInOrder:
    id: int
    number: int
    email: str | None
    tags: list[str]
    note: str | None
    source_identifier: str | None
    financial_status: str
    line_items: list[StandInLineItem]
    shipping_address: dict[str, str]
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    fulfillments: list[StandInFulfillment] = field(default_factory=list)

    @property
    def gid(self) -> str:
        return f"gid://shopify/Order/{self.id}"

    @property
    def name(self) -> str:
        return f"#{self.number}"

    @property
    def fulfillment_status(self) -> str:
        return "FULFILLED" if self.fulfillments else "UNFULFILLED"


@dataclass
class VariantSpec:
    """A variant to create with add_product."""

    title: str = "Default Title"
    price: Decimal | str | float = "10.00"
    sku: str | None = None
    inventory: int = 0


@dataclass
class WebhookDelivery:
    webhook_id: str
    topic: str
    url: str
    body: bytes
    headers: dict[str, str]
    attempts: list[int | str] = field(default_factory=list)

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


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


class StandInError(LookupError):
    """A control method named something the stand-in does not hold."""


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _numeric_id(value: int | str, kind: str) -> int:
    if isinstance(value, int):
        return value
    text = value.strip()
    prefix = f"gid://shopify/{kind}/"
    if text.startswith(prefix):
        text = text[len(prefix) :]
    if not text.isdigit():
        raise StandInError(f"not a {kind} id: {value!r}")
    return int(text)


def _gql_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rest_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="seconds")


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _handle(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "product"


def _strip_html(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()


class ShopifyStandIn:
    """An in-memory shop (thread-safe) with a GraphQL Admin endpoint and webhook deliveries."""

    def __init__(
        self,
        *,
        access_token: str = STANDIN_ACCESS_TOKEN,
        shop_domain: str = STANDIN_SHOP_DOMAIN,
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


# -- GraphQL views and resolvers ------------------------------------------------------------------


def _encode_cursor(item_id: int, value: Any) -> str:
    raw = json.dumps({"last_id": item_id, "last_value": value}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[Any, int]:
    try:
        data = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return data["last_value"], int(data["last_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor!r}") from exc


def _paginate(
    items: Sequence[Any],
    key: Callable[[Any], Any],
    ident: Callable[[Any], int],
    *,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    reverse: bool,
    wrap: Callable[[Any], Any],
) -> dict[str, Any]:
    """A Relay connection over `items` ordered by (key, id), as Shopify pages its lists."""
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    if first is not None and last is not None:
        raise GraphQLError("providing both first and last is not supported")
    size = first if first is not None else last
    assert size is not None
    if not 0 <= size <= MAX_PAGE_SIZE:
        raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE_SIZE}")

    def position(item: Any) -> tuple[Any, int]:
        return (key(item), ident(item))

    ordered = sorted(items, key=position, reverse=reverse)

    def comes_after(item: Any, mark: tuple[Any, int]) -> bool:
        return position(item) < mark if reverse else position(item) > mark

    def comes_before(item: Any, mark: tuple[Any, int]) -> bool:
        return position(item) > mark if reverse else position(item) < mark

    window = ordered
    if after is not None:
        mark = _decode_cursor(after)
        window = [i for i in window if comes_after(i, mark)]
    if before is not None:
        mark = _decode_cursor(before)
        window = [i for i in window if comes_before(i, mark)]
    if first is not None:
        page = window[:size]
        has_next = len(window) > size
        has_previous = after is not None and len(window) < len(ordered)
    else:
        page = window[-size:] if size else []
        has_next = before is not None and len(window) < len(ordered)
        has_previous = len(window) > size
    edges = [{"cursor": _encode_cursor(ident(i), key(i)), "node": wrap(i)} for i in page]
    return {
        "edges": edges,
        "nodes": [edge["node"] for edge in edges],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


_SEARCH_TERM = re.compile(
    r"""(?P<neg>-|NOT\s+)?(?:(?P<key>[A-Za-z_]+):)?(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s()]+)"""
)


def _search_terms(query: str | None) -> list[tuple[bool, str | None, str]]:
    """Shopify search syntax, the part used here: [-]key:value terms joined by AND."""
    terms: list[tuple[bool, str | None, str]] = []
    for match in _SEARCH_TERM.finditer(query or ""):
        value = match.group("value")
        if match.group("key") is None and value in {"AND", "OR"}:
            continue
        if value[:1] in {"'", '"'}:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        terms.append((bool(match.group("neg")), match.group("key"), value))
    return terms


def _matches(terms: Sequence[tuple[bool, str | None, str]], fields: Mapping[str, Any]) -> bool:
    for negated, key, value in terms:
        wanted = value.casefold()
        if key is None:
            hit = wanted in str(fields.get("title", "")).casefold()
        elif key not in fields:
            continue  # Shopify ignores filters a resource does not support
        else:
            have = fields[key]
            options = (
                {v.strip().casefold() for v in wanted.split(",")} if key == "status" else {wanted}
            )
            if isinstance(have, list | tuple | set):
                hit = bool(options & {str(h).casefold() for h in have})
            else:
                hit = str(have).casefold() in options
        if hit == negated:
            return False
    return True


class _Root:
    def __init__(self, standin: ShopifyStandIn) -> None:
        self._s = standin

    def shop(self, info: GraphQLResolveInfo) -> dict[str, Any]:
        return {
            "name": "StepCoin Stand-in",
            "myshopifyDomain": self._s.shop_domain,
            "currencyCode": "EUR",
        }

    def product(self, info: GraphQLResolveInfo, id: str) -> _ProductView | None:
        product = self._s._products.get(_gid_number(id, "Product"))
        return None if product is None else _ProductView(self._s, product)

    def productVariant(self, info: GraphQLResolveInfo, id: str) -> _VariantView | None:
        variant = self._s._variants.get(_gid_number(id, "ProductVariant"))
        return None if variant is None else _VariantView(self._s, variant)

    def products(self, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        terms = _search_terms(args.get("query"))
        items = [
            p
            for p in self._s._products.values()
            if _matches(
                terms,
                {
                    "title": p.title,
                    "status": p.status,
                    "product_type": p.product_type,
                    "tag": p.tags,
                    "vendor": p.vendor,
                    "id": str(p.id),
                },
            )
        ]
        sort_key = args.get("sortKey") or "ID"
        keys: dict[str, Callable[[StandInProduct], Any]] = {
            "TITLE": lambda p: p.title.casefold(),
            "UPDATED_AT": lambda p: _gql_time(p.updated_at),
            "CREATED_AT": lambda p: _gql_time(p.created_at),
            "PRODUCT_TYPE": lambda p: p.product_type.casefold(),
            "VENDOR": lambda p: p.vendor.casefold(),
        }
        return _paginate(
            items,
            keys.get(sort_key, lambda p: p.id),
            lambda p: p.id,
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
            reverse=bool(args.get("reverse")),
            wrap=lambda p: _ProductView(self._s, p),
        )

    def order(self, info: GraphQLResolveInfo, id: str) -> _OrderView | None:
        order = self._s._orders.get(_gid_number(id, "Order"))
        return None if order is None else _OrderView(self._s, order)

    def orders(self, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        terms = _search_terms(args.get("query"))
        items = [
            o
            for o in self._s._orders.values()
            if _matches(
                terms,
                {
                    "title": o.name,
                    "tag": o.tags,
                    "name": o.name,
                    "email": o.email or "",
                    "fulfillment_status": o.fulfillment_status.lower(),
                    "financial_status": o.financial_status.lower(),
                    "id": str(o.id),
                },
            )
        ]
        sort_key = args.get("sortKey") or "PROCESSED_AT"
        keys: dict[str, Callable[[StandInOrder], Any]] = {
            "UPDATED_AT": lambda o: _gql_time(o.updated_at),
            "CREATED_AT": lambda o: _gql_time(o.created_at),
            "PROCESSED_AT": lambda o: _gql_time(o.created_at),
            "ORDER_NUMBER": lambda o: o.number,
        }
        return _paginate(
            items,
            keys.get(sort_key, lambda o: o.id),
            lambda o: o.id,
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
            reverse=bool(args.get("reverse")),
            wrap=lambda o: _OrderView(self._s, o),
        )

    def orderCreate(
        self,
        info: GraphQLResolveInfo,
        order: Mapping[str, Any],
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self._s._create_order(order, options or {})

    def orderCancel(
        self,
        info: GraphQLResolveInfo,
        orderId: str,
        reason: str,
        refund: bool,
        restock: bool,
        **_: Any,
    ) -> dict[str, Any]:
        self._s.order_cancel_calls[orderId] += 1
        order = self._s._orders.get(_gid_number(orderId, "Order"))
        if order is None:
            error = {"code": "NOT_FOUND", "field": ["orderId"], "message": "Order not found"}
            return {"job": None, "orderCancelUserErrors": [error], "userErrors": []}
        if order.cancelled_at is not None:
            error = {
                "code": "INVALID",
                "field": ["orderId"],
                "message": "Order has already been cancelled",
            }
            return {"job": None, "orderCancelUserErrors": [error], "userErrors": []}
        self._s._webhooks_of_call.extend(self._s._cancel(order, reason, restock))
        job = {"id": f"gid://shopify/Job/{uuid.uuid4()}", "done": True}
        return {"job": job, "orderCancelUserErrors": [], "userErrors": []}


def _gid_number(value: str, kind: str) -> int:
    match = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", value.strip())
    if match is None:
        raise GraphQLError(f"Invalid global id '{value}'")
    return int(match.group(1))


class _ProductView:
    def __init__(self, standin: ShopifyStandIn, product: StandInProduct) -> None:
        self._s = standin
        self._p = product
        self.id = product.gid
        self.legacyResourceId = str(product.id)
        self.title = product.title
        self.handle = product.handle
        self.descriptionHtml = product.description_html
        self.vendor = product.vendor
        self.productType = product.product_type
        self.status = product.status
        self.tags = list(product.tags)
        self.totalInventory = sum(v.inventory_quantity for v in product.variants)
        self.createdAt = _gql_time(product.created_at)
        self.updatedAt = _gql_time(product.updated_at)
        self.featuredImage = (
            {"id": f"gid://shopify/ProductImage/{product.image_id}", "url": product.image_url}
            if product.image_url
            else None
        )

    def description(self, info: GraphQLResolveInfo, truncateAt: int | None = None) -> str:
        text = _strip_html(self._p.description_html)
        if truncateAt is not None and len(text) > truncateAt:
            return text[: max(truncateAt - 3, 0)] + "..."
        return text

    def variants(self, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        sort_key = args.get("sortKey") or "POSITION"
        keys: dict[str, Callable[[StandInVariant], Any]] = {
            "POSITION": lambda v: v.position,
            "TITLE": lambda v: v.title.casefold(),
            "SKU": lambda v: v.sku or "",
            "INVENTORY_QUANTITY": lambda v: v.inventory_quantity,
        }
        return _paginate(
            self._p.variants,
            keys.get(sort_key, lambda v: v.id),
            lambda v: v.id,
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
            reverse=bool(args.get("reverse")),
            wrap=lambda v: _VariantView(self._s, v),
        )


class _VariantView:
    def __init__(self, standin: ShopifyStandIn, variant: StandInVariant) -> None:
        self._s = standin
        self._v = variant
        product = standin._products.get(variant.product_id)
        self.id = variant.gid
        self.legacyResourceId = str(variant.id)
        self.title = variant.title
        self.displayName = f"{product.title if product else ''} - {variant.title}"
        self.price = _money(variant.price)
        self.compareAtPrice = None
        self.sku = variant.sku
        self.position = variant.position
        self.inventoryQuantity = variant.inventory_quantity
        self.inventoryItem = {
            "id": variant.inventory_item_gid,
            "sku": variant.sku,
            "tracked": True,
            "legacyResourceId": str(variant.inventory_item_id),
        }
        self.createdAt = _gql_time(variant.created_at)
        self.updatedAt = _gql_time(variant.updated_at)

    def product(self, info: GraphQLResolveInfo) -> _ProductView | None:
        product = self._s._products.get(self._v.product_id)
        return None if product is None else _ProductView(self._s, product)


class _OrderView:
    def __init__(self, standin: ShopifyStandIn, order: StandInOrder) -> None:
        self._s = standin
        self._o = order
        self.id = order.gid
        self.legacyResourceId = str(order.id)
        self.name = order.name
        self.email = order.email
        self.note = order.note
        self.tags = list(order.tags)
        self.sourceIdentifier = order.source_identifier
        self.displayFulfillmentStatus = order.fulfillment_status
        self.displayFinancialStatus = order.financial_status
        self.cancelledAt = _gql_time(order.cancelled_at)
        self.cancelReason = order.cancel_reason
        self.closed = order.cancelled_at is not None
        self.createdAt = _gql_time(order.created_at)
        self.processedAt = _gql_time(order.created_at)
        self.updatedAt = _gql_time(order.updated_at)
        address = order.shipping_address
        self.shippingAddress = (
            {
                "address1": address.get("address1"),
                "address2": address.get("address2"),
                "city": address.get("city"),
                "countryCodeV2": address.get("countryCode"),
                "firstName": address.get("firstName"),
                "lastName": address.get("lastName"),
                "name": " ".join(
                    p for p in (address.get("firstName"), address.get("lastName")) if p
                ),
                "phone": address.get("phone"),
                "provinceCode": address.get("provinceCode"),
                "zip": address.get("zip"),
            }
            if address
            else None
        )

    def fulfillments(self, info: GraphQLResolveInfo, first: int | None = None) -> list[Any]:
        chosen = self._o.fulfillments if first is None else self._o.fulfillments[:first]
        return [
            {
                "id": f"gid://shopify/Fulfillment/{f.id}",
                "name": f"{self._o.name}-F{index}",
                "status": "SUCCESS",
                "createdAt": _gql_time(f.created_at),
                "updatedAt": _gql_time(f.created_at),
                "trackingInfo": _TrackingInfo(f),
            }
            for index, f in enumerate(chosen, start=1)
        ]

    def lineItems(self, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        def wrap(line: StandInLineItem) -> dict[str, Any]:
            variant = self._s._variants.get(line.variant_id or 0)
            return {
                "id": f"gid://shopify/LineItem/{line.id}",
                "title": line.title,
                "quantity": line.quantity,
                "sku": line.sku,
                "variant": _VariantView(self._s, variant) if variant else None,
            }

        return _paginate(
            self._o.line_items,
            lambda line: line.id,
            lambda line: line.id,
            first=args.get("first"),
            after=args.get("after"),
            last=args.get("last"),
            before=args.get("before"),
            reverse=bool(args.get("reverse")),
            wrap=wrap,
        )


class _TrackingInfo:
    """Fulfillment.trackingInfo(first:) as a callable the default resolver invokes."""

    def __init__(self, fulfillment: StandInFulfillment) -> None:
        self._f = fulfillment

    def __call__(self, info: GraphQLResolveInfo, first: int | None = None) -> list[Any]:
        if not self._f.tracking_number:
            return []
        entries = [
            {
                "company": self._f.tracking_company,
                "number": self._f.tracking_number,
                "url": None,
            }
        ]
        return entries if first is None else entries[:first]


# -- query cost ------------------------------------------------------------------------------------


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == name), None)


def _requested_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any],
) -> int:
    """Shopify's requested cost: objects 1, scalars 0, connections 2 + size * node, mutations 10."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    root = (
        schema.mutation_type if operation.operation == OperationType.MUTATION else schema.query_type
    )
    assert root is not None

    def size_of(node: FieldNode) -> int:
        for argument in node.arguments or ():
            if argument.name.value in {"first", "last"}:
                value = value_from_ast(argument.value, GraphQLInt, dict(variables))
                if isinstance(value, int):
                    return max(value, 0)
        return 0

    def fields_of(selection_set: SelectionSetNode | None) -> Iterator[FieldNode]:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from fields_of(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    yield from fields_of(fragment.selection_set)

    def cost(parent: GraphQLNamedType, selection_set: SelectionSetNode | None) -> int:
        if not isinstance(parent, GraphQLObjectType):
            return 0
        total = 0
        for node in fields_of(selection_set):
            definition = parent.fields.get(node.name.value)
            if definition is None:
                continue  # __typename
            named = get_named_type(definition.type)
            if not isinstance(named, GraphQLObjectType):
                continue
            if named.name.endswith("Connection"):
                node_cost = 0
                for part in fields_of(node.selection_set):
                    if part.name.value == "nodes":
                        node_cost = max(node_cost, 1 + cost(_node_type(named), part.selection_set))
                    elif part.name.value == "edges":
                        for inner in fields_of(part.selection_set):
                            if inner.name.value == "node":
                                node_cost = max(
                                    node_cost, 1 + cost(_node_type(named), inner.selection_set)
                                )
                total += 2 + size_of(node) * max(node_cost, 1)
            elif isinstance(get_nullable_type(definition.type), GraphQLList):
                count = size_of(node) or 1
                total += count * (1 + cost(named, node.selection_set))
            else:
                total += 1 + cost(named, node.selection_set)
        return total

    if operation.operation == OperationType.MUTATION:
        return sum(
            MUTATION_COST + cost(get_named_type(root.fields[f.name.value].type), f.selection_set)
            for f in fields_of(operation.selection_set)
            if f.name.value in root.fields
        )
    return cost(root, operation.selection_set)


def _node_type(connection: GraphQLObjectType) -> GraphQLNamedType:
    named: GraphQLNamedType = get_named_type(connection.fields["nodes"].type)
    return named


def _actual_cost(data: Any) -> int:
    """Roughly what Shopify charges after the fact: one point per object returned."""
    if isinstance(data, dict):
        return (0 if "pageInfo" in data else 1) + sum(_actual_cost(v) for v in data.values())
    if isinstance(data, list):
        return sum(_actual_cost(v) for v in data)
    return 0


def _validation_code(error: GraphQLError) -> str:
    if error.message.startswith("Cannot query field"):
        return "undefinedField"
    if "argument" in error.message.lower():
        return "argumentNotAccepted"
    return "GRAPHQL_VALIDATION_FAILED"


def _error_json(error: GraphQLError, code: str | None) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    if code is not None:
        formatted["extensions"] = {**(formatted.get("extensions") or {}), "code": code}
    return formatted


# -- webhook bodies (REST-style, as Shopify sends them) ---------------------------------------


def _product_payload(product: StandInProduct) -> dict[str, Any]:
    image = (
        {
            "id": product.image_id,
            "admin_graphql_api_id": f"gid://shopify/ProductImage/{product.image_id}",
            "product_id": product.id,
            "position": 1,
            "src": product.image_url,
            "alt": None,
        }
        if product.image_url
        else None
    )
    return {
        "id": product.id,
        "admin_graphql_api_id": product.gid,
        "title": product.title,
        "body_html": product.description_html,
        "vendor": product.vendor,
        "product_type": product.product_type,
        "handle": product.handle,
        "status": product.status.lower(),
        "tags": ", ".join(product.tags),
        "created_at": _rest_time(product.created_at),
        "updated_at": _rest_time(product.updated_at),
        "published_at": _rest_time(product.created_at) if product.status == "ACTIVE" else None,
        "variants": [
            {
                "id": v.id,
                "admin_graphql_api_id": v.gid,
                "product_id": product.id,
                "title": v.title,
                "price": _money(v.price),
                "sku": v.sku or "",
                "position": v.position,
                "inventory_item_id": v.inventory_item_id,
                "inventory_quantity": v.inventory_quantity,
                "inventory_management": "shopify",
                "created_at": _rest_time(v.created_at),
                "updated_at": _rest_time(v.updated_at),
            }
            for v in product.variants
        ],
        "image": image,
        "images": [image] if image else [],
    }


def _inventory_payload(variant: StandInVariant) -> dict[str, Any]:
    return {
        "inventory_item_id": variant.inventory_item_id,
        "location_id": LOCATION_ID,
        "available": variant.inventory_quantity,
        "updated_at": _rest_time(variant.updated_at),
        "admin_graphql_api_id": (
            f"gid://shopify/InventoryLevel/{LOCATION_ID}"
            f"?inventory_item_id={variant.inventory_item_id}"
        ),
    }


def _order_payload(order: StandInOrder) -> dict[str, Any]:
    address = order.shipping_address
    return {
        "id": order.id,
        "admin_graphql_api_id": order.gid,
        "name": order.name,
        "order_number": order.number,
        "email": order.email,
        "tags": ", ".join(order.tags),
        "note": order.note,
        "source_identifier": order.source_identifier,
        "financial_status": order.financial_status.lower(),
        "fulfillment_status": "fulfilled" if order.fulfillments else None,
        "cancelled_at": _rest_time(order.cancelled_at),
        "cancel_reason": order.cancel_reason.lower() if order.cancel_reason else None,
        "created_at": _rest_time(order.created_at),
        "updated_at": _rest_time(order.updated_at),
        "line_items": [
            {
                "id": line.id,
                "variant_id": line.variant_id,
                "product_id": line.product_id,
                "title": line.title,
                "quantity": line.quantity,
                "price": _money(line.price),
                "sku": line.sku,
            }
            for line in order.line_items
        ],
        "fulfillments": [
            {
                "id": f.id,
                "admin_graphql_api_id": f"gid://shopify/Fulfillment/{f.id}",
                "order_id": order.id,
                "status": "success",
                "tracking_company": f.tracking_company,
                "tracking_number": f.tracking_number,
                "tracking_numbers": [f.tracking_number] if f.tracking_number else [],
                "created_at": _rest_time(f.created_at),
                "updated_at": _rest_time(f.created_at),
            }
            for f in order.fulfillments
        ],
        "shipping_address": {
            "first_name": address.get("firstName"),
            "last_name": address.get("lastName"),
            "address1": address.get("address1"),
            "address2": address.get("address2"),
            "city": address.get("city"),
            "province_code": address.get("provinceCode"),
            "zip": address.get("zip"),
            "country_code": address.get("countryCode"),
            "phone": address.get("phone"),
        }
        if address
        else None,
    }


# -- webhook senders --------------------------------------------------------------------------


def http_webhook_sender(
    *, transport: httpx.AsyncBaseTransport | None = None, timeout: float = 5.0
) -> WebhookSender:
    """POST deliveries with httpx (over a given transport, e.g. httpx.ASGITransport(app))."""

    async def send(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        async with httpx.AsyncClient(
            transport=transport, timeout=timeout, follow_redirects=False
        ) as client:
            response = await client.post(url, content=body, headers=dict(headers))
            return response.status_code

    return send


def asgi_webhook_sender(app: Any) -> WebhookSender:
    """Deliver in-process to an ASGI app (the URL's path is what counts)."""
    return http_webhook_sender(transport=httpx.ASGITransport(app=app))


# -- HTTP routes ----------------------------------------------------------------------------------

_UNAUTHORISED = {
    "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
}


def _routes(standin: ShopifyStandIn) -> list[Route]:
    async def graphql_endpoint(request: Request) -> Response:
        with standin._lock:
            standin.calls += 1
            standin._home_loop = asyncio.get_running_loop()
        if request.path_params["version"] != standin.api_version:
            return JSONResponse({"errors": "Not Found"}, status_code=404)
        if not standin._authorised(request):
            return JSONResponse(_UNAUTHORISED, status_code=401)
        try:
            body = json.loads(await request.body())
            query = body["query"]
            if not isinstance(query, str):
                raise TypeError("query")
            variables = body.get("variables") or {}
            if not isinstance(variables, dict):
                raise TypeError("variables")
        except (ValueError, KeyError, TypeError, AttributeError):
            return JSONResponse(
                {"errors": {"query": "Required parameter missing or invalid"}}, status_code=400
            )
        fault = standin._take_fault(query)
        if fault is not None and fault.kind == "throttle":
            return JSONResponse(
                {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]},
                status_code=429,
                headers={"Retry-After": _seconds(fault.retry_after or 0.0)},
            )
        if fault is not None and not fault.after_execute:
            early = await _early_fault(fault)
            if early is not None:
                return early
        answer = standin.execute_graphql(query, variables, body.get("operationName"), fault=fault)
        if fault is not None and fault.after_execute:
            if fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
            else:
                return _status_response(fault)
        return JSONResponse(answer)

    def control(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            standin._home_loop = asyncio.get_running_loop()
            if not standin._authorised(request):
                return JSONResponse(_UNAUTHORISED, status_code=401)
            try:
                return await handler(request)
            except StandInError as exc:
                return JSONResponse({"error": str(exc)}, status_code=404)
            except (ValueError, TypeError, KeyError) as exc:
                return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)

        return guarded

    async def json_body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        data = json.loads(raw) if raw else {}
        if not isinstance(data, dict):
            raise TypeError("a JSON object is expected")
        return data

    async def state(request: Request) -> Response:
        with standin._lock:
            return JSONResponse(
                {
                    "shop_domain": standin.shop_domain,
                    "api_version": standin.api_version,
                    "products": [_product_payload(p) for p in standin._products.values()],
                    "orders": [_order_payload(o) for o in standin._orders.values()],
                    "calls": standin.calls,
                    "operations": dict(standin.operations),
                    "order_create_calls": dict(standin.order_create_calls),
                    "order_cancel_calls": dict(standin.order_cancel_calls),
                    "deliveries": [
                        {"webhook_id": d.webhook_id, "topic": d.topic, "attempts": d.attempts}
                        for d in standin.deliveries
                    ],
                }
            )

    async def add_product(request: Request) -> Response:
        data = await json_body(request)
        product = standin.add_product(**data)
        return JSONResponse(_product_payload(product), status_code=201)

    async def update_product(request: Request) -> Response:
        data = await json_body(request)
        product = standin.update_product(request.path_params["product_id"], **data)
        return JSONResponse(_product_payload(product))

    async def archive_product(request: Request) -> Response:
        product = standin.archive_product(request.path_params["product_id"])
        return JSONResponse(_product_payload(product))

    async def delete_product(request: Request) -> Response:
        standin.delete_product(request.path_params["product_id"])
        return Response(status_code=204)

    async def set_inventory(request: Request) -> Response:
        data = await json_body(request)
        variant = standin.set_inventory(data["variant_id"], int(data["quantity"]))
        return JSONResponse(_inventory_payload(variant))

    async def fulfill(request: Request) -> Response:
        data = await json_body(request)
        order = standin.fulfill_order(request.path_params["order_id"], data.get("tracking_number"))
        return JSONResponse(_order_payload(order))

    async def cancel(request: Request) -> Response:
        data = await json_body(request)
        order = standin.cancel_order(
            request.path_params["order_id"], restock=bool(data.get("restock", False))
        )
        return JSONResponse(_order_payload(order))

    async def faults(request: Request) -> Response:
        data = await json_body(request)
        kind = data.get("kind", "fail")
        n = int(data.get("n", 1))
        if kind == "fail":
            standin.fail_next(
                n,
                int(data.get("status", 503)),
                retry_after=data.get("retry_after"),
                after_execute=bool(data.get("after_execute", False)),
                when=data.get("when"),
            )
        elif kind == "throttle":
            standin.throttle_next(
                n,
                retry_after=float(data.get("retry_after", 2.0)),
                graphql=bool(data.get("graphql", False)),
                when=data.get("when"),
            )
        elif kind == "delay":
            standin.delay_next(
                n,
                float(data.get("seconds", 1.0)),
                after_execute=bool(data.get("after_execute", False)),
                when=data.get("when"),
            )
        else:
            raise ValueError(f"unknown fault kind {kind!r}")
        return JSONResponse({"queued": n, "kind": kind})

    async def redeliver(request: Request) -> Response:
        outcome = await standin.deliver_again(request.path_params["webhook_id"])
        return JSONResponse({"outcome": outcome})

    async def drain(request: Request) -> Response:
        await standin.drain_webhooks()
        return JSONResponse({"deliveries": len(standin.deliveries)})

    async def index(request: Request) -> Response:
        return PlainTextResponse(
            "StepCoin's Shopify stand-in.\n"
            f"GraphQL: POST {standin.graphql_path} with X-Shopify-Access-Token\n"
            "Controls: GET /_standin/state, POST /_standin/products, ...\n"
        )

    return [
        Route("/", index, methods=["GET"]),
        Route("/admin/api/{version}/graphql.json", graphql_endpoint, methods=["POST"]),
        Route("/_standin/state", control(state), methods=["GET"]),
        Route("/_standin/products", control(add_product), methods=["POST"]),
        Route("/_standin/products/{product_id}", control(update_product), methods=["PATCH"]),
        Route("/_standin/products/{product_id}", control(delete_product), methods=["DELETE"]),
        Route(
            "/_standin/products/{product_id}/archive", control(archive_product), methods=["POST"]
        ),
        Route("/_standin/inventory", control(set_inventory), methods=["POST"]),
        Route("/_standin/orders/{order_id}/fulfill", control(fulfill), methods=["POST"]),
        Route("/_standin/orders/{order_id}/cancel", control(cancel), methods=["POST"]),
        Route("/_standin/faults", control(faults), methods=["POST"]),
        Route("/_standin/webhooks/drain", control(drain), methods=["POST"]),
        Route("/_standin/webhooks/{webhook_id}/redeliver", control(redeliver), methods=["POST"]),
    ]


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _status_response(fault: _Fault) -> Response:
    headers = {"Retry-After": _seconds(fault.retry_after)} if fault.retry_after is not None else {}
    return JSONResponse(
        {"errors": f"stand-in failure {fault.status}"}, status_code=fault.status, headers=headers
    )


async def _early_fault(fault: _Fault) -> Response | None:
    if fault.kind == "status":
        return _status_response(fault)
    if fault.kind == "delay":
        await asyncio.sleep(fault.seconds)
    return None


# -- demo catalogue -----------------------------------------------------------------------------


def _svg_image(label: str, colour: str) -> str:
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' width='400' height='400' viewBox='0 0 400 400'>"
        f"<rect width='400' height='400' rx='48' fill='{colour}'/>"
        "<text x='200' y='215' font-family='Helvetica,Arial,sans-serif' font-size='34' "
        f"fill='white' text-anchor='middle'>{label}</text></svg>"
    )
    return "data:image/svg+xml;utf8," + urllib.parse.quote(svg, safe="/:=',")


def demo_catalogue(standin: ShopifyStandIn) -> list[StandInProduct]:
    """Six friendly rewards with prices, images, categories and stock."""
    return [
        standin.add_product(
            title="Trail Runner Shoes",
            description="<p>Light, grippy shoes for the next ten thousand steps.</p>",
            product_type="Footwear",
            image_url=_svg_image("Trail Runners", "#2f7d4f"),
            variants=[
                VariantSpec("EU 40", "89.00", "SHOE-TR-40", 5),
                VariantSpec("EU 42", "89.00", "SHOE-TR-42", 8),
                VariantSpec("EU 44", "89.00", "SHOE-TR-44", 3),
            ],
        ),
        standin.add_product(
            title="Insulated Water Bottle",
            description="<p>750 ml, keeps water cold for 24 hours.</p>",
            product_type="Accessories",
            image_url=_svg_image("Water Bottle", "#2b6cb0"),
            price="24.50",
            sku="BOTTLE-750",
            inventory=25,
        ),
        standin.add_product(
            title="Cushioned Running Socks (3 pairs)",
            description="<p>Breathable socks with a cushioned sole.</p>",
            product_type="Apparel",
            image_url=_svg_image("Running Socks", "#b7791f"),
            price="14.00",
            sku="SOCKS-3P",
            inventory=40,
        ),
        standin.add_product(
            title="Wireless Sport Headphones",
            description="<p>Sweat-proof, eight hours of music per charge.</p>",
            product_type="Electronics",
            image_url=_svg_image("Headphones", "#553c9a"),
            price="59.99",
            sku="HEAD-SPORT",
            inventory=10,
        ),
        standin.add_product(
            title="StepCoin Gift Card",
            description="<p>A gift card for the partner shop.</p>",
            product_type="Gift cards",
            image_url=_svg_image("Gift Card", "#c53030"),
            variants=[
                VariantSpec("10 EUR", "10.00", "GIFT-10", 100),
                VariantSpec("25 EUR", "25.00", "GIFT-25", 100),
            ],
        ),
        standin.add_product(
            title="Fitness Band",
            description="<p>Counts steps, heart rate and sleep; a week per charge.</p>",
            product_type="Electronics",
            image_url=_svg_image("Fitness Band", "#2c7a7b"),
            price="39.00",
            sku="BAND-FIT",
            inventory=15,
        ),
    ]


# -- running it -----------------------------------------------------------------------------------


@contextlib.contextmanager
def serve_in_thread(
    standin: ShopifyStandIn, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[str]:
    """Serve the stand-in over real HTTP from a background thread; yields its base URL."""
    import uvicorn

    config = uvicorn.Config(
        standin.build_app(), host=host, port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="shopify-standin", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the Shopify stand-in did not start")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def main(argv: Sequence[str] | None = None) -> None:
    """The standalone server: --port P [--token T] [--webhook-url U --webhook-secret S] [--demo]."""
    parser = argparse.ArgumentParser(
        prog="python -m stepcoin.shop.standin",
        description="A local Shopify Admin GraphQL stand-in for StepCoin.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument(
        "--token", default=STANDIN_ACCESS_TOKEN, help="accepted X-Shopify-Access-Token"
    )
    parser.add_argument("--shop-domain", default=STANDIN_SHOP_DOMAIN)
    parser.add_argument("--api-version", default=DEFAULT_API_VERSION)
    parser.add_argument("--webhook-url", help="where signed webhooks are POSTed")
    parser.add_argument("--webhook-secret", help="the app secret that signs webhooks")
    parser.add_argument("--demo", action="store_true", help="start with the demo catalogue")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    if bool(args.webhook_url) != bool(args.webhook_secret):
        parser.error("--webhook-url and --webhook-secret go together")

    import uvicorn

    standin = ShopifyStandIn(
        access_token=args.token, shop_domain=args.shop_domain, api_version=args.api_version
    )
    if args.demo:
        demo_catalogue(standin)  # the shop's existing catalogue: no webhooks for it
    standin.configure_webhooks(args.webhook_url, args.webhook_secret)
    print(
        f"Shopify stand-in on http://{args.host}:{args.port}{standin.graphql_path} "
        f"({len(standin.products)} products)",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(standin.build_app(), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()

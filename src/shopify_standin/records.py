"""What the stand-in shop holds: products, variants, orders, and their ids and times."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

LOCATION_ID = 70_000_000_001


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

"""Request and response bodies of the shop."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal

import pycountry
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stepcoin.validation import NOT_BLANK, Int64

OrderStatus = Literal[
    "pending",
    "submitted",
    "fulfilled",
    "shipped",
    "delivered",
    "cancelled",
    "failed",
    "cancel_requested",
    "held",
]


class ProductOut(BaseModel):
    id: int
    title: str
    description: str | None
    image_url: str | None
    category: str | None
    coin_price: int
    stock_quantity: int
    is_active: bool


class ProductListOut(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None


class ShippingAddress(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200, json_schema_extra=NOT_BLANK)
    line1: str = Field(min_length=1, max_length=200, json_schema_extra=NOT_BLANK)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100, json_schema_extra=NOT_BLANK)
    region: str | None = Field(default=None, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9 \-]+$")
    country: str = Field(
        description="ISO 3166-1 alpha-2 code, e.g. DE or US.",
        json_schema_extra={"enum": [*sorted(str(c.alpha_2) for c in pycountry.countries)]},
    )
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9 ()\-]{5,32}$")

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        code = value.strip().upper()
        if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
            raise ValueError("must be an ISO 3166-1 alpha-2 country code such as DE or US")
        return code


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: Int64 = Field(ge=1)
    quantity: int = Field(ge=1, le=1000)


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[OrderItemIn] = Field(min_length=1, max_length=100)
    shipping_address: ShippingAddress

    @model_validator(mode="after")
    def _distinct_products(self) -> OrderIn:
        ids = [item.product_id for item in self.items]
        if len(ids) != len(set(ids)):
            raise ValueError("each product may appear once; use quantity for more")
        return self


class OrderItemOut(BaseModel):
    product_id: int
    title: str
    quantity: int
    coin_price: int


class OrderOut(BaseModel):
    id: uuid.UUID
    order_code: str
    status: OrderStatus
    total_coins: int
    items: list[OrderItemOut]
    shipping_address: ShippingAddress
    tracking_numbers: list[str] = []
    created_at: datetime
    updated_at: datetime
    cancel_requested_at: datetime | None = Field(
        default=None, description="When the walker asked to cancel an order already in Shopify."
    )
    cancel_refused_reason: str | None = Field(
        default=None,
        description="Why Shopify refused the last cancel request (the order kept its status).",
    )


class OrderListOut(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10_000)
    image_url: str | None = Field(default=None, max_length=2000)
    category: str | None = Field(default=None, max_length=100)
    coin_price: int = Field(ge=1, le=100_000_000)
    stock_quantity: int = Field(ge=0, le=10_000_000)
    is_active: bool = True
    price_amount: Decimal | None = Field(default=None, ge=0, max_digits=12, decimal_places=2)


class ProductUpdate(BaseModel):
    """Admin edits: the coin price (sticks over syncs), a stock override, active or not."""

    model_config = ConfigDict(extra="forbid")

    coin_price: int | None = Field(default=None, ge=1, le=100_000_000)
    stock_quantity: int | None = Field(default=None, ge=0, le=10_000_000)
    is_active: bool | None = None
    title: str | None = Field(default=None, min_length=1, max_length=300)
    category: str | None = Field(default=None, max_length=100)
    release_overrides: bool = Field(
        default=False, description="Let the next Shopify sync set price and stock again."
    )


class AdminOrderUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: OrderStatus
    note: str | None = Field(default=None, max_length=1000)

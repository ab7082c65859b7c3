"""The reward catalogue (synced from Shopify) and orders paid in coins."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from stepcoin.db import Base

ORDER_STATUSES = (
    "pending",
    "submitted",
    "fulfilled",
    "shipped",
    "delivered",
    "cancelled",
    "failed",
    "cancel_requested",
    "held",  # a low trust score: waits for a reviewer before it goes to the shop (fairplay)
)
# the orders Shopify holds that may still move there: the poll reads them back (shop.tasks)
POLLED_STATUSES = ("submitted", "fulfilled", "shipped", "cancel_requested")
# ...those that can no longer move coins (Shopify cancels only an unfulfilled order) last:
# the poll's first sort key, so that fulfilled and shipped orders never marked delivered,
# which pile up with every order ever sent, never hold back a submitted order's refund
POLLED_LAST = "(status IN ('fulfilled', 'shipped'))"


class RewardProduct(Base):
    __tablename__ = "reward_products"
    __table_args__ = (
        CheckConstraint("stock_quantity >= 0", name="stock_non_negative"),
        CheckConstraint("coin_price > 0", name="coin_price_positive"),
        UniqueConstraint("shopify_variant_id"),
        Index("ix_reward_products_active_category", "is_active", "category"),
        Index("ix_reward_products_shopify_product_id", "shopify_product_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    shopify_product_id: Mapped[str | None] = mapped_column(String(100))
    shopify_variant_id: Mapped[str | None] = mapped_column(String(100))
    shopify_inventory_item_id: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(Text)
    price_amount: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    coin_price: Mapped[int] = mapped_column(Integer)
    coin_price_overridden: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    stock_quantity: Mapped[int] = mapped_column(Integer, server_default="0")
    category: Mapped[str | None] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    stock_overridden: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    shopify_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    inventory_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        # every key carries user_id (issue 19 item 4: distributable by user on Citus), leading
        # with the column looked up without the walker (by id, by order code): one node keeps
        # those look-ups on the index. An order code is unique per walker here; across walkers
        # the order-code directory keeps it unique (issue 19 item 4, part B).
        PrimaryKeyConstraint("id", "user_id", name="pk_orders"),
        UniqueConstraint("order_code", "user_id"),
        UniqueConstraint("user_id", "idempotency_key"),
        CheckConstraint(f"status IN {ORDER_STATUSES}", name="status"),
        CheckConstraint("total_coins > 0", name="total_positive"),
        Index("ix_orders_user_created", "user_id", "created_at"),
        Index("ix_orders_status_created", "status", "created_at"),
        Index("ix_orders_shopify_order_id", "shopify_order_id"),
        # what the Shopify poll reads, in its order (shop.tasks.POLLED_ORDERS; migrations 0056,
        # 0058: not the orders whose poll ended)
        Index(
            "ix_orders_awaiting_shopify",
            # POLLED_LAST as PostgreSQL writes it back (what the schema comparison reads)
            text(
                "status::text = ANY (ARRAY['fulfilled'::character varying, "
                "'shipped'::character varying]::text[])"
            ),
            "updated_at",
            postgresql_where=text(
                f"status IN {POLLED_STATUSES} AND shopify_order_id IS NOT NULL "
                "AND shopify_poll_ended_at IS NULL"
            ),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), server_default=text("gen_random_uuid()")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="RESTRICT")
    )
    order_code: Mapped[str] = mapped_column(String(16))
    total_coins: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    shipping_address: Mapped[Any] = mapped_column(JSONB)
    shopify_order_id: Mapped[str | None] = mapped_column(String(100))
    shopify_order_name: Mapped[str | None] = mapped_column(String(100))
    shopify_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    tracking_numbers: Mapped[list[str]] = mapped_column(
        ARRAY(String(200)), server_default=text("'{}'::varchar[]")
    )
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fulfilled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # a cancel after the order reached Shopify is a request until Shopify confirms it
    cancel_previous_status: Mapped[str | None] = mapped_column(String(16))
    # held for review by the walker's trust score (stepcoin.fairplay), and released by staff
    held_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_refused_reason: Mapped[str | None] = mapped_column(Text)
    # when the Shopify poll stopped reading the order back: still fulfilled or shipped
    # shop.tasks.POLL_SHIPPED_DAYS after it shipped (a webhook still moves it; migration 0058)
    shopify_poll_ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        # the walker's id, copied from the order, so the items live with the order's walker
        PrimaryKeyConstraint("id", "user_id", name="pk_order_items"),
        UniqueConstraint("order_id", "product_id", "user_id"),
        ForeignKeyConstraint(
            ["user_id", "order_id"],
            ["orders.user_id", "orders.id"],
            ondelete="CASCADE",
            name="fk_order_items_user_id_orders",
        ),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("coin_price_at_purchase > 0", name="price_positive"),
        Index("ix_order_items_product_id", "product_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    product_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("reward_products.id", ondelete="RESTRICT")
    )
    quantity: Mapped[int] = mapped_column(Integer)
    coin_price_at_purchase: Mapped[int] = mapped_column(Integer)


# An order webhook's order, as the intake reads it (shop.tasks._gid): the payload's gid, else
# the gid made from its numeric id; the expression of ix_webhook_events_order (on `payload`)
WEBHOOK_ORDER_GID = (
    "coalesce(nullif({e}payload ->> 'admin_graphql_api_id', ''), "
    "'gid://shopify/Order/' || ({e}payload ->> 'id'))"
)


class WebhookEvent(Base):
    """A Shopify webhook delivery, stored before it is handled; its id makes repeats no-ops."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("webhook_id"),
        # topic + resource id + updated_at from the signed body: a replay under a fresh
        # (unsigned) webhook id is still stored once
        UniqueConstraint("content_key"),
        Index(
            "ix_webhook_events_unprocessed",
            "received_at",
            postgresql_where=text("processed_at IS NULL"),
        ),
        # an order webhook by its order (WEBHOOK_ORDER_GID, as PostgreSQL writes it back: what
        # the schema comparison reads); account deletion's erasure reads it (migration 0060)
        Index(
            "ix_webhook_events_order",
            text(
                "COALESCE(NULLIF(payload ->> 'admin_graphql_api_id'::text, ''::text), "
                "'gid://shopify/Order/'::text || (payload ->> 'id'::text))"
            ),
            postgresql_where=text("topic LIKE 'orders/%'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(100))
    shop_domain: Mapped[str | None] = mapped_column(String(255))
    content_key: Mapped[str | None] = mapped_column(String(400))
    payload: Mapped[Any] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(Text)


class ShopSyncRun(Base):
    """One catalogue sync from Shopify and its outcome (shown in the admin console)."""

    __tablename__ = "shop_sync_runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="status"),
        Index("ix_shop_sync_runs_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    trigger: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), server_default="running")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    products_seen: Mapped[int] = mapped_column(Integer, server_default="0")
    created: Mapped[int] = mapped_column(Integer, server_default="0")
    updated: Mapped[int] = mapped_column(Integer, server_default="0")
    deactivated: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)

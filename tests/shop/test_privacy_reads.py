"""Account deletion's erasure of the stored order webhooks finds them by the order they are
about, through their index (migration 0060): before, every order webhook kept was read."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.shop.privacy import erase_shipping_addresses
from tests.fixtures.plans import plan_with, recorded

KEPT = 20_000


async def test_the_webhook_erasure_reads_the_walkers_orders_webhooks_only(engine):
    async with engine.connect() as conn, conn.begin() as transaction:
        await conn.execute(
            text(
                "INSERT INTO webhook_events (webhook_id, topic, payload, processed_at) "
                "SELECT 'kept-' || n, 'orders/updated', jsonb_build_object('id', n, "
                "'admin_graphql_api_id', 'gid://shopify/Order/' || n), now() "
                "FROM generate_series(1, :n) n"
            ),
            {"n": KEPT},
        )
        await conn.execute(text("ANALYZE webhook_events"))
        session = AsyncSession(bind=conn)
        with recorded(engine, "webhook_events") as statements:
            await erase_shipping_addresses(session, uuid.uuid4())
        assert len(statements) == 1
        plan = await plan_with(conn, *statements[0])
        await transaction.rollback()
    assert "Seq Scan on webhook_events" not in plan, plan
    assert "ix_webhook_events_order" in plan, plan

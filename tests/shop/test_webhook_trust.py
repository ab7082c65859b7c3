"""Issue 12 hole 5 (rest): a signed webhook must come from the configured shop, cannot push a
future updated_at that blocks the real sync, and a replay of the same signed content under a
fresh webhook id is stored and applied once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import text

from stepcoin.config import Settings
from stepcoin.shop.runtime import expected_shop_domain
from stepcoin.shop.tasks import sync_catalogue
from tests.shop.conftest import run_jobs
from tests.shop.test_shopify_flow import _deliver, products, vgid


async def stored(engine) -> list[str]:
    async with engine.connect() as conn:
        return list(
            (await conn.execute(text("SELECT webhook_id FROM webhook_events ORDER BY id")))
            .scalars()
            .all()
        )


def _product_body(product_id: int, variant_id: int, *, price: str, updated_at: str) -> bytes:
    return orjson.dumps(
        {
            "id": product_id,
            "title": "Bottle",
            "status": "active",
            "updated_at": updated_at,
            "variants": [
                {"id": variant_id, "title": "Default", "price": price, "inventory_quantity": 999}
            ],
        }
    )


async def test_a_webhook_from_another_shop_is_refused(client, engine):
    body = b'{"id": 1, "title": "x", "updated_at": "2026-01-01T00:00:00Z", "variants": []}'
    other = await _deliver(
        client, body, topic="products/update", webhook_id="w-a", shop_domain="evil.myshopify.com"
    )
    assert other.status_code == 403 and other.json()["code"] == "wrong_shop_domain"
    missing = await _deliver(
        client, body, topic="products/update", webhook_id="w-b", shop_domain=""
    )
    assert missing.status_code == 403 and missing.json()["code"] == "wrong_shop_domain"
    assert await stored(engine) == []
    ok = await _deliver(client, body, topic="products/update", webhook_id="w-c")
    assert ok.status_code == 200
    assert await stored(engine) == ["w-c"]


def test_the_expected_shop_is_the_configured_one():
    real = Settings(
        env="production",
        jwt_secret="a-production-jwt-secret-of-forty-characters",
        shopify_shop_domain="Real-Shop.myshopify.com",
        shopify_access_token="shpat_real",
        shopify_webhook_secrets=["a-real-webhook-secret"],
    )
    assert expected_shop_domain(real) == "real-shop.myshopify.com"
    no_shop = Settings(env="production", jwt_secret="a-production-jwt-secret-of-forty-characters")
    assert expected_shop_domain(no_shop) is None


async def test_a_replay_under_a_fresh_webhook_id_is_stored_once(client, app, engine, standin):
    bottle = standin.add_product(title="Bottle", price="12.50", inventory=20)
    await sync_catalogue(app.state.database, trigger="test")
    body = _product_body(
        bottle.id, bottle.variants[0].id, price="13.00", updated_at=datetime.now(UTC).isoformat()
    )
    first = await _deliver(client, body, topic="products/update", webhook_id="fresh-1")
    assert first.json()["status"] == "accepted"
    for n in range(2, 5):  # the same signed body, a new unsigned id each time
        replay = await _deliver(client, body, topic="products/update", webhook_id=f"fresh-{n}")
        assert replay.status_code == 200 and replay.json() == {"status": "duplicate"}
    assert [w for w in await stored(engine) if w.startswith("fresh-")] == ["fresh-1"]
    await run_jobs(app)
    assert (await products(engine))[vgid(bottle.variants[0])]["coin_price"] == 1300


async def test_a_future_updated_at_cannot_block_the_real_sync(client, app, engine, standin):
    bottle = standin.add_product(title="Bottle", price="12.50", inventory=20)
    await sync_catalogue(app.state.database, trigger="test")
    future = (datetime.now(UTC) + timedelta(days=3650)).isoformat()
    forged = _product_body(bottle.id, bottle.variants[0].id, price="0.01", updated_at=future)
    answer = await _deliver(client, forged, topic="products/update", webhook_id="odd-1")
    assert answer.status_code == 200
    await run_jobs(app)
    row = (await products(engine))[vgid(bottle.variants[0])]
    assert row["shopify_updated_at"] <= datetime.now(UTC) + timedelta(minutes=5)
    # the real shop's next change wins again
    standin.update_product(bottle.id, price="15.00")
    await sync_catalogue(app.state.database, trigger="test")
    assert (await products(engine))[vgid(bottle.variants[0])]["coin_price"] == 1500

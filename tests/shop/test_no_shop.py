"""Production without a shop: scheduled catalogue syncs do nothing instead of failing."""

from __future__ import annotations

from stepcoin.config import Settings
from stepcoin.shop import tasks
from stepcoin.shop.runtime import shop_available

SECRET = "a-production-jwt-secret-of-forty-characters"


def test_a_shop_is_available_everywhere_but_production_without_one():
    assert not shop_available(Settings(env="production", jwt_secret=SECRET))
    assert shop_available(
        Settings(
            env="production",
            jwt_secret=SECRET,
            shopify_shop_domain="real-shop.myshopify.com",
            shopify_access_token="shpat_real",
            shopify_webhook_secrets=["a-real-webhook-secret"],
        )
    )
    assert shop_available(Settings(env="development"))  # the stand-in


async def test_the_scheduled_sync_skips_without_a_shop(engine, monkeypatch):
    monkeypatch.setattr(
        tasks, "get_settings", lambda: Settings(env="production", jwt_secret=SECRET)
    )
    assert await tasks.sync_catalogue_if_due(timestamp=0) is False
    async with engine.connect() as conn:
        from sqlalchemy import text

        runs = (await conn.execute(text("SELECT count(*) FROM shop_sync_runs"))).scalar_one()
    assert runs == 0

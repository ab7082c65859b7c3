"""Which Shopify the process talks to: the real shop, or the local stand-in (demo and tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stepcoin.config import Settings

STANDIN_DOMAIN = "stepcoin-demo.myshopify.com"
STANDIN_TOKEN = "standin-access-token"
STANDIN_WEBHOOK_SECRET = "standin-webhook-secret"

_factory_override: Callable[[], Any] | None = None
_standin: Any = None


def override_client_factory(factory: Callable[[], Any] | None) -> None:
    """Tests point every job at their own stand-in (or a failing client)."""
    global _factory_override
    _factory_override = factory


def local_standin() -> Any:
    """The process's in-memory stand-in with the demo catalogue (created on first use)."""
    global _standin
    if _standin is None:
        from stepcoin.shop.standin import ShopifyStandIn, demo_catalogue

        _standin = ShopifyStandIn(access_token=STANDIN_TOKEN, shop_domain=STANDIN_DOMAIN)
        demo_catalogue(_standin)
    return _standin


def shopify_client(settings: Settings) -> Any:
    """A ShopifyClient; with no shop configured, one wired in-process to the stand-in."""
    import httpx

    from stepcoin.shop.shopify import ShopifyClient

    if _factory_override is not None:
        return _factory_override()
    if settings.shopify_api_url:  # a stand-in in another process (tests that kill workers)
        return ShopifyClient.from_settings(settings, base_url=settings.shopify_api_url)
    if settings.uses_shopify_standin:
        standin = local_standin()
        return ShopifyClient(
            shop_domain=STANDIN_DOMAIN,
            access_token=STANDIN_TOKEN,
            api_version=settings.shopify_api_version,
            transport=httpx.ASGITransport(app=standin.build_app()),
            base_url=f"http://{STANDIN_DOMAIN}/admin/api/{settings.shopify_api_version}/graphql.json",
        )
    return ShopifyClient.from_settings(settings)


def webhook_secrets(settings: Settings) -> list[str]:
    if settings.shopify_webhook_secrets:
        return list(settings.shopify_webhook_secrets)
    return [STANDIN_WEBHOOK_SECRET] if settings.uses_shopify_standin else []

"""Which Shopify the process talks to: the real shop, the local stand-in, or none.

- A real shop: STEPCOIN_SHOPIFY_SHOP_DOMAIN and STEPCOIN_SHOPIFY_ACCESS_TOKEN are set.
- The stand-in (development, demo and tests, when no shop is configured): the separate package
  `shopify_standin`, installed with the `standin` extra (it brings graphql-core). It is
  imported only inside load_standin(), never when a stepcoin module is imported, and never in
  production, where Settings refuse it: a production install does not even contain it.
- No shop (production without a shop): every call to Shopify fails with NoShopConfigured.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx

from stepcoin.config import (
    STANDIN_ACCESS_TOKEN,
    STANDIN_SHOP_DOMAIN,
    STANDIN_WEBHOOK_SECRET,
    Settings,
)
from stepcoin.shop.shopify import ShopifyClient, ShopifyError

if TYPE_CHECKING:  # types only: importing it here would load graphql-core in every process
    from shopify_standin import ShopifyStandIn

STANDIN_INSTALL = "pip install -e '.[standin]'"

_factory_override: Callable[[], Any] | None = None
_standin: ShopifyStandIn | None = None


class StandInNotInstalled(RuntimeError):
    """The stand-in is needed (no shop configured) but its package is not installed."""


class NoShopConfigured(ShopifyError):
    """Production without a shop: there is no Shopify to talk to."""


def load_standin(settings: Settings) -> ModuleType:
    """The `shopify_standin` package, imported now (development, demo and tests only).

    Imported here and not at the top of the module on purpose: the stand-in and graphql-core
    are development tools (the `standin` extra), so a production process must never load them.
    """
    if settings.env == "production":  # Settings already refuse it; a second lock on the door
        raise RuntimeError("the Shopify stand-in is never used in production")
    try:
        return importlib.import_module("shopify_standin")
    except ImportError as exc:
        raise StandInNotInstalled(
            "No Shopify shop is configured, so StepCoin uses its local Shopify stand-in, which "
            f"is not installed ({exc}). Install it with: {STANDIN_INSTALL} (scripts/start.sh "
            "does), or configure a shop with STEPCOIN_SHOPIFY_SHOP_DOMAIN and "
            "STEPCOIN_SHOPIFY_ACCESS_TOKEN."
        ) from exc


def require_standin(settings: Settings) -> None:
    """At start-up: fail early, with the install command, if the in-process stand-in is needed
    and missing (a stand-in in another process, STEPCOIN_SHOPIFY_API_URL, needs nothing)."""
    if settings.uses_shopify_standin and not settings.shopify_api_url:
        load_standin(settings)


def override_client_factory(factory: Callable[[], Any] | None) -> None:
    """Tests point every job at their own stand-in (or a failing client)."""
    global _factory_override
    _factory_override = factory


def local_standin(settings: Settings) -> ShopifyStandIn:
    """The process's in-memory stand-in with the demo catalogue (created on first use)."""
    global _standin
    if _standin is None:
        standin = load_standin(settings)
        shop: ShopifyStandIn = standin.ShopifyStandIn(
            access_token=STANDIN_ACCESS_TOKEN, shop_domain=STANDIN_SHOP_DOMAIN
        )
        standin.demo_catalogue(shop)
        _standin = shop
    return _standin


def shop_available(settings: Settings) -> bool:
    """A shop answers: a real one, the stand-in, or a test's client. False only in production
    without a shop, where scheduled syncs have nothing to do."""
    return bool(
        _factory_override is not None
        or settings.shopify_api_url
        or settings.uses_shopify_standin
        or settings.shopify_shop_configured
    )


def shopify_client(settings: Settings) -> Any:
    """A ShopifyClient; with no shop configured, one wired in-process to the stand-in."""
    if _factory_override is not None:
        return _factory_override()
    if settings.shopify_api_url:  # a stand-in in another process (tests that kill workers)
        return ShopifyClient.from_settings(settings, base_url=settings.shopify_api_url)
    if settings.uses_shopify_standin:
        standin = local_standin(settings)
        version = settings.shopify_api_version
        return ShopifyClient(
            shop_domain=STANDIN_SHOP_DOMAIN,
            access_token=STANDIN_ACCESS_TOKEN,
            api_version=version,
            transport=httpx.ASGITransport(app=standin.build_app()),
            base_url=f"http://{STANDIN_SHOP_DOMAIN}/admin/api/{version}/graphql.json",
        )
    if not settings.shopify_shop_configured:
        raise NoShopConfigured(
            "no Shopify shop is configured (STEPCOIN_SHOPIFY_SHOP_DOMAIN and "
            "STEPCOIN_SHOPIFY_ACCESS_TOKEN)"
        )
    return ShopifyClient.from_settings(settings)


def webhook_secrets(settings: Settings) -> list[str]:
    """The secrets a webhook may be signed with: the configured ones, else the stand-in's."""
    if settings.shopify_webhook_secrets:
        return list(settings.shopify_webhook_secrets)
    return [STANDIN_WEBHOOK_SECRET] if settings.uses_shopify_standin else []


def expected_shop_domain(settings: Settings) -> str | None:
    """The shop whose webhooks are accepted (X-Shopify-Shop-Domain): the configured one, the
    stand-in's where the stand-in is used, else none (every webhook is refused)."""
    if settings.shopify_shop_domain:
        return settings.shopify_shop_domain.strip().lower()
    return STANDIN_SHOP_DOMAIN if settings.uses_shopify_standin else None

"""A local Shopify stand-in that speaks the Admin GraphQL protocol for the parts StepCoin uses.

Queries are validated and executed by graphql-core against an SDL that is a faithful subset of
Shopify's Admin schema (same type, field, argument and enum names), so a misspelt field fails
here as it would on Shopify. Answers carry `extensions.cost` from a leaky cost bucket; a query
above 1,000 points is refused like on Shopify. Changes made through the control methods send
signed webhooks (X-Shopify-* headers, REST-style JSON bodies) to a configured URL.

A development and test tool, kept out of the product: StepCoin imports it only in development,
demo and test modes (install it with `pip install -e '.[standin]'`); a production process never
does. It knows nothing of StepCoin, only of Shopify.

Modules: schema (the SDL), records (what the shop holds), store (ShopifyStandIn: state, control
methods, GraphQL execution), admin_api (resolvers, pagination, query cost), webhooks (bodies,
signatures, senders), app (the ASGI app and serve_in_thread), demo (a demo catalogue).

Run it alone: python -m shopify_standin --port 8787 --demo
"""

from shopify_standin.app import serve_in_thread
from shopify_standin.demo import demo_catalogue
from shopify_standin.records import (
    StandInError,
    StandInFulfillment,
    StandInLineItem,
    StandInOrder,
    StandInProduct,
    StandInVariant,
    VariantSpec,
)
from shopify_standin.schema import SCHEMA_SDL, admin_schema
from shopify_standin.store import (
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_API_VERSION,
    DEFAULT_SHOP_DOMAIN,
    ShopifyStandIn,
)
from shopify_standin.webhooks import (
    WebhookDelivery,
    WebhookSender,
    asgi_webhook_sender,
    http_webhook_sender,
    sign,
)

__all__ = [
    "DEFAULT_ACCESS_TOKEN",
    "DEFAULT_API_VERSION",
    "DEFAULT_SHOP_DOMAIN",
    "SCHEMA_SDL",
    "ShopifyStandIn",
    "StandInError",
    "StandInFulfillment",
    "StandInLineItem",
    "StandInOrder",
    "StandInProduct",
    "StandInVariant",
    "VariantSpec",
    "WebhookDelivery",
    "WebhookSender",
    "admin_schema",
    "asgi_webhook_sender",
    "demo_catalogue",
    "http_webhook_sender",
    "serve_in_thread",
    "sign",
]

"""The standalone server: python -m shopify_standin --port 8787 --demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shopify_standin.demo import demo_catalogue
from shopify_standin.store import (
    DEFAULT_ACCESS_TOKEN,
    DEFAULT_API_VERSION,
    DEFAULT_SHOP_DOMAIN,
    ShopifyStandIn,
)


def main(argv: Sequence[str] | None = None) -> None:
    """The standalone server: --port P [--token T] [--webhook-url U --webhook-secret S] [--demo]."""
    parser = argparse.ArgumentParser(
        prog="python -m shopify_standin",
        description="A local Shopify Admin GraphQL stand-in for StepCoin.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument(
        "--token", default=DEFAULT_ACCESS_TOKEN, help="accepted X-Shopify-Access-Token"
    )
    parser.add_argument("--shop-domain", default=DEFAULT_SHOP_DOMAIN)
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

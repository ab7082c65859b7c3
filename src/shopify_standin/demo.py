"""A demo catalogue: six friendly rewards with prices, images, categories and stock."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING

from shopify_standin.records import StandInProduct, VariantSpec

if TYPE_CHECKING:
    from shopify_standin.store import ShopifyStandIn


def _svg_image(label: str, colour: str) -> str:
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' width='400' height='400' viewBox='0 0 400 400'>"
        f"<rect width='400' height='400' rx='48' fill='{colour}'/>"
        "<text x='200' y='215' font-family='Helvetica,Arial,sans-serif' font-size='34' "
        f"fill='white' text-anchor='middle'>{label}</text></svg>"
    )
    return "data:image/svg+xml;utf8," + urllib.parse.quote(svg, safe="/:=',")


def demo_catalogue(standin: ShopifyStandIn) -> list[StandInProduct]:
    """Six friendly rewards with prices, images, categories and stock."""
    return [
        standin.add_product(
            title="Trail Runner Shoes",
            description="<p>Light, grippy shoes for the next ten thousand steps.</p>",
            product_type="Footwear",
            image_url=_svg_image("Trail Runners", "#2f7d4f"),
            variants=[
                VariantSpec("EU 40", "89.00", "SHOE-TR-40", 5),
                VariantSpec("EU 42", "89.00", "SHOE-TR-42", 8),
                VariantSpec("EU 44", "89.00", "SHOE-TR-44", 3),
            ],
        ),
        standin.add_product(
            title="Insulated Water Bottle",
            description="<p>750 ml, keeps water cold for 24 hours.</p>",
            product_type="Accessories",
            image_url=_svg_image("Water Bottle", "#2b6cb0"),
            price="24.50",
            sku="BOTTLE-750",
            inventory=25,
        ),
        standin.add_product(
            title="Cushioned Running Socks (3 pairs)",
            description="<p>Breathable socks with a cushioned sole.</p>",
            product_type="Apparel",
            image_url=_svg_image("Running Socks", "#b7791f"),
            price="14.00",
            sku="SOCKS-3P",
            inventory=40,
        ),
        standin.add_product(
            title="Wireless Sport Headphones",
            description="<p>Sweat-proof, eight hours of music per charge.</p>",
            product_type="Electronics",
            image_url=_svg_image("Headphones", "#553c9a"),
            price="59.99",
            sku="HEAD-SPORT",
            inventory=10,
        ),
        standin.add_product(
            title="StepCoin Gift Card",
            description="<p>A gift card for the partner shop.</p>",
            product_type="Gift cards",
            image_url=_svg_image("Gift Card", "#c53030"),
            variants=[
                VariantSpec("10 EUR", "10.00", "GIFT-10", 100),
                VariantSpec("25 EUR", "25.00", "GIFT-25", 100),
            ],
        ),
        standin.add_product(
            title="Fitness Band",
            description="<p>Counts steps, heart rate and sleep; a week per charge.</p>",
            product_type="Electronics",
            image_url=_svg_image("Fitness Band", "#2c7a7b"),
            price="39.00",
            sku="BAND-FIT",
            inventory=15,
        ),
    ]

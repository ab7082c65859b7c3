"""Console shop pages: products and their Shopify sync, orders, status changes, refunds."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from stepcoin.console.pages import orders as orders_page
from tests.console.helpers import post_form
from tests.shop import conftest as shop_conftest
from tests.shop.helpers import order, product, stock, walker_with_coins
from tests.steps.helpers import ledger_ok

standin = shop_conftest.standin  # the Shopify stand-in fixture of the shop tests
run_jobs = shop_conftest.run_jobs


async def follow(c: httpx.AsyncClient, response: httpx.Response) -> str:
    """The page a form's 303 leads to (with its flash message)."""
    assert response.status_code == 303, response.text
    page = await c.get(response.headers["location"])
    assert page.status_code == 200, page.text
    return page.text


async def scalar(engine: Any, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def product_row(engine: Any, product_id: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    text(
                        "SELECT coin_price, stock_quantity, is_active, coin_price_overridden, "
                        "stock_overridden FROM reward_products WHERE id = :id"
                    ),
                    {"id": product_id},
                )
            )
            .mappings()
            .one()
        )
    return dict(row)


# --- products ---------------------------------------------------------------------------------


async def test_products_page_lists_products_with_filter_search_and_pages(console, engine):
    bottle = await product(engine, title="Water bottle", price=150, stock=7, shopify=True)
    await product(engine, title="Old socks", active=False)
    page = await console.get("/admin/products")
    assert page.status_code == 200
    assert f'data-product-id="{bottle}"' in page.text and "Old socks" in page.text
    assert "No sync has run yet" in page.text and 'id="sync-now"' in page.text
    active = await console.get("/admin/products?show=active")
    assert "Water bottle" in active.text and "Old socks" not in active.text
    inactive = await console.get("/admin/products?show=inactive")
    assert "Water bottle" not in inactive.text and "Old socks" in inactive.text
    found = await console.get("/admin/products?q=bott")
    assert "Water bottle" in found.text and "Old socks" not in found.text
    wildcard = await console.get("/admin/products?q=%25")  # a literal %, not "anything"
    assert "Water bottle" not in wildcard.text


async def test_products_are_paginated(console, engine, monkeypatch):
    from stepcoin.console.pages import products as products_page

    monkeypatch.setattr(products_page, "PAGE_SIZE", 2)
    ids = [await product(engine, title=f"Thing {i}") for i in range(3)]
    first = await console.get("/admin/products")
    assert all(f'data-product-id="{i}"' in first.text for i in ids[:2])
    assert f'data-product-id="{ids[2]}"' not in first.text
    next_url = re.search(r'href="([^"]+)" class="next"', first.text)
    assert next_url
    second = await console.get(next_url.group(1).replace("&amp;", "&"))
    assert f'data-product-id="{ids[2]}"' in second.text
    assert f'data-product-id="{ids[0]}"' not in second.text


async def test_admin_edits_price_stock_and_active_and_it_is_audited(console, engine):
    bottle = await product(engine, price=100, stock=10, shopify=True)
    url = f"/admin/products/{bottle}"
    response = await post_form(
        console, url, url, {"coin_price": "250", "stock_quantity": "3", "is_active": "1"}
    )
    assert "Product saved." in await follow(console, response)
    row = await product_row(engine, bottle)
    assert row["coin_price"] == 250 and row["stock_quantity"] == 3 and row["is_active"]
    assert row["coin_price_overridden"] and row["stock_overridden"]
    async with engine.connect() as conn:
        log = (
            (
                await conn.execute(
                    text(
                        "SELECT admin_id, action, changes FROM admin_logs "
                        "WHERE entity_type = 'product' AND entity_id = :id"
                    ),
                    {"id": str(bottle)},
                )
            )
            .mappings()
            .one()
        )
    assert str(log["admin_id"]) == console.account["user"]["id"]
    assert log["action"] == "product.update"
    assert log["changes"]["before"]["coin_price"] == 100
    assert log["changes"]["after"]["coin_price"] == 250
    page = await console.get(url)
    assert 'data-coin-price="250"' in page.text and "product.update" in page.text

    # Unticking "active" alone deactivates without pinning anything else.
    other = await product(engine, price=100, stock=10, shopify=True)
    response = await post_form(
        console,
        f"/admin/products/{other}",
        f"/admin/products/{other}",
        {"coin_price": "100", "stock_quantity": "10"},
    )
    await follow(console, response)
    assert await product_row(engine, other) == {
        "coin_price": 100,
        "stock_quantity": 10,
        "is_active": False,
        "coin_price_overridden": False,
        "stock_overridden": False,
    }


async def test_release_overrides_hands_price_and_stock_back(console, engine):
    bottle = await product(engine, price=100, stock=10, shopify=True)
    url = f"/admin/products/{bottle}"
    await post_form(
        console, url, url, {"coin_price": "300", "stock_quantity": "10", "is_active": "1"}
    )
    both = await post_form(
        console,
        url,
        url,
        {"coin_price": "400", "stock_quantity": "10", "is_active": "1", "release_overrides": "1"},
    )
    assert "not both" in await follow(console, both)
    assert (await product_row(engine, bottle))["coin_price"] == 300
    released = await post_form(
        console,
        url,
        url,
        {"coin_price": "300", "stock_quantity": "10", "is_active": "1", "release_overrides": "1"},
    )
    await follow(console, released)
    assert not (await product_row(engine, bottle))["coin_price_overridden"]


@pytest.mark.parametrize(
    ("price", "stock_value", "message"),
    [
        ("100", "-1", "Stock must be between 0"),
        ("0", "5", "Coin price must be between 1"),
        ("-20", "5", "Coin price must be between 1"),
        ("12.5", "5", "Coin price must be a whole number"),
        ("lots", "5", "Coin price must be a whole number"),
        ("100", "2.5", "Stock must be a whole number"),
        ("100000001", "5", "Coin price must be between 1"),
    ],
)
async def test_invalid_product_values_are_refused_and_change_nothing(
    console, engine, price, stock_value, message
):
    bottle = await product(engine, price=100, stock=5)
    url = f"/admin/products/{bottle}"
    response = await post_form(
        console, url, url, {"coin_price": price, "stock_quantity": stock_value}
    )
    page = await follow(console, response)
    assert "flash-error" in page and message in page
    assert await product_row(engine, bottle) == {  # not even the unticked "active" box applied
        "coin_price": 100,
        "stock_quantity": 5,
        "is_active": True,
        "coin_price_overridden": False,
        "stock_overridden": False,
    }
    assert (
        await scalar(engine, "SELECT count(*) FROM admin_logs WHERE entity_type = 'product'") == 0
    )


async def test_support_reads_products_but_cannot_edit_or_sync(support_console, engine):
    bottle = await product(engine, price=100, stock=5)
    url = f"/admin/products/{bottle}"
    page = await support_console.get(url)
    assert page.status_code == 200 and 'id="product-edit-form"' not in page.text
    listing = await support_console.get("/admin/products")
    assert listing.status_code == 200 and 'id="sync-now"' not in listing.text
    refused = await post_form(support_console, url, url, {"coin_price": "1", "stock_quantity": "0"})
    assert refused.status_code == 403
    sync = await post_form(support_console, "/admin/products", "/admin/products/sync", {})
    assert sync.status_code == 403
    assert (await product_row(engine, bottle))["coin_price"] == 100
    assert (  # the accounts' verification mails aside
        await scalar(engine, "SELECT count(*) FROM procrastinate_jobs WHERE queue_name <> 'mail'")
        == 0
    )
    assert (
        await scalar(engine, "SELECT count(*) FROM admin_logs WHERE action <> 'console.sign_in'")
        == 0
    )


async def test_sync_now_queues_one_sync_that_the_page_then_reports(app, console, engine, standin):
    standin.add_product(title="Trail shoes", price="59.90", inventory=4)
    response = await post_form(console, "/admin/products", "/admin/products/sync", {})
    assert "Sync queued" in await follow(console, response)
    again = await post_form(console, "/admin/products", "/admin/products/sync", {})
    assert "already queued" in await follow(console, again)
    jobs = await scalar(
        engine,
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'shop:sync_catalogue' "
        "AND queue_name = 'shop' AND args->>'trigger' = 'manual'",
    )
    assert jobs == 1
    assert await scalar(engine, "SELECT count(*) FROM admin_logs WHERE action = 'shop.sync'") == 1
    await run_jobs(app)
    async with engine.connect() as conn:
        run = (
            await conn.execute(text("SELECT trigger, status, products_seen FROM shop_sync_runs"))
        ).one()
    assert tuple(run) == ("manual", "succeeded", 1)  # (the product's webhook may create it first)
    page = await console.get("/admin/products")
    assert 'data-sync-status="succeeded"' in page.text and "Trail shoes" in page.text
    assert 'data-coin-price="5990"' in page.text  # 59.90 x 100 coins per unit


# --- orders -----------------------------------------------------------------------------------


async def placed(client: httpx.AsyncClient, engine: Any, *, coins: int = 1000, price: int = 300):
    """A walker with `coins` who ordered one product at `price`: (walker, order, product)."""
    item = await product(engine, price=price, stock=5)
    walker = await walker_with_coins(client, engine, coins)
    response = await order(client, walker["access_token"], [(item, 1)])
    assert response.status_code == 201, response.text
    return walker, response.json(), item


async def test_orders_list_filters_by_status_and_links_the_walker(console, client, engine):
    walker, first, _ = await placed(client, engine)
    _, second, _ = await placed(client, engine)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE orders SET status = 'shipped', shopify_order_id = 'gid://x/9' "
                "WHERE id = :id"
            ),
            {"id": second["id"]},
        )
    page = await console.get("/admin/orders")
    assert page.status_code == 200
    assert first["order_code"] in page.text and second["order_code"] in page.text
    assert f'href="/admin/users/{walker["user"]["id"]}"' in page.text
    assert page.text.index(second["order_code"]) < page.text.index(first["order_code"])  # newest
    shipped = await console.get("/admin/orders?status=shipped")
    assert f'data-order-code="{second["order_code"]}"' in shipped.text
    assert f'data-order-code="{first["order_code"]}"' not in shipped.text
    assert "gid://x/9" in shipped.text
    by_code = await console.get(
        f"/admin/orders?q={first['order_code'][:4]}-{first['order_code'][4:]}"
    )
    assert f'data-order-code="{first["order_code"]}"' in by_code.text
    assert f'data-order-code="{second["order_code"]}"' not in by_code.text
    bad = await console.get("/admin/orders?status=teleported")
    assert bad.status_code == 422 and "Unknown status" in bad.text


async def test_order_dates_are_days_in_the_admins_time_zone(console, client, engine):
    _, late, _ = await placed(client, engine)
    _, other, _ = await placed(client, engine)
    async with engine.begin() as conn:
        # 03:00 UTC on the 11th is 22:00 on the 10th in New York.
        await conn.execute(
            text("UPDATE orders SET created_at = '2024-01-11T03:00:00Z' WHERE id = :id"),
            {"id": late["id"]},
        )
        await conn.execute(
            text("UPDATE users SET timezone = 'America/New_York' WHERE id = :id"),
            {"id": console.account["user"]["id"]},
        )
    tenth = await console.get("/admin/orders?from=2024-01-10&to=2024-01-10")
    assert f'data-order-code="{late["order_code"]}"' in tenth.text
    assert f'data-order-code="{other["order_code"]}"' not in tenth.text
    assert "2024-01-10 22:00" in tenth.text
    eleventh = await console.get("/admin/orders?from=2024-01-11&to=2024-01-11")
    assert f'data-order-code="{late["order_code"]}"' not in eleventh.text
    since = await console.get("/admin/orders?from=2024-01-11")
    assert f'data-order-code="{other["order_code"]}"' in since.text
    assert f'data-order-code="{late["order_code"]}"' not in since.text
    bad = await console.get("/admin/orders?from=yesterday")
    assert bad.status_code == 422 and "must be a date" in bad.text


async def test_orders_are_paginated_newest_first(console, client, engine, monkeypatch):
    monkeypatch.setattr(orders_page, "PAGE_SIZE", 2)
    codes = [(await placed(client, engine))[1]["order_code"] for _ in range(3)]
    first = await console.get("/admin/orders")
    assert codes[2] in first.text and codes[1] in first.text and codes[0] not in first.text
    next_url = re.search(r'href="([^"]+)" class="next"', first.text)
    assert next_url
    second = await console.get(next_url.group(1).replace("&amp;", "&"))
    assert codes[0] in second.text and codes[1] not in second.text


async def test_order_detail_shows_items_address_and_forms(console, client, engine):
    _, placed_order, item = await placed(client, engine)
    page = await console.get(f"/admin/orders/{placed_order['id']}")
    assert page.status_code == 200
    assert f'data-product-id="{item}"' in page.text and "1 Step Street" in page.text
    assert 'id="order-status-form"' in page.text and 'id="order-cancel-form"' in page.text
    assert 'data-confirm="Cancel order' in page.text
    assert (await console.get("/admin/orders/not-a-uuid")).status_code == 404
    assert (await console.get(f"/admin/orders/{uuid.uuid4()}")).status_code == 404


async def test_cancel_refunds_exactly_once_and_is_audited(console, client, engine):
    walker, placed_order, item = await placed(client, engine, coins=1000, price=300)
    url = f"/admin/orders/{placed_order['id']}"
    assert await stock(engine, item) == 4
    first = await post_form(console, url, f"{url}/cancel", {"reason": "out of stock"})
    assert "cancelled; 300 coins" in await follow(console, first)
    second = await post_form(console, url, f"{url}/cancel", {"reason": "again"})
    assert "cannot become cancelled" in await follow(console, second)
    user_id = walker["user"]["id"]
    assert (
        await scalar(engine, "SELECT available_coins FROM wallets WHERE user_id = :u", u=user_id)
        == 1000
    )
    refunds = await scalar(
        engine,
        "SELECT count(*) FROM coin_transactions WHERE user_id = :u AND transaction_type = 'refund'",
        u=user_id,
    )
    assert refunds == 1
    assert await stock(engine, item) == 5
    assert (
        await scalar(engine, "SELECT status FROM orders WHERE id = :id", id=placed_order["id"])
        == "cancelled"
    )
    async with engine.connect() as conn:
        logs = (
            (
                await conn.execute(
                    text(
                        "SELECT action, admin_id, changes FROM admin_logs "
                        "WHERE entity_type = 'order' AND entity_id = :id"
                    ),
                    {"id": placed_order["id"]},
                )
            )
            .mappings()
            .all()
        )
    assert len(logs) == 1 and logs[0]["action"] == "order.cancelled"
    assert str(logs[0]["admin_id"]) == console.account["user"]["id"]
    assert logs[0]["changes"]["reason"] == "out of stock"
    page = await console.get(url)
    assert page.text.count('data-transaction-type="refund"') == 1
    assert 'id="order-cancel-form"' not in page.text
    await ledger_ok(engine)


async def test_status_moves_forward_only_and_is_audited(console, client, engine):
    walker, placed_order, _ = await placed(client, engine)
    url = f"/admin/orders/{placed_order['id']}"
    moved = await post_form(console, url, f"{url}/status", {"status": "shipped", "note": "by hand"})
    assert "is now shipped" in await follow(console, moved)
    assert (
        await scalar(engine, "SELECT status FROM orders WHERE id = :id", id=placed_order["id"])
        == "shipped"
    )
    assert (
        await scalar(
            engine,
            "SELECT count(*) FROM admin_logs WHERE action = 'order.status' AND entity_id = :id "
            "AND changes->'after'->>'status' = 'shipped' AND changes->>'note' = 'by hand'",
            id=placed_order["id"],
        )
        == 1
    )
    back = await post_form(console, url, f"{url}/status", {"status": "submitted"})
    assert "cannot move to submitted" in await follow(console, back)
    nonsense = await post_form(console, url, f"{url}/status", {"status": "teleported"})
    assert "Choose one of the order statuses" in await follow(console, nonsense)
    late_cancel = await post_form(console, url, f"{url}/cancel", {})
    assert "cannot become cancelled" in await follow(console, late_cancel)
    assert (
        await scalar(engine, "SELECT status FROM orders WHERE id = :id", id=placed_order["id"])
        == "shipped"
    )
    assert (
        await scalar(
            engine, "SELECT available_coins FROM wallets WHERE user_id = :u", u=walker["user"]["id"]
        )
        == 700
    )
    assert await scalar(engine, "SELECT count(*) FROM admin_logs WHERE entity_type = 'order'") == 1


async def test_support_reads_orders_but_cannot_change_them(support_console, client, engine):
    walker, placed_order, _ = await placed(client, engine)
    url = f"/admin/orders/{placed_order['id']}"
    page = await support_console.get(url)
    assert page.status_code == 200 and 'id="order-cancel-form"' not in page.text
    assert (await support_console.get("/admin/orders")).status_code == 200
    cancel = await post_form(support_console, url, f"{url}/cancel", {})
    status = await post_form(support_console, url, f"{url}/status", {"status": "shipped"})
    assert cancel.status_code == status.status_code == 403
    assert (
        await scalar(engine, "SELECT status FROM orders WHERE id = :id", id=placed_order["id"])
        == "pending"
    )
    assert (
        await scalar(
            engine, "SELECT available_coins FROM wallets WHERE user_id = :u", u=walker["user"]["id"]
        )
        == 700
    )

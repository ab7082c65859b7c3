"""The console overview: queue, today's steps, wallets, the 90-day economy, earners, orders."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import text

from tests.admin.helpers import adjust
from tests.conftest import bearer, register
from tests.fixtures.database import REWRITE_HISTORY
from tests.shop.helpers import order, product
from tests.steps.helpers import rec, sync, wallet


def value_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*data-value="([^"]*)"', html)
    assert match, f"no #{element_id} with a data-value"
    return match.group(1)


def section(html: str, element_id: str) -> str:
    """The HTML from the element with this id to the end of its table or div."""
    start = html.index(f'id="{element_id}"')
    end = min(i for i in (html.find("</table>", start), html.find("</svg>", start)) if i > 0)
    return html[start:end]


async def test_overview_figures_match_a_set_up_world(console, client, engine):
    admin = {"headers": bearer(console.account["access_token"])}
    walker_a = await register(client)  # approved 10,000 steps today: 100 coins
    walker_b = await register(client)  # manual entry today: flagged, 50 coins held
    walker_c = await register(client)  # admin adjustments +30 and -5
    walker_d = await register(client)  # approved 8,000 steps yesterday: 80 coins
    await sync(client, walker_a["access_token"], rec(0, 10_000))
    flagged = await sync(client, walker_b["access_token"], rec(0, 5_000, source="manual"))
    assert flagged[0]["status"] == "flagged"
    await sync(client, walker_d["access_token"], rec(1, 8_000))
    assert (await adjust(client, admin, walker_c["user"]["id"], 30)).status_code == 201
    assert (await adjust(client, admin, walker_c["user"]["id"], -5)).status_code == 201
    bottle = await product(engine, price=40)
    cap = await product(engine, price=25, title="Cap")
    assert (await order(client, walker_a["access_token"], [(bottle, 1)])).status_code == 201
    placed = await order(client, walker_a["access_token"], [(cap, 1)])
    assert placed.status_code == 201
    cancelled = await client.post(
        f"/v1/orders/{placed.json()['id']}/cancel", headers=bearer(walker_a["access_token"])
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (await wallet(client, walker_a["access_token"]))["available_coins"] == 60

    page = await console.get("/admin/")
    assert page.status_code == 200
    html = page.text
    assert value_of(html, "queue-size") == "1"
    assert 'id="queue-oldest" data-since="20' in html
    assert value_of(html, "approved-steps-today") == "10000"
    assert "the UTC date" in html
    assert value_of(html, "outstanding-coins") == str(60 + 25 + 80)
    assert value_of(html, "pending-coins") == "50"

    today = datetime.now(UTC).date().isoformat()
    chart = section(html, "economy-chart")
    assert chart.count('<rect class="bar a"') == 90 and chart.count('<rect class="bar b"') == 90
    assert f"{today}: issued 210<" in chart  # 100 + 80 (paid today) + 30
    assert f"{today}: redeemed 65<" in chart  # both orders, gross
    assert 'class="legend' in html
    totals = html[html.index('id="economy-totals"') :]
    for name, coins in (
        ("issued", 210),
        ("redeemed", 65),
        ("refunded", 25),
        ("net-redeemed", 40),
        ("clawed-back", 5),
    ):
        assert re.search(rf'data-total="{name}"><td>[^<]*</td><td class="num">{coins}<', totals)

    earners = section(html, "top-earners")
    ids = re.findall(r'data-user-id="([^"]+)"', earners)
    assert ids == [walker_a["user"]["id"], walker_d["user"]["id"], walker_c["user"]["id"]]
    assert f'href="/admin/users/{walker_a["user"]["id"]}"' in earners

    orders = section(html, "orders-by-status")
    assert re.search(r'data-status="pending">.*?<td class="num">1</td>', orders)
    assert re.search(r'data-status="cancelled">.*?<td class="num">1</td>', orders)
    assert re.search(r'data-status="delivered">.*?<td class="num">0</td>', orders)


async def test_an_empty_world_shows_zeros(console):
    html = (await console.get("/admin/")).text
    assert value_of(html, "queue-size") == "0"
    assert value_of(html, "outstanding-coins") == "0"
    assert value_of(html, "approved-steps-today") == "0"
    assert "Nobody has earned coins yet." in html


async def test_support_can_view_the_overview(support_console, client):
    walker = await register(client)
    await sync(client, walker["access_token"], rec(0, 5_000, source="manual"))
    page = await support_console.get("/admin/")
    assert page.status_code == 200
    assert value_of(page.text, "queue-size") == "1"
    assert 'id="economy-chart"' in page.text


async def test_signed_out_visitors_are_sent_to_sign_in(app):
    from tests.console.helpers import browser_client

    async with browser_client(app) as anonymous:
        response = await anonymous.get("/admin/")
    assert response.status_code == 303 and "/admin/login" in response.headers["location"]


async def test_settled_days_are_stored_once_and_today_stays_live(console, client, engine, app):
    from datetime import UTC, datetime, timedelta

    from stepcoin.console import economy
    from stepcoin.db import session_scope
    from tests.admin.helpers import adjust

    walker = await register(client)
    admin = {"headers": bearer(console.account["access_token"])}
    assert (await adjust(client, admin, walker["user"]["id"], 70, key="k-1")).status_code == 201
    async with engine.begin() as conn:  # that credit happened three days ago
        await conn.execute(text(REWRITE_HISTORY))  # the ledger is append-only
        await conn.execute(
            text("UPDATE coin_transactions SET created_at = now() - interval '3 days'")
        )
    assert (await adjust(client, admin, walker["user"]["id"], 5, key="k-2")).status_code == 201
    noon = datetime.now(UTC).replace(hour=12, minute=0)
    today = noon.date()
    async with session_scope(app.state.database) as session:
        first = await economy.economy(session, today=today, now=noon)
    assert first.issued == 75
    by_day = {d.day: d.issued for d in first.days}
    assert by_day[today - timedelta(days=3)] == 70 and by_day[today] == 5
    async with engine.connect() as conn:
        stored = (await conn.execute(text("SELECT count(*) FROM economy_days"))).scalar_one()
        settled = (
            await conn.execute(
                text("SELECT issued FROM economy_days WHERE day = :d"),
                {"d": today - timedelta(days=3)},
            )
        ).scalar_one()
    assert stored == economy.ECONOMY_DAYS - 1 and settled == 70
    # a new credit today is live; the settled days are read, not summed again
    assert (await adjust(client, admin, walker["user"]["id"], 9, key="k-3")).status_code == 201
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE economy_days SET issued = 1000 WHERE day = :d"),
            {"d": today - timedelta(days=3)},
        )
    async with session_scope(app.state.database) as session:
        second = await economy.economy(session, today=today, now=noon)
        assert await economy.settle_days(session, today - timedelta(days=89), today) == 0
    assert {d.day: d.issued for d in second.days}[today] == 14
    assert second.issued == 1000 + 14
    # in the first hour after midnight, yesterday is still summed live
    async with session_scope(app.state.database) as session:
        early = await economy.economy(session, today=today, now=noon.replace(hour=0, minute=30))
    assert {d.day: d.issued for d in early.days}[today] == 14


async def test_the_liability_in_money_breakage_and_rule_changes(console, client, engine):
    """Issue 15, item 5: the coins' worth in the shop's currency, breakage by sign-up month,
    and the day an earn rule changed marked on the chart."""
    admin = {"headers": bearer(console.account["access_token"])}
    walker = await register(client)
    assert (await adjust(client, admin, walker["user"]["id"], 250)).status_code == 201
    rule_day = datetime.now(UTC).date()
    async with engine.begin() as conn:  # a rule that took effect today (made in the past)
        await conn.execute(
            text(
                "INSERT INTO earn_rules (effective_from, coins_per_1000_steps, daily_step_cap, "
                "daily_coin_cap) VALUES (:d, 7, 25000, 150)"
            ),
            {"d": rule_day},
        )
    html = (await console.get("/admin/")).text
    assert re.search(r'id="outstanding-value">2\.50 USD<', html)
    month = datetime.now(UTC).strftime("%Y-%m")
    row = re.search(rf'<tr data-month="{month}">(.*?)</tr>', html)
    assert row, "no cohort row for this month"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert cells[4] == "250" and cells[5] == "2.50" and cells[6] == "100.0 %"
    chart = section(html, "economy-chart")
    assert f'data-mark="{rule_day.isoformat()}"' in chart
    assert "7 coins per 1,000 steps" in html

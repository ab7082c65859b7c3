"""GET /v1/admin/economy/report (issue 15, item 5): the liability in coins and in money,
breakage by sign-up cohort, the earn rule changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from stepcoin.runtime_settings.service import runtime_settings
from tests.conftest import bearer, register
from tests.shop.helpers import order, product, walker_with_coins
from tests.steps.helpers import ledger_ok, make_admin

URL = "/v1/admin/economy/report"


async def signed_up(engine, user_id: str, month: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE users SET created_at = CAST(CAST(:at AS text) AS timestamptz) "
                "WHERE id = :id"
            ),
            {"at": f"{month}-15T12:00:00Z", "id": user_id},
        )


async def setting(engine, key: str, value: str | int) -> None:
    kind = "int" if isinstance(value, int) else "text"
    async with engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE settings SET value = to_jsonb(CAST(:v AS {kind})) WHERE key = :k"),
            {"k": key, "v": value},
        )
    runtime_settings.invalidate()


async def cohort_world(client, engine) -> tuple[dict, dict]:
    """Ada (October) earns 1,000, orders 300 and gets 100 back; Ben (November) earns 500."""
    bottle = await product(engine, price=100, stock=10)
    ada = await walker_with_coins(client, engine, 1000)
    ben = await walker_with_coins(client, engine, 500)
    await signed_up(engine, ada["user"]["id"], "2026-10")
    await signed_up(engine, ben["user"]["id"], "2026-11")
    assert (await order(client, ada["access_token"], [(bottle, 2)])).status_code == 201
    placed = await order(client, ada["access_token"], [(bottle, 1)])
    cancelled = await client.post(
        f"/v1/orders/{placed.json()['id']}/cancel", headers=bearer(ada["access_token"])
    )
    assert cancelled.status_code == 200, cancelled.text
    return ada, ben


def by_month(report: dict) -> dict[str, dict]:
    return {c["month"]: c for c in report["cohorts"]}


async def test_the_liability_in_coins_and_money_by_cohort(client, engine):
    await cohort_world(client, engine)
    admin = await make_admin(client, engine)  # signed up now: a cohort of its own, no coins
    answer = await client.get(URL, headers=bearer(admin))
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["as_of"] == datetime.now(UTC).date().isoformat()
    assert report["currency"] == "USD"
    assert report["coins_per_currency_unit"] == 100
    assert report["outstanding"] == {"coins": 1300, "value": "13.00"}  # 1000 - 300 + 100 + 500
    assert report["pending"] == {"coins": 0, "value": "0.00"}
    cohorts = by_month(report)
    assert cohorts["2026-10"] == {
        "month": "2026-10",
        "walkers": 1,
        "earned_coins": 1000,
        "redeemed_coins": 200,
        "unredeemed_coins": 800,
        "unredeemed_value": "8.00",
        "breakage_rate": 0.8,
    }
    assert cohorts["2026-11"]["unredeemed_coins"] == 500
    assert cohorts["2026-11"]["breakage_rate"] == 1.0
    this_month = datetime.now(UTC).strftime("%Y-%m")
    assert cohorts[this_month]["earned_coins"] == 0
    assert cohorts[this_month]["breakage_rate"] is None
    assert sum(c["unredeemed_coins"] for c in report["cohorts"]) == 1300
    await ledger_ok(engine)


async def test_a_past_day_leaves_out_what_the_ledger_wrote_since(client, engine):
    """Every coin here moved today: at the end of yesterday the walkers held nothing, and the
    pending coins of a past day are not known (null)."""
    await cohort_world(client, engine)
    admin = await make_admin(client, engine)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    report = (await client.get(URL, params={"as_of": str(yesterday)}, headers=bearer(admin))).json()
    assert report["as_of"] == str(yesterday)
    assert report["outstanding"] == {"coins": 0, "value": "0.00"}
    assert report["pending"] is None
    cohorts = by_month(report)
    assert cohorts["2026-10"]["earned_coins"] == 0 and cohorts["2026-10"]["walkers"] == 1
    assert datetime.now(UTC).strftime("%Y-%m") not in cohorts  # the admin signed up today


async def test_the_currency_and_the_coin_rate_are_settings(client, engine):
    await walker_with_coins(client, engine, 1234)
    admin = await make_admin(client, engine)
    await setting(engine, "shop.currency_code", "EUR")
    await setting(engine, "shop.coins_per_currency_unit", 1000)
    report = (await client.get(URL, headers=bearer(admin))).json()
    assert report["currency"] == "EUR"
    assert report["outstanding"] == {"coins": 1234, "value": "1.23"}


async def test_the_rule_changes_are_listed(client, engine):
    admin = await make_admin(client, engine)
    rules = (await client.get("/v1/admin/earn-rules", headers=bearer(admin))).json()
    first = rules["earliest_effective_from"]
    created = await client.post(
        "/v1/admin/earn-rules",
        json={
            "effective_from": first,
            "coins_per_1000_steps": 8,
            "daily_step_cap": 20000,
            "daily_coin_cap": 160,
        },
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    report = (await client.get(URL, headers=bearer(admin))).json()
    assert report["rule_changes"] == [
        {
            "effective_from": first,
            "coins_per_1000_steps": 8,
            "daily_step_cap": 20000,
            "daily_coin_cap": 160,
            "announced": True,
        }
    ]


async def test_a_day_to_come_is_refused_and_walkers_may_not_read_it(client, engine):
    admin = await make_admin(client, engine)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    refused = await client.get(URL, params={"as_of": str(tomorrow)}, headers=bearer(admin))
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_as_of"
    walker = await register(client)
    assert (await client.get(URL, headers=bearer(walker["access_token"]))).status_code == 403
    support = await make_admin(client, engine, role="support")
    assert (await client.get(URL, headers=bearer(support))).status_code == 200

"""The console's earn rules: the rules with their days, the preview, announcing, withdrawing."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import text

from stepcoin.steps.earn_rules import earliest_effective_from
from tests.console.helpers import csrf_of


def flash(html: str) -> str:
    match = re.search(r'<div class="flash flash-(\w+)"[^>]*>([^<]*)</div>', html)
    assert match, "no flash message on the page"
    return f"{match.group(1)}: {match.group(2)}"


def _day(offset: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=offset)


async def _walker_days(engine, days: dict[int, int]) -> None:
    user_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO users (id, email, full_name) VALUES (:id, :e, 'W')"),
            {"id": user_id, "e": f"{user_id.hex[:12]}@example.com"},
        )
        for offset, steps in days.items():
            await conn.execute(
                text(
                    "INSERT INTO step_days (user_id, recorded_date, credited_steps) "
                    "VALUES (:u, :d, :s)"
                ),
                {"u": user_id, "d": _day(offset), "s": steps},
            )


async def _rules(engine) -> list[tuple]:
    async with engine.connect() as conn:
        return [
            tuple(r)
            for r in await conn.execute(
                text(
                    "SELECT effective_from, coins_per_1000_steps, daily_step_cap, "
                    "daily_coin_cap, withdrawn_at IS NOT NULL FROM earn_rules ORDER BY id"
                )
            )
        ]


async def test_the_page_previews_then_announces_a_rule_and_audits_it(console, engine):
    await _walker_days(engine, {1: 10_000, 2: 30_000})
    page = await console.get("/admin/earn-rules")
    assert page.status_code == 200
    html = page.text
    assert 'href="/admin/earn-rules"' in html  # in the navigation
    first = html[html.index('data-rule-status="in_force"') :]
    assert "the beginning" in first[:400] and "none" in first[:600]
    assert 'name="coins_per_1000_steps" inputmode="numeric" value="10"' in html  # prefilled
    assert 'id="announce-form"' not in html  # a rule is announced from its preview

    query = {"coins_per_1000_steps": "5", "daily_step_cap": "", "daily_coin_cap": "120"}
    preview = await console.get("/admin/earn-rules?" + urlencode(query))
    assert preview.status_code == 200
    # by hand: 10,000 steps -> 100 now, 50 proposed; 30,000 -> 200 (capped), 120 (capped)
    assert 'data-total-paid="300" data-total-proposed="170" data-walkers-affected="1"' in (
        preview.text
    )
    row = preview.text[preview.text.index(f'data-preview-day="{_day(2).isoformat()}"') :]
    assert re.search(r"data-paid>200<.*data-proposed>120<", row[:400], re.S)

    earliest = earliest_effective_from()
    announce = await console.post(
        "/admin/earn-rules",
        data={
            "csrf_token": csrf_of(preview.text),
            "coins_per_1000_steps": "5",
            "daily_step_cap": "",
            "daily_coin_cap": "120",
            "effective_from": earliest.isoformat(),
        },
    )
    assert announce.status_code == 303
    listing = await console.get(announce.headers["location"])
    assert flash(listing.text) == (
        f"ok: Announced from {earliest.isoformat()}: 5 coins per 1,000 steps, no step cap, "
        "at most 120 coins a day."
    )
    assert (await _rules(engine))[-1] == (earliest, 5, None, 120, False)
    announced = listing.text[listing.text.index('data-rule-status="announced"') :]
    assert 'data-withdraw="' in announced[:2000]
    async with engine.connect() as conn:
        log = (
            await conn.execute(
                text(
                    "SELECT admin_id, action, changes FROM admin_logs "
                    "WHERE entity_type = 'earn_rule'"
                )
            )
        ).one()
    assert str(log.admin_id) == console.account["user"]["id"]
    assert log.action == "earn_rule.create"
    assert log.changes["after"]["daily_coin_cap"] == 120
    assert 'data-audit-action="earn_rule.create"' in listing.text  # the page's history


async def test_refusals_are_flashed_and_change_nothing(console, engine):
    page = await console.get("/admin/earn-rules?coins_per_1000_steps=abc&daily_coin_cap=10")
    assert page.status_code == 200
    assert "Coins per 1,000 steps must be a whole number." in page.text
    base = {
        "csrf_token": csrf_of(page.text),
        "coins_per_1000_steps": "5",
        "daily_step_cap": "9000",
        "daily_coin_cap": "100",
    }
    for changes, message in [
        ({"effective_from": "2020-01-01"}, "A rule starts on a day that has not begun anywhere"),
        ({"effective_from": "someday"}, "The first day must be a date"),
        ({"effective_from": "2099-01-01", "daily_coin_cap": "-3"}, "must be a whole number"),
        ({"effective_from": "2099-01-01", "coins_per_1000_steps": "20000"}, "must be 0 to"),
    ]:
        response = await console.post("/admin/earn-rules", data={**base, **changes})
        assert response.status_code == 303
        shown = flash((await console.get(response.headers["location"])).text)
        assert shown.startswith("error: ") and message in shown, shown
    assert len(await _rules(engine)) == 1


async def test_withdrawing_from_the_page(console, engine):
    page = await console.get("/admin/earn-rules")
    day = earliest_effective_from() + timedelta(days=2)
    created = await console.post(
        "/admin/earn-rules",
        data={
            "csrf_token": csrf_of(page.text),
            "coins_per_1000_steps": "8",
            "daily_step_cap": "",
            "daily_coin_cap": "200",
            "effective_from": day.isoformat(),
        },
    )
    assert created.status_code == 303
    listing = (await console.get("/admin/earn-rules")).text
    rule_id = re.search(r'data-withdraw="(\d+)"', listing).group(1)
    withdrawn = await console.post(
        f"/admin/earn-rules/{rule_id}/withdraw", data={"csrf_token": csrf_of(listing)}
    )
    assert withdrawn.status_code == 303
    after = (await console.get("/admin/earn-rules")).text
    assert flash(after) == f"ok: The rule from {day.isoformat()} is withdrawn."
    assert (await _rules(engine))[-1][-1] is True
    assert 'data-audit-action="earn_rule.withdraw"' in after


async def test_support_previews_but_cannot_announce(support_console, engine):
    page = await support_console.get(
        "/admin/earn-rules?coins_per_1000_steps=5&daily_step_cap=&daily_coin_cap=100"
    )
    assert page.status_code == 200 and 'id="preview"' in page.text
    assert 'id="announce-form"' not in page.text
    refused = await support_console.post(
        "/admin/earn-rules",
        data={
            "csrf_token": csrf_of(page.text),
            "coins_per_1000_steps": "5",
            "daily_coin_cap": "100",
            "effective_from": "2099-01-01",
        },
    )
    assert refused.status_code == 403
    assert len(await _rules(engine)) == 1

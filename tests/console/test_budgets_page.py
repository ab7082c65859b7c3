"""The console's issuance budgets: use, held rewards, set and remove (admins), audited."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.console.helpers import csrf_of
from tests.wallet.test_budgets import budget_actions


def flash(html: str) -> str:
    match = re.search(r'<div class="flash flash-(\w+)"[^>]*>([^<]*)</div>', html)
    assert match, "no flash message on the page"
    return f"{match.group(1)}: {match.group(2)}"


async def test_an_admin_sets_and_removes_a_budget_and_both_are_audited(console, engine):
    page = await console.get("/admin/budgets")
    assert page.status_code == 200
    assert 'href="/admin/budgets"' in page.text  # in the navigation
    assert "every source issues freely" in page.text
    form = {
        "csrf_token": csrf_of(page.text),
        "source": "achievements",
        "period": "week",
        "cap_coins": "5,000",
        "alert_percent": "75",
    }
    done = await console.post("/admin/budgets", data=form)
    assert done.status_code == 303
    listing = await console.get(done.headers["location"])
    assert (
        flash(listing.text) == "ok: The week budget of achievements is 5,000 coins (alert at 75 %)."
    )
    assert 'data-budget="achievements/week" data-issued="0" data-held="0"' in listing.text

    bad = await console.post("/admin/budgets", data={**form, "cap_coins": "lots"})
    assert flash((await console.get(bad.headers["location"])).text).startswith("error: The cap")
    removed = await console.post(
        "/admin/budgets/achievements/week/remove", data={"csrf_token": csrf_of(listing.text)}
    )
    after = await console.get(removed.headers["location"])
    assert flash(after.text) == "ok: The week budget of achievements is removed."
    assert 'data-budget="achievements/week"' not in after.text
    assert await budget_actions(engine) == ["economy.budget_set", "economy.budget_removed"]


async def test_support_sees_the_budgets_but_cannot_change_them(support_console, engine):
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO issuance_budgets (source, period, cap_coins) "
                "VALUES ('campaigns', 'month', 100000)"
            )
        )
    page = await support_console.get("/admin/budgets")
    assert page.status_code == 200
    assert 'data-budget="campaigns/month"' in page.text
    assert 'id="budget-form"' not in page.text
    refused = await support_console.post(
        "/admin/budgets",
        data={
            "csrf_token": csrf_of(page.text),
            "source": "campaigns",
            "period": "month",
            "cap_coins": "1",
            "alert_percent": "80",
        },
    )
    assert refused.status_code == 403

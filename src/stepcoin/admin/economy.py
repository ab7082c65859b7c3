"""The economy report (issue 15, item 5): what the coins out there are worth, who holds them,
and when the earn rule changed. Composed here, in the admin face, from the domains that own
the figures: the wallet (balances, the ledger, cohorts) and the steps (the earn rules)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.errors import InvalidInput
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.steps import earn_rules
from stepcoin.wallet import reports as wallet_reports


async def report(session: AsyncSession, as_of: date | None = None) -> dict[str, Any]:
    """GET /v1/admin/economy/report: the liability at the end of UTC day `as_of` (default
    today), in coins and in the shop's currency, breakage by monthly sign-up cohort, and the
    earn rule changes."""
    today = wallet_reports.utc_today()
    day = as_of or today
    if day > today:
        raise InvalidInput(
            "as_of is a day to come: the report reads what has happened.",
            code="invalid_as_of",
        )
    values = await runtime_settings.all(session)
    per_unit = int(values["shop.coins_per_currency_unit"])
    figures = await wallet_reports.liability(session, day, today=today)
    rules = await earn_rules.list_rules(session)
    return {
        "as_of": day,
        "currency": str(values["shop.currency_code"]),
        "coins_per_currency_unit": per_unit,
        "outstanding": {
            "coins": figures.outstanding,
            "value": wallet_reports.money(figures.outstanding, per_unit),
        },
        "pending": None
        if figures.pending is None
        else {"coins": figures.pending, "value": wallet_reports.money(figures.pending, per_unit)},
        "cohorts": [
            {
                "month": c.month,
                "walkers": c.walkers,
                "earned_coins": c.earned,
                "redeemed_coins": c.redeemed,
                "unredeemed_coins": c.unredeemed,
                "unredeemed_value": wallet_reports.money(c.unredeemed, per_unit),
                "breakage_rate": c.breakage_rate,
            }
            for c in figures.cohorts
        ],
        "rule_changes": earn_rules.rule_changes(rules, day),
    }

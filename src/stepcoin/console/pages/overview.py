"""Console pages: the overview (review queue, orders, today's steps, the coin economy)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stepcoin.console.web import PREFIX, ConsoleUserDep, render
from stepcoin.db import ReadSessionDep
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.shop import queries as shop_queries
from stepcoin.steps import earn_rules, review
from stepcoin.steps import reports as step_reports
from stepcoin.wallet import reports as wallet_reports

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/")
async def overview(request: Request, user: ConsoleUserDep, session: ReadSessionDep) -> Response:
    """Seven aggregate reads (each domain's function says what it costs); staff may view."""
    now = datetime.now(UTC)
    today = now.date()
    queue = await review.queue_summary(session)
    orders = await shop_queries.orders_by_status(session)
    walkers_today, steps_today = await step_reports.approved_steps_on(session, today)
    liability = await wallet_reports.liability(session, today, today=today)
    earners = await wallet_reports.top_earners(session)
    coins = await wallet_reports.economy(session, today=today)
    values = await runtime_settings.all(session)
    per_unit = int(values["shop.coins_per_currency_unit"])
    changes = earn_rules.rule_changes(await earn_rules.list_rules(session), today)
    marks = [
        (
            c["effective_from"].isoformat(),
            f"earn rule: {c['coins_per_1000_steps']} coins per 1,000 steps, at most "
            f"{c['daily_coin_cap']} a day"
            + (f" and {c['daily_step_cap']:,} steps" if c["daily_step_cap"] else ""),
        )
        for c in changes
    ]
    return render(
        request,
        user,
        "overview.html",
        {
            "queue": queue,
            "queue_age": queue.age(now),
            "orders": orders,
            "orders_total": sum(n for _, n in orders),
            "today": today,
            "walkers_today": walkers_today,
            "steps_today": steps_today,
            "outstanding": liability.outstanding,
            "pending": liability.pending or 0,
            "currency": values["shop.currency_code"],
            "outstanding_value": wallet_reports.money(liability.outstanding, per_unit),
            "pending_value": wallet_reports.money(liability.pending or 0, per_unit),
            "cohorts": liability.cohorts[-12:],
            "money": lambda coins: wallet_reports.money(coins, per_unit),
            "earners": earners,
            "economy": coins,
            "economy_points": coins.chart_points(),
            "economy_marks": marks,
            "rule_changes": changes,
        },
        section="overview",
    )

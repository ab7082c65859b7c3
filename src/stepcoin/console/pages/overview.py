"""Console pages: the overview (review queue, orders, today's steps, the coin economy)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stepcoin.console.web import PREFIX, ConsoleUserDep, render
from stepcoin.db import ReadSessionDep
from stepcoin.shop import queries as shop_queries
from stepcoin.steps import reports as step_reports
from stepcoin.steps import review
from stepcoin.wallet import reports as wallet_reports

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/")
async def overview(request: Request, user: ConsoleUserDep, session: ReadSessionDep) -> Response:
    """Six aggregate reads (each domain's function says what it costs); staff may view."""
    now = datetime.now(UTC)
    today = now.date()
    queue = await review.queue_summary(session)
    orders = await shop_queries.orders_by_status(session)
    walkers_today, steps_today = await step_reports.approved_steps_on(session, today)
    outstanding, pending = await wallet_reports.wallet_totals(session)
    earners = await wallet_reports.top_earners(session)
    coins = await wallet_reports.economy(session, today=today)
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
            "outstanding": outstanding,
            "pending": pending,
            "earners": earners,
            "economy": coins,
            "economy_points": coins.chart_points(),
        },
        section="overview",
    )

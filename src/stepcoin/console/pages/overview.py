"""Console pages: the overview (review queue, orders, today's steps, the coin economy)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stepcoin.console import economy
from stepcoin.console.web import PREFIX, ConsoleUserDep, render
from stepcoin.db import ReadSessionDep

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/")
async def overview(request: Request, user: ConsoleUserDep, session: ReadSessionDep) -> Response:
    """Six aggregate reads (see console/economy.py for what each costs); staff may view."""
    now = datetime.now(UTC)
    today = now.date()
    queue = await economy.review_queue(session)
    orders = await economy.orders_by_status(session)
    walkers_today, steps_today = await economy.approved_steps_on(session, today)
    outstanding, pending = await economy.wallet_totals(session)
    earners = await economy.top_earners(session)
    coins = await economy.economy(session, today=today)
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

"""Console pages: the overview (review queue, orders, today's steps, the coin economy)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stepcoin.console import economy
from stepcoin.console.web import PREFIX, ConsoleUserDep, render
from stepcoin.db import ReadSessionDep

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _age(since: datetime | None, now: datetime) -> str:
    """A short human age: '3 d 4 h', '2 h 5 min', '7 min'."""
    if since is None:
        return "—"
    minutes = max(0, int((now - since).total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


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
            "queue_age": _age(queue.oldest, now),
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

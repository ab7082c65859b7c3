"""Leaderboards: the top walkers of a period, the caller's own rank and neighbours."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, get_args
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Body, Query, Response

from stepcoin.auth.dependencies import AdminDep, ClaimsDep, StaffDep
from stepcoin.db import DriverDep, SessionDep
from stepcoin.leaderboards import prizes, service
from stepcoin.leaderboards.periods import Period
from stepcoin.leaderboards.repository import MAX_LIMIT
from stepcoin.leaderboards.schemas import (
    MAX_PRIZE_LINES,
    LeaderboardOut,
    PrizeLine,
    PrizesOut,
)
from stepcoin.validation import CalendarDay

router = APIRouter(tags=["leaderboards"])

PATH = "/v1/leaderboards/{period}"
DEFAULT_LIMIT = 100


def json_bytes(data: Any) -> bytes:
    """The answer as FastAPI would serialise it through LeaderboardOut, without the model
    (the answer is already shaped; tests/test_hot_routes.py compares the bytes)."""
    return orjson.dumps(data, option=orjson.OPT_UTC_Z)


HotAnswer = Callable[[Any, uuid.UUID, bytes], Awaitable[bytes | None]]


def hot_answer(period: Period) -> HotAnswer:
    """GET /v1/leaderboards/<period>'s 200 body for main.HotRoutes; None for anything the route
    itself must answer: a query other than a plain `limit` within 1..100 (a `period_start`, a
    repeated or unknown parameter: the route validates them), and every error (an inactive
    account raises, and HotRoutes then falls through to the route)."""

    async def answer(driver: Any, user_id: uuid.UUID, query: bytes) -> bytes | None:
        limit = DEFAULT_LIMIT
        if query:
            try:
                pairs = parse_qsl(
                    query.decode("ascii"), keep_blank_values=True, strict_parsing=True
                )
            except (ValueError, UnicodeDecodeError):
                return None
            if len(pairs) != 1 or pairs[0][0] != "limit":
                return None
            text = pairs[0][1]
            if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_LIMIT):
                return None
            limit = int(text)
        body = await service.board_answer(driver, period, user_id, start=None, limit=limit)
        return json_bytes(body)

    return answer


def hot_answers() -> dict[str, HotAnswer]:
    """One main.HotRoutes entry per period (the route's template is PATH)."""
    return {PATH.replace("{period}", period): hot_answer(period) for period in get_args(Period)}


@router.get(PATH, response_model=LeaderboardOut)
async def leaderboard(
    period: Period,
    claims: ClaimsDep,
    driver: DriverDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Top entries (1 to 100).")
    ] = DEFAULT_LIMIT,
    period_start: Annotated[
        CalendarDay | None,
        Query(description="A closed period's first day (YYYY-MM-DD); default: the current one."),
    ] = None,
) -> Any:
    """The top walkers of a period (UTC calendar; ISO weeks), your rank and neighbours."""
    body = await service.board_answer(
        driver, period, claims.user_id, start=period_start, limit=limit
    )
    return Response(json_bytes(body), media_type="application/json")


admin_router = APIRouter(prefix="/v1/admin/leaderboards", tags=["admin"])
PrizePeriod = Literal["daily", "weekly", "monthly"]


@admin_router.get("/{period}/prizes", response_model=PrizesOut)
async def get_prizes(period: PrizePeriod, staff: StaffDep, session: SessionDep) -> Any:
    """The period's prize table: rank ranges and the coins of each walker in them."""
    return {"period": period, "prizes": await prizes.get_table(session, period)}


@admin_router.put("/{period}/prizes", response_model=PrizesOut)
async def put_prizes(
    period: PrizePeriod,
    body: Annotated[list[PrizeLine], Body(max_length=MAX_PRIZE_LINES)],
    admin: AdminDep,
    session: SessionDep,
) -> Any:
    """Replace the period's prize table (admins; audited; [] removes it). Paid once per board
    when its final snapshot is taken, to walkers with no day in review; ties share a rank."""
    table = await prizes.put_table(session, period, body, admin_id=admin.id)
    return {"period": period, "prizes": table}

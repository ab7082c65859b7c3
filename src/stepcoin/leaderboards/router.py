"""Leaderboards: the top walkers of a period, the caller's own rank and neighbours."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, get_args
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Body, Query, Response

from stepcoin.auth.dependencies import ActiveClaimsDep, AdminDep, ClaimsDep, StaffDep
from stepcoin.db import ReplicaDriverDep, ReplicaSessionDep, SessionDep
from stepcoin.errors import Forbidden, account_gone
from stepcoin.leaderboards import prizes, service
from stepcoin.leaderboards.periods import Period
from stepcoin.leaderboards.repository import MAX_LIMIT
from stepcoin.leaderboards.schemas import (
    MAX_PRIZE_LINES,
    LeaderboardOut,
    PrizeLine,
    PrizesOut,
)
from stepcoin.social import groups as social_groups
from stepcoin.social import service as social
from stepcoin.validation import CalendarDay, Int64

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
        body = await service.board_answer(
            driver, period, user_id, start=None, limit=limit, entries_as_json=True
        )
        return json_bytes(body)

    return answer


def hot_answers() -> dict[str, HotAnswer]:
    """One main.HotRoutes entry per period (the route's template is PATH)."""
    return {PATH.replace("{period}", period): hot_answer(period) for period in get_args(Period)}


LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Top entries (1 to 100).")]
StartParam = Annotated[
    CalendarDay | None,
    Query(description="A closed period's first day (YYYY-MM-DD); default: the current one."),
]


@router.get(PATH, response_model=LeaderboardOut)
async def leaderboard(
    period: Period,
    claims: ClaimsDep,
    driver: ReplicaDriverDep,
    session: ReplicaSessionDep,
    limit: LimitParam = DEFAULT_LIMIT,
    period_start: StartParam = None,
    scope: Annotated[
        Literal["global", "friends"],
        Query(description="friends: you and your friends only, ranked among yourselves."),
    ] = "global",
) -> Any:
    """The top walkers of a period (UTC calendar; ISO weeks), your rank and neighbours."""
    if scope == "friends":
        body = await service.scoped_board_answer(
            session,
            period,
            claims.user_id,
            scope=social.FRIEND_SCOPE_SQL,
            scope_params={"user_id": claims.user_id},
            start=period_start,
            limit=limit,
        )
        if body["me"] is None and not await _active(session, claims.user_id):
            raise account_gone()
        return Response(json_bytes(body), media_type="application/json")
    body = await service.board_answer(
        driver, period, claims.user_id, start=period_start, limit=limit
    )
    return Response(json_bytes(body), media_type="application/json")


async def _active(session: Any, user_id: uuid.UUID) -> bool:
    return await service.walker_active(session, user_id)


@router.get("/v1/groups/{group_id}/leaderboards/{period}", response_model=LeaderboardOut)
async def group_leaderboard(
    group_id: Int64,
    period: Period,
    claims: ActiveClaimsDep,
    session: ReplicaSessionDep,
    limit: LimitParam = DEFAULT_LIMIT,
    period_start: StartParam = None,
) -> Any:
    """A group's board: its members ranked among themselves, your rank and neighbours (members;
    anyone for an open group that is not a company's)."""
    if not await social_groups.can_see_inside(session, group_id, claims.user_id):
        raise Forbidden("Only the group's members may do this.", code="not_group_member")
    body = await service.group_board_answer(
        session, period, claims.user_id, group_id, start=period_start, limit=limit
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

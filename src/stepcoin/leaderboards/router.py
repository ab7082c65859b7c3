"""Leaderboards: the top walkers of a period, the caller's own rank and neighbours."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from stepcoin.auth.dependencies import ClaimsDep
from stepcoin.db import Database, get_database
from stepcoin.leaderboards import service
from stepcoin.leaderboards.periods import Period
from stepcoin.leaderboards.repository import MAX_LIMIT
from stepcoin.leaderboards.schemas import LeaderboardOut
from stepcoin.validation import CalendarDay

router = APIRouter(tags=["leaderboards"])


@router.get("/v1/leaderboards/{period}", response_model=LeaderboardOut)
async def leaderboard(
    period: Period,
    claims: ClaimsDep,
    database: Annotated[Database, Depends(get_database)],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Top entries (1 to 100).")] = 100,
    period_start: Annotated[
        CalendarDay | None,
        Query(description="A closed period's first day (YYYY-MM-DD); default: the current one."),
    ] = None,
) -> Any:
    """The top walkers of a period (UTC calendar; ISO weeks), your rank and neighbours."""
    return await service.read_board(
        database, period, claims.user_id, start=period_start, limit=limit
    )

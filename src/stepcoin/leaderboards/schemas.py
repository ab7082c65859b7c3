"""Response bodies of the leaderboard endpoint."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field, StrictInt

from stepcoin.leaderboards.periods import Period


class LeaderboardEntryOut(BaseModel):
    rank: int = Field(description="1 is the top; ties share a rank (1, 1, 3).")
    user_id: uuid.UUID
    display_name: str = Field(description='First name and last initial ("Ada L."), never email.')
    total_steps: int = Field(description="Approved steps in the period.")


class MyRankOut(BaseModel):
    rank: int
    total_steps: int


class LeaderboardOut(BaseModel):
    period: Period
    period_start: date = Field(description="First day of the period (UTC calendar).")
    computed_at: datetime | None = Field(description="When the board was built; null: not yet.")
    final: bool = Field(description="A closed period's final snapshot: it no longer changes.")
    entries: list[LeaderboardEntryOut]
    me: MyRankOut | None = Field(description="The caller's rank; null when not on the board.")
    neighbours: list[LeaderboardEntryOut] = Field(
        description="Up to two entries above and two below the caller, in board order."
    )


MAX_PRIZE_RANK = 10_000
MAX_PRIZE_LINES = 50
MAX_PRIZE_COINS = 10_000_000


class PrizeLine(BaseModel):
    from_rank: StrictInt = Field(ge=1, le=MAX_PRIZE_RANK)
    to_rank: StrictInt = Field(ge=1, le=MAX_PRIZE_RANK, description="Inclusive; >= from_rank.")
    coins: StrictInt = Field(
        ge=1, le=MAX_PRIZE_COINS, description="Coins for each walker of the ranks."
    )


class PrizesOut(BaseModel):
    period: Period
    prizes: list[PrizeLine] = Field(
        description="Rank ranges and their coins; ties share a rank and each gets its prize."
    )

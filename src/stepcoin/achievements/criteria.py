"""Unlock criteria: their JSON shape (one pydantic model per `kind`) and the pure rules.

The database supplies a user's facts (best day, total, approved days, streaks, a redemption);
these functions decide, without I/O, whether a criterion is met and how far along the user is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

MAX_STEPS_PER_DAY = 1_000_000
MAX_TOTAL_STEPS = 10_000_000_000
MAX_DAYS = 36_500


class _Criteria(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SingleDaySteps(_Criteria):
    """At least `min_steps` approved steps on one local day."""

    kind: Literal["single_day_steps"]
    min_steps: int = Field(ge=1, le=MAX_STEPS_PER_DAY, description="Steps on one day.")


class TotalSteps(_Criteria):
    """At least `total_steps` approved steps in total (the sum of every credited day)."""

    kind: Literal["total_steps"]
    total_steps: int = Field(ge=1, le=MAX_TOTAL_STEPS, description="Cumulative steps.")


class Streak(_Criteria):
    """`streak_days` consecutive local days, each with at least `min_steps` approved steps."""

    kind: Literal["streak"]
    streak_days: int = Field(ge=1, le=MAX_DAYS, description="Consecutive days.")
    min_steps: int = Field(ge=1, le=MAX_STEPS_PER_DAY, description="Steps on each of them.")


class FirstRedemption(_Criteria):
    """An order exists that was not cancelled or failed."""

    kind: Literal["first_redemption"]


class ApprovedDays(_Criteria):
    """At least `days` local days with approved steps (any positive count)."""

    kind: Literal["approved_days"]
    days: int = Field(ge=1, le=MAX_DAYS, description="Days with approved steps.")


Criteria = Annotated[
    SingleDaySteps | TotalSteps | Streak | FirstRedemption | ApprovedDays,
    Field(discriminator="kind"),
]
CRITERIA_ADAPTER: TypeAdapter[Criteria] = TypeAdapter(Criteria)
KINDS = ("single_day_steps", "total_steps", "streak", "first_redemption", "approved_days")


def parse_criteria(value: Any) -> Criteria:
    """Validate stored or submitted JSON; raises pydantic.ValidationError when it does not fit."""
    return CRITERIA_ADAPTER.validate_python(value)


@dataclass(frozen=True, slots=True)
class StreakFacts:
    """Runs of consecutive days at or above one threshold."""

    longest: int
    latest_length: int  # the length of the most recent run
    latest_end: date | None  # the last day of the most recent run


@dataclass(frozen=True, slots=True)
class UserFacts:
    """What the database knows about a user's approved steps and redemptions."""

    user_id: Any
    timezone: str = "UTC"
    is_active: bool = True
    best_day: int = 0
    total_steps: int = 0
    approved_days: int = 0
    redeemed: bool = False
    streaks: dict[int, StreakFacts] = field(default_factory=dict)  # by min_steps


@dataclass(frozen=True, slots=True)
class Progress:
    current: int
    target: int


def local_today(timezone: str, now: datetime | None = None) -> date:
    """The user's calendar day now; an unknown zone (old data) counts as UTC."""
    try:
        zone = ZoneInfo(timezone)
    except Exception:
        zone = ZoneInfo("UTC")
    return (now or datetime.now(UTC)).astimezone(zone).date()


def is_met(criteria: Criteria, facts: UserFacts) -> bool:
    if isinstance(criteria, SingleDaySteps):
        return facts.best_day >= criteria.min_steps
    if isinstance(criteria, TotalSteps):
        return facts.total_steps >= criteria.total_steps
    if isinstance(criteria, Streak):
        run = facts.streaks.get(criteria.min_steps)
        return run is not None and run.longest >= criteria.streak_days
    if isinstance(criteria, ApprovedDays):
        return facts.approved_days >= criteria.days
    return facts.redeemed


def current_streak(run: StreakFacts | None, today: date) -> int:
    """The run still alive today: it ends today or yesterday (today may not be synced yet)."""
    if run is None or run.latest_end is None or run.latest_end < today - timedelta(days=1):
        return 0
    return run.latest_length


def progress(
    criteria: Criteria, facts: UserFacts, *, unlocked: bool, now: datetime | None = None
) -> Progress | None:
    """How far along the user is, capped at the target; complete once unlocked.

    A streak shows the run still going (ending today or yesterday, in the user's time zone),
    so a broken streak starts again from zero even though an earlier long run may exist.
    `first_redemption` has no progress (None).
    """
    target: int
    current: int
    if isinstance(criteria, SingleDaySteps):
        target, current = criteria.min_steps, facts.best_day
    elif isinstance(criteria, TotalSteps):
        target, current = criteria.total_steps, facts.total_steps
    elif isinstance(criteria, Streak):
        today = local_today(facts.timezone, now)
        target = criteria.streak_days
        current = current_streak(facts.streaks.get(criteria.min_steps), today)
    elif isinstance(criteria, ApprovedDays):
        target, current = criteria.days, facts.approved_days
    else:
        return None
    return Progress(current=target if unlocked else min(current, target), target=target)


def streak_thresholds(criteria: list[Criteria]) -> list[int]:
    """The distinct min_steps of the streak criteria: the facts query computes runs for each."""
    return sorted({c.min_steps for c in criteria if isinstance(c, Streak)})

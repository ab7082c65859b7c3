"""Request and response bodies of the steps endpoints."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from stepcoin.validation import CalendarDay, Int64

Source = Literal["healthkit", "health_connect", "google_fit", "manual"]
MAX_BATCH = 500
MAX_INTERVALS = 1440
SCHEMA_MAX_STEPS = 10_000_000  # beyond this it is not a step count but a malformed value
EARLIEST_STEP_DAY = dt.date(2000, 1, 1)  # no phone counted steps for an app before this


_latest_cache: tuple[float, dt.date] = (float("-inf"), EARLIEST_STEP_DAY)


def _latest_step_day() -> dt.date:
    """Tomorrow in UTC, recomputed once per UTC day rather than once per record (a 500-record
    batch read the clock 500 times)."""
    global _latest_cache
    valid_until, latest = _latest_cache
    now = time.time()
    if now >= valid_until or now < valid_until - 86_400:  # a new UTC day, or the clock went back
        today = dt.datetime.fromtimestamp(now, dt.UTC).date()
        midnight = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.UTC)
        latest = today + dt.timedelta(days=1)
        _latest_cache = (midnight.timestamp(), latest)
    return latest


class IntervalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime
    end: AwareDatetime
    steps: int = Field(ge=0, le=SCHEMA_MAX_STEPS)

    @model_validator(mode="after")
    def _ordered(self) -> IntervalIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class StepRecordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: dt.date = Field(description="The user's local day, YYYY-MM-DD.")
    steps: int = Field(ge=0, le=SCHEMA_MAX_STEPS)
    source: Source
    device_id: str | None = Field(default=None, min_length=1, max_length=200)
    client_record_id: str | None = Field(default=None, min_length=1, max_length=200)
    client_record_version: Int64 | None = Field(
        default=None, ge=0, description="Replaces the stored record only when higher."
    )
    manual: bool = False
    deleted: bool = Field(default=False, description="The phone deleted this day: withdraw it.")
    intervals: list[IntervalIn] | None = Field(default=None, max_length=MAX_INTERVALS)

    @field_validator("date")
    @classmethod
    def _plausible_day(cls, value: dt.date) -> dt.date:
        """No phone walked before 2000 or more than a day ahead of UTC (the furthest time
        zone); tomorrow still gets its per-record `future_day` decision from the rules."""
        latest = _latest_step_day()
        if not EARLIEST_STEP_DAY <= value <= latest:
            raise ValueError(f"must be a day from {EARLIEST_STEP_DAY} to {latest}")
        return value


class StepSyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[StepRecordIn] = Field(min_length=1, max_length=MAX_BATCH)


class StepResultOut(BaseModel):
    date: dt.date
    source: Source
    status: Literal["approved", "flagged", "rejected"]
    coins_awarded: int = Field(description="Negative when a lower re-sync or deletion claws back.")
    coins_pending: int = Field(default=0, description="Coins held for this day while in review.")
    reasons: list[str]


class StepSyncOut(BaseModel):
    results: list[StepResultOut]


class StepAppealOut(BaseModel):
    status: Literal["pending", "approved", "rejected", "withdrawn"] = Field(
        description="withdrawn: a newer sync of the day replaced the appealed record."
    )
    note: str | None = Field(description="The walker's note.")
    appealed_at: dt.datetime
    decided_at: dt.datetime | None
    review_note: str | None = Field(description="The reviewer's note on the appeal.")


class StepDayOut(BaseModel):
    date: dt.date
    source: Source
    steps: int
    status: Literal["approved", "flagged", "rejected"]
    reasons: list[str]
    credited: bool = Field(description="This source is the one the day is paid for.")
    deleted: bool
    review_note: str | None = None
    synced_at: dt.datetime
    appeal: StepAppealOut | None = Field(
        default=None, description="The day's appeal of this record, if it was appealed."
    )


class StepListOut(BaseModel):
    items: list[StepDayOut]


class AppealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(
        min_length=1, max_length=1000, description="Why the day should be looked at again."
    )


class AppealOut(BaseModel):
    date: dt.date
    sources: list[Source] = Field(description="The day's rejected records sent back to review.")
    status: Literal["pending"]
    note: str
    coins_pending: int = Field(description="Coins the day holds while the appeal waits.")


def interval_json(intervals: list[IntervalIn] | None) -> list[dict[str, Any]] | None:
    if intervals is None:
        return None
    return [
        {"start": i.start.isoformat(), "end": i.end.isoformat(), "steps": i.steps}
        for i in intervals
    ]


# ---- earn rules (docs/economy.md, "Earn rules") ----------------------------------------------

Rate = Annotated[
    int, Field(strict=True, ge=0, le=10_000, description="Whole coins per 1,000 steps.")
]
StepCap = Annotated[
    int | None,
    Field(
        strict=True,
        ge=0,
        le=10_000_000,
        description="Steps beyond this earn nothing that day; null: no step cap.",
    ),
]
CoinCap = Annotated[
    int,
    Field(strict=True, ge=0, le=10_000_000, description="Most coins one walker earns for one day."),
]


class EarnRuleOut(BaseModel):
    effective_from: dt.date = Field(description="The first day (the walker's calendar day).")
    effective_until: dt.date | None = Field(
        description="The last day it applies (inclusive); null while no later rule is announced."
    )
    coins_per_1000_steps: int
    daily_step_cap: int | None = Field(description="null: no step cap.")
    daily_coin_cap: int


class EarnRulesOut(BaseModel):
    today: dt.date = Field(description="Today in the walker's time zone.")
    in_force: EarnRuleOut = Field(description="The rule that prices today.")
    next: EarnRuleOut | None = Field(description="The next rule announced, if any.")


class EarnRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    effective_from: CalendarDay = Field(
        description="A day that has not begun anywhere yet (GET lists the earliest)."
    )
    coins_per_1000_steps: Rate
    daily_step_cap: StepCap = None
    daily_coin_cap: CoinCap


class EarnRulePreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    coins_per_1000_steps: Rate
    daily_step_cap: StepCap = None
    daily_coin_cap: CoinCap


class EarnRuleAdminOut(EarnRuleOut):
    id: int
    status: Literal["in_force", "announced", "past", "withdrawn"]
    created_at: AwareDatetime
    created_by: uuid.UUID | None
    created_by_email: str | None
    withdrawn_at: AwareDatetime | None
    withdrawn_by: uuid.UUID | None


class EarnRuleList(BaseModel):
    items: list[EarnRuleAdminOut]
    earliest_effective_from: dt.date = Field(
        description="The first day a new rule may start (the day after the latest day that has "
        "begun anywhere, UTC+14, or will within the hour)."
    )


class PreviewFigures(BaseModel):
    walkers: int = Field(description="Walkers with credited steps.")
    coins_paid: int = Field(description="What the rules in force pay for those steps.")
    coins_proposed: int = Field(description="What the proposed rule would have paid.")
    difference: int
    walkers_affected: int = Field(description="Walkers whose coins would differ.")


class PreviewDay(PreviewFigures):
    date: dt.date


class PreviewRule(BaseModel):
    coins_per_1000_steps: int
    daily_step_cap: int | None
    daily_coin_cap: int


class EarnRulePreviewOut(BaseModel):
    rule: PreviewRule
    from_: dt.date = Field(alias="from", serialization_alias="from")
    to: dt.date
    days: list[PreviewDay]
    total: PreviewFigures = Field(description="The whole window; each walker counted once.")

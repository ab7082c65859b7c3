"""Request and response bodies of the steps endpoints."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from stepcoin.validation import Int64

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


class StepListOut(BaseModel):
    items: list[StepDayOut]


def interval_json(intervals: list[IntervalIn] | None) -> list[dict[str, Any]] | None:
    if intervals is None:
        return None
    return [
        {"start": i.start.isoformat(), "end": i.end.isoformat(), "steps": i.steps}
        for i in intervals
    ]

"""What the admin API takes and shows of campaigns."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from stepcoin.validation import CalendarDay

MAX_USER_IDS = 50_000  # a longer list is a filter's job
MAX_COINS_PER_WALKER = 1_000_000
MAX_STEPS_SPAN_DAYS = 366
SAMPLE_SIZE = 10


def _day_text(value: Any) -> Any:
    """A day is written YYYY-MM-DD: a number (seconds since 1970 to pydantic) is refused."""
    if not isinstance(value, str | date):
        raise ValueError("a day is written YYYY-MM-DD")
    return value


Day = Annotated[CalendarDay, BeforeValidator(_day_text)]


class Segment(BaseModel):
    """Who a campaign pays: a list of user ids, filters, or every walker; what is given is
    combined with AND. Staff accounts, deactivated and deleted walkers are never in a segment."""

    model_config = ConfigDict(extra="forbid")

    user_ids: list[uuid.UUID] | None = Field(
        None, min_length=1, max_length=MAX_USER_IDS, description="Exactly these walkers."
    )
    all_walkers: StrictBool = Field(False, description="Every walker (when nothing else is given).")
    min_steps: StrictInt | None = Field(
        None,
        ge=1,
        le=100_000_000,
        description="Walked at least this many approved steps from steps_from to steps_to.",
    )
    steps_from: Day | None = Field(None, description="First day counted for min_steps.")
    steps_to: Day | None = Field(None, description="Last day counted for min_steps.")
    joined_before: Day | None = Field(None, description="Signed up before this UTC day.")
    has_not_ordered: StrictBool = Field(
        False, description="Never placed an order (cancelled and failed orders do not count)."
    )

    @model_validator(mode="after")
    def _coherent(self) -> Segment:
        window = (self.steps_from, self.steps_to)
        if self.min_steps is not None and None in window:
            raise ValueError("min_steps needs steps_from and steps_to")
        if self.min_steps is None and window != (None, None):
            raise ValueError("steps_from and steps_to go with min_steps")
        if self.steps_from is not None and self.steps_to is not None:
            if self.steps_to < self.steps_from:
                raise ValueError("steps_to is before steps_from")
            if (self.steps_to - self.steps_from).days >= MAX_STEPS_SPAN_DAYS:
                raise ValueError(f"a steps window spans at most {MAX_STEPS_SPAN_DAYS} days")
        filters = (
            self.user_ids is not None
            or self.min_steps is not None
            or self.joined_before is not None
            or self.has_not_ordered
        )
        if not filters and not self.all_walkers:
            raise ValueError("a segment needs user_ids, a filter, or all_walkers: true")
        if filters and self.all_walkers:
            raise ValueError("all_walkers goes alone")
        return self

    def stored(self) -> dict[str, Any]:
        """The segment as the campaign row keeps it (JSON; ids sorted, without duplicates)."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        if self.user_ids is not None:
            data["user_ids"] = sorted({str(u) for u in self.user_ids})
        return data


class CampaignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    message: str = Field(
        min_length=1, max_length=500, description="Shown to each walker on the ledger row."
    )
    coins_per_walker: StrictInt = Field(ge=1, le=MAX_COINS_PER_WALKER)
    segment: Segment


class CampaignOut(BaseModel):
    id: uuid.UUID
    name: str
    message: str
    coins_per_walker: int
    segment: dict[str, Any] = Field(
        description="As created; the list leaves `user_ids` out (see user_ids_count)."
    )
    user_ids_count: int | None = Field(description="How many user ids the segment lists.")
    status: str = Field(description="draft, approved, running or done.")
    created_by: uuid.UUID | None
    created_at: datetime
    approved_by: uuid.UUID | None
    approved_at: datetime | None
    approved_coins: int | None = Field(description="The total the approver saw.")
    run_by: uuid.UUID | None
    started_at: datetime | None
    finished_at: datetime | None
    walkers_total: int = Field(description="Walkers in the segment when the run started.")
    walkers_paid: int = Field(description="Walkers paid so far (progress).")
    coins_paid: int


class CampaignPage(BaseModel):
    items: list[CampaignOut]


class SampleWalker(BaseModel):
    user_id: uuid.UUID
    full_name: str
    email: str


class PreviewOut(BaseModel):
    walkers: int
    total_coins: int
    sample: list[SampleWalker] = Field(description=f"Up to {SAMPLE_SIZE} walkers of the segment.")
    needs_approval: bool = Field(description="Above the threshold: a second admin approves.")
    approval_threshold_coins: int


class BroadcastIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, description="The push's and inbox's title.")
    body: str = Field(min_length=1, max_length=1000, description="The text under the title.")
    segment: Segment
    draft: StrictBool = Field(
        default=False,
        description="Keep it a draft (preview, approve, run later); by default it is queued at "
        "once unless its segment needs a second admin's approval.",
    )
    expires_hours: int = Field(
        default=24,
        strict=True,
        ge=1,
        le=72,
        description="A push not sent within this many hours (quiet hours, outages) is dropped.",
    )


class BroadcastFigures(BaseModel):
    queued: int = Field(description="Notifications whose push waits (its job, quiet hours).")
    sent: int = Field(description="Pushes a push service accepted (per device).")
    failed: int = Field(description="Pushes refused for good or out of retries (per device).")
    invalidated: int = Field(description="Devices dropped: the service said the token is dead.")
    retrying: int = Field(description="Pushes waiting for a retry or in flight (per device).")
    notifications: dict[str, int] = Field(
        description="Notifications per push status (pending, sent, failed, expired, off, "
        "capped, no_device)."
    )
    deliveries: dict[str, int] = Field(description="Deliveries per device status.")


class BroadcastOut(BaseModel):
    id: uuid.UUID
    title: str
    body: str
    segment: dict[str, Any] = Field(
        description="As created; the list leaves `user_ids` out (see user_ids_count)."
    )
    user_ids_count: int | None = Field(description="How many user ids the segment lists.")
    status: str = Field(description="draft, approved, running or done.")
    created_by: uuid.UUID | None
    created_at: datetime
    approved_by: uuid.UUID | None
    approved_at: datetime | None
    approved_walkers: int | None = Field(description="The walkers the approver saw.")
    run_by: uuid.UUID | None
    started_at: datetime | None
    finished_at: datetime | None = Field(description="When every notification was written.")
    expires_at: datetime | None = Field(description="Pushes not sent by then are dropped.")
    walkers_total: int = Field(description="Walkers in the segment when the run started.")
    walkers_queued: int = Field(description="Notifications written so far (progress).")
    figures: BroadcastFigures


class BroadcastPage(BaseModel):
    items: list[BroadcastOut]


class DeviceCounts(BaseModel):
    ios: int
    android: int


class BroadcastPreviewOut(BaseModel):
    walkers: int
    devices: DeviceCounts = Field(description="The segment's push devices per platform.")
    sample: list[SampleWalker] = Field(description=f"Up to {SAMPLE_SIZE} walkers of the segment.")
    needs_approval: bool = Field(description="Above the threshold: a second admin approves.")
    approval_threshold_walkers: int

"""What the challenge routes take and answer (docs/challenges.md)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from stepcoin.challenges.models import AUDIENCES, OUTCOMES, STATUSES, TEMPLATES
from stepcoin.validation import CalendarDay, Int64

TemplateCode = Literal["total_steps", "goal_days", "race", "group_goal", "team_average"]
Audience = Literal["everyone", "company", "friends", "group"]
Status = Literal["draft", "scheduled", "active", "grace", "settling", "settled", "cancelled"]
Outcome = Literal["winners", "no_winner", "cancelled"]
assert set(TEMPLATES) == set(TemplateCode.__args__)  # type: ignore[attr-defined]
assert set(AUDIENCES) == set(Audience.__args__)  # type: ignore[attr-defined]
assert set(STATUSES) == set(Status.__args__)  # type: ignore[attr-defined]
assert set(OUTCOMES) == set(Outcome.__args__)  # type: ignore[attr-defined]


class ParamOut(BaseModel):
    name: str
    description: str
    minimum: int
    maximum: int


class TemplateOut(BaseModel):
    code: TemplateCode
    name: str
    description: str
    late_join: bool = Field(description="Joining stays open after the start.")
    params: list[ParamOut]


class TemplatesOut(BaseModel):
    items: list[TemplateOut]


class ChallengeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: TemplateCode
    name: str = Field(min_length=1, max_length=80, pattern=r"\S", description="Not blank.")
    starts_on: CalendarDay = Field(description="The first day, in the challenge's timezone.")
    ends_on: CalendarDay = Field(description="The last day (inclusive).")
    timezone: str = Field(min_length=1, max_length=64, description="An IANA time zone.")
    params: dict[str, int] | None = Field(
        default=None, description="The template's parameters (GET /v1/challenges/templates)."
    )
    audience: Audience | None = Field(
        default=None,
        description="Default: friends for walkers (with invitees), everyone for admins, "
        "group/company with a group_id.",
    )
    group_id: Int64 | None = Field(
        default=None,
        description="The group (audience group: you are a member) or company group (admins).",
    )
    invitees: list[uuid.UUID] | None = Field(default=None, max_length=500)
    entry_fee_coins: int = Field(default=0, ge=0, le=1_000_000_000)
    house_prize_coins: int = Field(
        default=0, ge=0, le=1_000_000_000, description="Admins only: coins the house adds."
    )
    daily_cap: int | None = Field(
        default=None, ge=1_000, le=200_000, description="Steps a day counts at most."
    )
    min_participants: int | None = Field(default=None, ge=1, le=1_000_000)
    draft: bool = Field(default=False, description="Keep as a draft; publish later.")


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class MeOut(BaseModel):
    status: Literal["joined", "left"]
    team: int | None
    fee_held: int
    rank: int | None
    winner: bool
    payout_coins: int
    paid: bool


class ChallengeOut(BaseModel):
    id: uuid.UUID
    template: TemplateCode
    name: str
    audience: Audience
    group_id: Int64 | None = Field(
        description="The group or company; null for other audiences, and once the group is "
        "deleted (its participants stay, nobody new joins)."
    )
    timezone: str
    starts_on: date
    ends_on: date
    starts_at: datetime
    ends_at: datetime
    grace_ends_at: datetime = Field(description="Late syncs count until then.")
    params: dict[str, int]
    daily_cap: int | None
    entry_fee_coins: int
    house_prize_coins: int
    min_participants: int
    late_join: bool
    status: Status
    outcome: Outcome | None
    participants: int
    escrow_coins: int = Field(description="Entry fees held now.")
    pool_coins: int = Field(description="The fees that will be (or were) paid out.")
    created_by_me: bool
    cancel_reason: str | None


class ChallengeDetailOut(ChallengeOut):
    me: MeOut | None
    joinable: bool


class ChallengeListItem(ChallengeOut):
    my_status: Literal["joined", "left"] | None


class ChallengeList(BaseModel):
    items: list[ChallengeListItem]


class LeaderboardEntry(BaseModel):
    rank: int
    user_id: uuid.UUID
    display_name: str
    total_steps: int
    good_days: int
    reached_on: date | None
    team: int | None
    winner: bool = Field(description="Winning now (final once settled).")


class TeamOut(BaseModel):
    team: int
    average_steps: float


class LeaderboardOut(BaseModel):
    challenge_id: uuid.UUID
    status: Status
    computed_at: datetime | None
    final: bool
    total_steps: int
    goal_reached: bool | None
    teams: list[TeamOut] | None
    entries: list[LeaderboardEntry]


class AdminParticipantOut(BaseModel):
    user_id: uuid.UUID
    email: str
    full_name: str | None
    status: Literal["joined", "left"]
    team: int | None
    fee_held: int
    joined_at: datetime
    final_rank: int | None
    final_steps: int | None
    winner: bool
    payout_kind: Literal["prize", "refund"] | None
    payout_coins: int
    house_coins: int
    paid_at: datetime | None


class AdminChallengeOut(ChallengeOut):
    creator_id: uuid.UUID | None
    invitees: list[uuid.UUID]
    participant_list: list[AdminParticipantOut]


class AdminChallengeItem(ChallengeOut):
    creator_id: uuid.UUID | None
    creator_email: str | None


class AdminChallengeList(BaseModel):
    items: list[AdminChallengeItem]
    counts: dict[str, int]

"""What the referral routes take and answer."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from stepcoin.referrals.models import STATUSES

Status = Literal["pending", "held", "review", "paid", "rejected", "expired", "cancelled"]
assert set(STATUSES) == set(Status.__args__)  # type: ignore[attr-defined]


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        min_length=1,
        max_length=32,
        description="A referrer's code (case and dashes do not matter).",
    )


class TermsOut(BaseModel):
    referrer_coins: int = Field(description="Coins for the referrer when an invitee qualifies.")
    invitee_coins: int = Field(description="Coins for the invitee when they qualify.")
    qualifying_days: int = Field(description="Days with approved steps the invitee needs.")
    qualifying_window_days: int = Field(description="...within this many days from the claim.")
    hold_days: int = Field(description="Days between qualifying and being paid.")


class ClaimedOut(BaseModel):
    code: str
    status: Status


class MyReferralOut(BaseModel):
    code: str = Field(description="Your code: invitees claim it at sign-up or within days.")
    terms: TermsOut
    claimed: ClaimedOut | None = Field(description="The code you claimed yourself, if any.")


class ReferralOut(BaseModel):
    """A claimed referral as the invitee sees it."""

    id: int
    code: str
    status: Status
    claimed_at: datetime
    approved_days: int


class Invitee(BaseModel):
    display_name: str = Field(description="The invitee's first name, never more.")


class MyInviteeOut(BaseModel):
    id: int
    invitee: Invitee
    status: Status
    reason: str = Field(description="Why the referral is where it is, in plain words.")
    claimed_at: datetime
    approved_days: int = Field(description="Days with approved steps so far in the window.")
    days_needed: int
    qualifies_by: date = Field(description="The last day that counts (the invitee's day).")
    pays_on: datetime | None = Field(description="When the hold ends (held or paid).")
    coins: int = Field(description="Your reward: paid, or expected while open; 0 when closed.")


class MyInviteesPage(BaseModel):
    items: list[MyInviteeOut]
    next_cursor: str | None


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(
        default=None, max_length=1000, description="Shown to the referrer on a rejection."
    )


class Walker(BaseModel):
    id: uuid.UUID
    email: str | None
    full_name: str | None


class AdminReferralOut(BaseModel):
    id: int
    status: Status
    reasons: list[str] = Field(
        description="Signals (shared_device, shared_address, same_series, low_trust, "
        "referral_ring, referral_burst) and outcomes (referrer_monthly_cap, not_enough_days, "
        "account_deleted)."
    )
    referrer: Walker
    invitee: Walker
    code: str
    terms: dict[str, int] = Field(description="The terms this referral was claimed under.")
    terms_version: int
    approved_days: int
    claimed_at: datetime
    qualified_at: datetime | None
    hold_until: datetime | None
    paid_at: datetime | None
    referrer_coins: int | None
    invitee_coins: int | None
    reviewed_by: uuid.UUID | None
    reviewed_at: datetime | None
    note: str | None


class AdminReferralPage(BaseModel):
    items: list[AdminReferralOut]
    next_cursor: str | None

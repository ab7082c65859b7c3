"""What the app sees of a user."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stepcoin.auth.schemas import PHONE_PATTERN, UserOut
from stepcoin.validation import NOT_BLANK, omit_null


class WalletOut(BaseModel):
    available_coins: int
    pending_coins: int
    lifetime_earned: int
    lifetime_spent: int


class ProfileOut(UserOut):
    daily_step_goal: int | None = Field(
        description="Your own daily step goal (the streak reminder); null: the default."
    )
    wallet: WalletOut


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("must be an IANA time zone such as Europe/Berlin") from exc
    return value


class ProfileUpdate(BaseModel):
    """Only these fields can be changed by the user; anything else is refused."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra=omit_null("full_name", "timezone"),
    )

    full_name: str | None = Field(
        default=None, min_length=1, max_length=200, json_schema_extra=NOT_BLANK
    )
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    timezone: str | None = Field(
        default=None,
        max_length=64,
        description="IANA time zone such as Europe/Berlin (not an enum of ~600 names: "
        "generated clients choke on GMT+0 beside GMT0)",
        pattern=r"^[A-Za-z0-9_+\-/]+$",
    )

    daily_step_goal: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Your daily step goal (the streak reminder); null goes back to the default.",
    )

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is None:  # the column is NOT NULL: refused here, not by the database (a 500)
            raise ValueError("timezone cannot be null")
        return check_timezone(value)

    @field_validator("full_name")
    @classmethod
    def _full_name(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("full_name cannot be null")
        return value

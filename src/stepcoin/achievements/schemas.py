"""Request and response bodies of the achievements endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from stepcoin.achievements.criteria import Criteria
from stepcoin.validation import omit_null

MAX_REWARD_COINS = 1_000_000
CODE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{1,63}$"


class ProgressOut(BaseModel):
    current: int = Field(description="How far along the caller is (capped at the target).")
    target: int = Field(description="What unlocks the achievement.")


class MyAchievementOut(BaseModel):
    id: int
    code: str
    name: str
    description: str | None
    reward_coins: int
    unlock_criteria: dict[str, Any] = Field(description="What unlocks it (see docs).")
    unlocked_at: datetime | None = Field(description="When the caller unlocked it; null: locked.")
    progress: ProgressOut | None = Field(
        description="For counting kinds (steps, days, streaks); null for first_redemption."
    )


class MyAchievementsOut(BaseModel):
    items: list[MyAchievementOut]


class AdminAchievementOut(BaseModel):
    id: int
    code: str
    name: str
    description: str | None
    unlock_criteria: dict[str, Any]
    reward_coins: int
    is_active: bool
    unlocked_count: int = Field(description="Users who unlocked it.")
    created_at: datetime
    updated_at: datetime


class AdminAchievementsOut(BaseModel):
    items: list[AdminAchievementOut]


class AchievementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE_PATTERN, description="Stable machine name, e.g. `streak_7`.")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    unlock_criteria: Criteria = Field(
        description="One of the documented shapes, chosen by `kind` (docs/engagement.md)."
    )
    reward_coins: StrictInt = Field(default=0, ge=0, le=MAX_REWARD_COINS)
    is_active: StrictBool = True


class AchievementUpdate(BaseModel):
    """Any subset; `code` never changes. Deactivate with is_active=false."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=omit_null("name", "unlock_criteria", "reward_coins", "is_active"),
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    unlock_criteria: Criteria | None = None
    reward_coins: StrictInt | None = Field(default=None, ge=0, le=MAX_REWARD_COINS)
    is_active: StrictBool | None = None

    @field_validator("name", "unlock_criteria", "reward_coins", "is_active")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null; leave the field out instead")
        return value

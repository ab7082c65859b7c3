"""Request and response bodies of the admin API (users, adjustments, audit log)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from stepcoin.users.schemas import WalletOut
from stepcoin.validation import omit_null


class AdminUserOut(BaseModel):
    id: uuid.UUID
    email: str
    full_name: str
    role: str
    is_active: bool
    auth_method: str
    created_at: datetime
    deleted_at: datetime | None = None
    wallet: WalletOut


class AdminUserPage(BaseModel):
    items: list[AdminUserOut]
    next_cursor: str | None


class AdminUserUpdate(BaseModel):
    """Only activeness and role; any other field is refused."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=omit_null("is_active", "role"))

    is_active: StrictBool | None = Field(
        default=None, description="false deactivates and ends every session at once."
    )
    role: Literal["user", "support", "admin"] | None = Field(
        default=None, description="Admins only."
    )

    @field_validator("is_active", "role")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("cannot be null; leave the field out instead")
        return value


class AuditLogOut(BaseModel):
    id: int
    admin_id: uuid.UUID | None
    admin_email: str | None
    action: str
    entity_type: str
    entity_id: str | None
    changes: dict[str, Any]
    created_at: datetime


class AuditLogPage(BaseModel):
    items: list[AuditLogOut]
    next_cursor: str | None


class CoinsValue(BaseModel):
    coins: int
    value: str = Field(description="The coins in the shop's currency, to the cent (a decimal).")


class CohortOut(BaseModel):
    month: str = Field(description="The walkers' sign-up month (UTC), YYYY-MM.")
    walkers: int
    earned_coins: int
    redeemed_coins: int = Field(description="Spent in the shop, net of refunds.")
    unredeemed_coins: int
    unredeemed_value: str
    breakage_rate: float | None = Field(
        description="The share of the coins earned never redeemed (null: nothing earned)."
    )


class RuleChangeOut(BaseModel):
    effective_from: date
    coins_per_1000_steps: int
    daily_step_cap: int | None
    daily_coin_cap: int
    announced: bool = Field(description="True: a rule to come, announced to walkers.")


class EconomyReportOut(BaseModel):
    as_of: date = Field(description="Figures at the end of this UTC day.")
    currency: str = Field(description="The shop's currency (ISO 4217), setting shop.currency_code.")
    coins_per_currency_unit: int
    outstanding: CoinsValue = Field(description="Coins walkers hold (the liability).")
    pending: CoinsValue | None = Field(
        description="Coins held for review; only for today (no history of it is kept)."
    )
    cohorts: list[CohortOut]
    rule_changes: list[RuleChangeOut]


class BudgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cap_coins: int = Field(
        ge=0, le=10**15, strict=True, description="Most coins the source issues a period."
    )
    alert_percent: int = Field(
        default=80,
        ge=1,
        le=100,
        strict=True,
        description="Log an alert when this share of the cap is issued.",
    )


class BudgetOut(BaseModel):
    source: str
    period: str
    period_start: date = Field(description="The first day (UTC) of the current period.")
    cap_coins: int
    alert_percent: int
    issued_coins: int = Field(description="Issued by the source in the current period.")
    used_ratio: float | None
    alerted_at: datetime | None
    exhausted_at: datetime | None = Field(description="When the cap stopped paying, this period.")
    held_coins: int = Field(description="Rewards of the source held, waiting for room.")
    held_rewards: int
    updated_at: datetime


class BudgetList(BaseModel):
    items: list[BudgetOut]

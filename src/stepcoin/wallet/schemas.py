"""What the app and the admin console see of wallets and the coin ledger."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stepcoin.users.schemas import WalletOut
from stepcoin.validation import THREE_KEPT

__all__ = [
    "AdjustmentIn",
    "AdjustmentRequestOut",
    "AdjustmentRequestPage",
    "TransactionOut",
    "TransactionPage",
    "WalletOut",
]

MAX_ADJUSTMENT = 1_000_000


class TransactionOut(BaseModel):
    id: int
    amount: int = Field(description="Signed coins: positive credits, negative debits.")
    transaction_type: str
    reference_id: str = Field(description="What caused the movement (unique per type and walker).")
    balance_after: int = Field(description="available_coins right after this movement.")
    created_at: datetime
    note: str | None = None


class TransactionPage(BaseModel):
    items: list[TransactionOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end.")


class AdjustmentIn(BaseModel):
    """A manual credit (positive) or debit (negative) with the reason the user will be told."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    amount: Annotated[int, Field(strict=True, ge=-MAX_ADJUSTMENT, le=MAX_ADJUSTMENT)] = Field(
        description="Whole coins, non-zero, at most 1,000,000 either way.",
        json_schema_extra={"not": {"const": 0}},
    )
    reason: str = Field(min_length=3, max_length=500, json_schema_extra=THREE_KEPT)

    @field_validator("amount")
    @classmethod
    def _non_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must not be zero")
        return value


class AdjustmentRequestOut(BaseModel):
    """An adjustment above the approval threshold, waiting for (or decided by) a second admin."""

    id: uuid.UUID
    user_id: uuid.UUID
    amount: int
    reason: str
    requested_by: uuid.UUID | None
    requested_at: datetime
    decided_by: uuid.UUID | None
    decided_at: datetime | None
    status: Literal["pending", "approved", "rejected"]
    transaction_id: int | None = Field(description="The ledger row once approved.")


class AdjustmentRequestPage(BaseModel):
    items: list[AdjustmentRequestOut]

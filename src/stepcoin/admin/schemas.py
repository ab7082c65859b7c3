"""Request and response bodies of the admin API (users, adjustments, audit log)."""

from __future__ import annotations

import uuid
from datetime import datetime
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

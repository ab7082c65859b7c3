"""Request and response bodies of the settings part of the admin API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SettingOut(BaseModel):
    key: str
    value: Any = Field(description="The stored value, or the default when none is stored.")
    default: Any
    description: str
    updated_at: datetime | None
    updated_by: uuid.UUID | None


class SettingList(BaseModel):
    items: list[SettingOut]


class SettingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: Any = Field(description="Checked strictly against the key's type and range.")

"""What the devices, inbox and preferences routes take and answer."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, create_model

from stepcoin.notify.kinds import KINDS
from stepcoin.validation import Int64


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: Literal["ios", "android"]
    environment: Literal["production", "sandbox"] = Field(
        default="production",
        description="APNs environment of the build (sandbox: a development build); Android: "
        "production.",
    )
    token: str = Field(
        min_length=20,
        max_length=4096,
        description="The APNs device token (hex) or the FCM registration token.",
    )
    app_version: str | None = Field(default=None, max_length=32)
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA name, e.g. Europe/Berlin."
    )


class DeviceId(BaseModel):
    id: Int64


class DeviceOut(BaseModel):
    id: Int64
    platform: str
    environment: str
    app_version: str | None
    timezone: str | None
    created_at: datetime
    updated_at: datetime


class DevicesOut(BaseModel):
    items: list[DeviceOut]


class NotificationOut(BaseModel):
    id: Int64
    type: str = Field(description="review_outcome, order, achievement, ... (see preferences).")
    title: str
    body: str
    data: dict[str, Any] = Field(description="What the app needs to open the right screen.")
    created_at: datetime
    read_at: datetime | None


class InboxOut(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None
    unread: int = Field(description="Unread notifications in the whole inbox.")


class MarkedRead(BaseModel):
    marked: int


class Switches(BaseModel):
    model_config = ConfigDict(extra="forbid")

    push: StrictBool | None = None
    inbox: StrictBool | None = None


class TypePreference(BaseModel):
    push: bool
    inbox: bool
    mandatory: bool = Field(description="Security and orders cannot be turned off.")
    description: str


# One optional field per notification type (an unknown type is refused by the schema)
TypesIn: type[BaseModel] = create_model(
    "NotificationTypesIn",
    __config__=ConfigDict(extra="forbid"),
    **{
        name: (Switches | None, Field(default=None, description=k.description))
        for name, k in KINDS.items()
    },  # type: ignore[call-overload]
)
LocalTime = Annotated[
    str,
    Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="Local time, HH:MM."),
]


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    types: TypesIn | None = Field(
        default=None, description="Per type: push and/or inbox on or off."
    )
    quiet_start: LocalTime | None = Field(
        default=None, description="Start of quiet hours, local time (HH:MM); default 22:00."
    )
    quiet_end: LocalTime | None = Field(
        default=None, description="End of quiet hours, local time (HH:MM); default 07:00."
    )

    def type_changes(self) -> dict[str, dict[str, bool | None]]:
        if self.types is None:
            return {}
        return {
            name: switches.model_dump() for name, switches in self.types if switches is not None
        }

    @staticmethod
    def clock(value: str | None) -> time | None:
        return None if value is None else time.fromisoformat(value)


class PreferencesOut(BaseModel):
    types: dict[str, TypePreference]
    quiet_start: str
    quiet_end: str

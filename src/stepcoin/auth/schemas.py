"""Request and response bodies of the sign-in endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from stepcoin.auth.passwords import NEW_PASSWORD_SCHEMA
from stepcoin.validation import NOT_BLANK

PHONE_PATTERN = r"^\+?[0-9 ()\-]{5,32}$"


class UserOut(BaseModel):
    """What the app sees of a user (the profile adds the wallet: users.schemas.ProfileOut)."""

    id: uuid.UUID
    email: str
    email_verified: bool = False
    full_name: str
    phone: str | None
    auth_method: str
    timezone: str
    role: str
    created_at: datetime


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr
    password: Annotated[str, StringConstraints(strip_whitespace=False)] = Field(
        min_length=1,  # every character counts: login compares the password as sent
        max_length=1024,
        description="8 to 128 characters, not a common one.",
        json_schema_extra=NEW_PASSWORD_SCHEMA,
    )
    full_name: str = Field(min_length=1, max_length=200, json_schema_extra=NOT_BLANK)
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=512)


class IdTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id_token: str = Field(min_length=1, max_length=8192)
    nonce: str | None = Field(default=None, max_length=512)
    full_name: str | None = Field(
        default=None,
        max_length=200,
        description="Apple sends the name only to the app, on the first sign-in.",
    )


class TokenPair(BaseModel):
    user: UserOut
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")

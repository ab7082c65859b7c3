"""Request and response bodies of the email links (verification, password reset)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from stepcoin.auth.passwords import NEW_PASSWORD_SCHEMA


class EmailTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(
        min_length=1, max_length=128, description="The `token=` value of the mail's link."
    )


class PasswordResetRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr


class PasswordResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(
        min_length=1, max_length=128, description="The `token=` value of the mail's link."
    )
    new_password: str = Field(
        min_length=1,
        max_length=1024,
        description="8 to 128 characters, not a common one.",
        json_schema_extra=NEW_PASSWORD_SCHEMA,
    )


class AcceptedOut(BaseModel):
    detail: str


class PasswordResetOut(BaseModel):
    detail: str
    sessions_ended: int = Field(description="App sessions (refresh-token families) ended.")

"""Request and response bodies of the account lifecycle routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stepcoin.auth.passwords import NEW_PASSWORD_SCHEMA


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(
        min_length=1,
        max_length=1024,
        description="8 to 128 characters, not a common one.",
        json_schema_extra=NEW_PASSWORD_SCHEMA,
    )


class PasswordChangedOut(BaseModel):
    other_sessions_ended: int = Field(description="Sessions on other devices that were ended.")


class SessionOut(BaseModel):
    id: uuid.UUID = Field(description="The session (refresh-token family) id.")
    created_at: datetime = Field(description="When this device signed in.")
    last_used_at: datetime = Field(description="When it last refreshed its tokens.")
    user_agent: str | None
    ip: str | None = Field(description="The network it last came from (IPv4 /24, IPv6 /48).")
    current: bool = Field(description="True for the device that asks.")


class SessionListOut(BaseModel):
    items: list[SessionOut]


class SessionsEndedOut(BaseModel):
    ended: int


def _one_credential_schema(schema: dict[str, Any]) -> None:
    """Exactly one of password and id_token, as `_one_credential` checks: two shapes, each
    with the fields that go with it (what a client generator makes two classes of)."""
    props = schema["properties"]

    def given(name: str) -> dict[str, Any]:
        return next(b for b in props[name]["anyOf"] if b.get("type") != "null")

    null = {"type": "null"}
    schema["oneOf"] = [
        {
            "title": "PasswordReauthentication",
            "required": ["password"],
            "properties": {"password": given("password"), "id_token": null},
        },
        {
            "title": "IdTokenReauthentication",
            "required": ["id_token"],
            "properties": {
                "id_token": given("id_token"),
                "password": null,
                "provider": props["provider"],
                "authorization_code": props["authorization_code"],
            },
        },
    ]


class DeleteAccountIn(BaseModel):
    """Re-authentication: the password of an email account, or a fresh ID token of the Google
    or Apple account it signs in with (Apple: also the authorization code, so that StepCoin
    can revoke its Apple tokens)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_one_credential_schema,
    )

    password: str | None = Field(default=None, min_length=1, max_length=1024)
    id_token: str | None = Field(
        default=None, min_length=1, max_length=8192, pattern=r"^[A-Za-z0-9_\-.]+$"
    )
    provider: Literal["google", "apple"] | None = Field(
        default=None, description="Whose id_token; default: the account's sign-in method."
    )
    authorization_code: str | None = Field(
        default=None, min_length=1, max_length=2048, pattern=r"^[\x21-\x7e]+$"
    )

    @model_validator(mode="after")
    def _one_credential(self) -> DeleteAccountIn:
        if (self.password is None) == (self.id_token is None):
            raise ValueError("give either password or id_token")
        return self

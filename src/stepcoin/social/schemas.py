"""What the friends, blocks and reports routes take and answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from stepcoin.social.models import REPORT_STATUSES

ReportStatus = Literal["open", "resolved"]
assert set(REPORT_STATUSES) == set(ReportStatus.__args__)  # type: ignore[attr-defined]


class InvitationOut(BaseModel):
    code: str = Field(description="The code, shown once: only its hash is kept.")
    url: str = Field(description="A link that opens the app on the invitation.")
    expires_at: datetime


class Walker(BaseModel):
    user_id: uuid.UUID
    display_name: str = Field(description="The walker's first name, never more.")


class InvitationView(BaseModel):
    inviter: Walker
    expires_at: datetime
    own: bool = Field(description="True when this is your own invitation.")
    already_friends: bool


class FriendOut(BaseModel):
    user_id: uuid.UUID
    display_name: str = Field(description="The friend's first name.")
    alias: str | None = Field(description="Your private name for this friend; only you see it.")
    since: datetime


class FriendsOut(BaseModel):
    items: list[FriendOut]


class AliasIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: str | None = Field(max_length=60, description="Null or blank removes the alias.")


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(max_length=320, description="The exact email of the walker.")


class RequestSent(BaseModel):
    detail: str = Field(description="The same whether or not a walker has this email.")


class IncomingRequest(BaseModel):
    id: int
    sender: Walker
    created_at: datetime


class OutgoingRequest(BaseModel):
    id: int
    email: str
    created_at: datetime


class RequestsOut(BaseModel):
    incoming: list[IncomingRequest] = Field(description="Waiting for your answer.")
    outgoing: list[OutgoingRequest] = Field(
        description="Sent and not (yet) answered with a friendship; a decline is not told."
    )


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID


class BlockOut(BaseModel):
    user_id: uuid.UUID


class BlockedOut(BaseModel):
    user_id: uuid.UUID
    created_at: datetime


class BlocksOut(BaseModel):
    items: list[BlockedOut]


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID
    reason: str | None = Field(default=None, max_length=2000)


class ReportOut(BaseModel):
    id: int
    user_id: uuid.UUID = Field(description="The walker reported.")
    reason: str | None
    status: ReportStatus
    created_at: datetime


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=1000)


class StaffWalker(BaseModel):
    id: uuid.UUID
    email: str | None
    full_name: str | None


class AdminReportOut(BaseModel):
    id: int
    status: ReportStatus
    reason: str | None
    reporter: StaffWalker | None = Field(description="Null when the reporter's account is gone.")
    reported: StaffWalker
    created_at: datetime
    resolved_by: uuid.UUID | None
    resolved_at: datetime | None
    note: str | None


class AdminReportPage(BaseModel):
    items: list[AdminReportOut]
    next_cursor: str | None

"""What the group routes take and answer (docs/groups.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from stepcoin.social.models import GROUP_KINDS, GROUP_ROLES

GroupKind = Literal["friends", "club", "team", "company"]
GroupRole = Literal["owner", "admin", "member"]
assert set(GROUP_KINDS) == set(GroupKind.__args__)  # type: ignore[attr-defined]
assert set(GROUP_ROLES) == set(GroupRole.__args__)  # type: ignore[attr-defined]


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    kind: GroupKind
    open: StrictBool = Field(
        default=True, description="True: anyone joins at once; false: by request."
    )
    description: str | None = Field(default=None, max_length=500)


class GroupPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=80)
    open: StrictBool | None = None
    description: str | None = Field(default=None, max_length=500)


class GroupOut(BaseModel):
    id: int
    name: str
    kind: GroupKind
    open: bool
    member_count: int
    email_domain: str | None = Field(
        description="A company group's domain, bound by an admin; null: none (yet)."
    )
    description: str | None = Field(description="Null for a walker who cannot see inside.")
    owner_id: uuid.UUID | None = Field(description="Null for a walker who cannot see inside.")
    created_at: datetime
    my_role: GroupRole | None = Field(description="Your role; null: not a member.")
    requested: bool = Field(description="True while your request to join waits.")


class GroupsOut(BaseModel):
    items: list[GroupOut]


class MemberOut(BaseModel):
    user_id: uuid.UUID
    display_name: str = Field(description="The member's first name.")
    role: GroupRole
    joined_at: datetime


class MembersOut(BaseModel):
    items: list[MemberOut]
    next_cursor: str | None


class WaitingOut(BaseModel):
    user_id: uuid.UUID
    display_name: str
    created_at: datetime


class WaitingListOut(BaseModel):
    items: list[WaitingOut]


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["admin", "member"]


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: uuid.UUID = Field(description="The member who becomes the owner.")


class DomainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email_domain: str | None = Field(
        max_length=255, description="e.g. example.com; null unbinds the group."
    )


class StaffGroupOut(BaseModel):
    id: int
    name: str
    kind: GroupKind
    open: bool
    member_count: int
    email_domain: str | None
    description: str | None
    owner_id: uuid.UUID | None
    created_at: datetime


class StaffGroupPage(BaseModel):
    items: list[StaffGroupOut]
    next_cursor: int | None


class StaffGroupDetail(StaffGroupOut):
    members: list[MemberOut] = Field(description="The first 200 members, in joining order.")

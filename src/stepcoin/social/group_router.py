"""Groups: create, find, join or ask, leave; the owner's and admins' work; the staff's view
and the company domain (docs/groups.md)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from stepcoin.auth.dependencies import ActiveClaimsDep, AdminDep, StaffDep
from stepcoin.db import ReadSessionDep, SessionDep
from stepcoin.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery
from stepcoin.social import groups as service
from stepcoin.social.group_schemas import (
    DomainIn,
    GroupIn,
    GroupOut,
    GroupPatch,
    GroupsOut,
    MemberOut,
    MembersOut,
    RoleIn,
    StaffGroupDetail,
    StaffGroupOut,
    StaffGroupPage,
    TransferIn,
    WaitingListOut,
)
from stepcoin.validation import Int64

router = APIRouter(prefix="/v1/groups", tags=["groups"])
admin_router = APIRouter(prefix="/v1/admin/groups", tags=["admin: groups"])
_MEMBER = "/{group_id}/members/{user_id}"
NO_CONTENT = status.HTTP_204_NO_CONTENT


@router.post("", status_code=status.HTTP_201_CREATED, response_model=GroupOut)
async def create_group(body: GroupIn, claims: ActiveClaimsDep, session: SessionDep) -> Any:
    """Create a group; you are its owner."""
    new = service.NewGroup(body.name, body.kind, body.open, body.description)
    return await service.create_group(session, claims.user_id, new)


@router.get("", response_model=GroupsOut)
async def list_groups(
    claims: ActiveClaimsDep,
    session: ReadSessionDep,
    q: Annotated[
        str | None, Query(max_length=80, description="Find groups by name; absent: yours.")
    ] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Any:
    """Your groups, or groups found by name."""
    return await service.list_groups(session, claims.user_id, query=q, limit=limit)


@router.get("/{group_id}", response_model=GroupOut)
async def get_group(group_id: Int64, claims: ActiveClaimsDep, session: ReadSessionDep) -> Any:
    """A group: a summary, and its description and owner for who can see inside."""
    return await service.get_group(session, claims.user_id, group_id)


@router.patch("/{group_id}", response_model=GroupOut)
async def update_group(
    group_id: Int64, body: GroupPatch, claims: ActiveClaimsDep, session: SessionDep
) -> Any:
    """Rename, describe, open or close a group (owner, admins)."""
    changes = body.model_dump(exclude_unset=True)
    return await service.update_group(session, claims.user_id, group_id, changes)


@router.delete("/{group_id}", status_code=NO_CONTENT)
async def delete_group(group_id: Int64, claims: ActiveClaimsDep, session: SessionDep) -> Response:
    """Delete a group (owner)."""
    await service.delete_group(session, claims.user_id, group_id)
    return Response(status_code=NO_CONTENT)


@router.post("/{group_id}/join", response_model=GroupOut)
async def join_group(group_id: Int64, claims: ActiveClaimsDep, session: SessionDep) -> Any:
    """Join an open group, or ask to join one by request (`requested`)."""
    return await service.join(session, claims.user_id, group_id)


@router.post("/{group_id}/leave", status_code=NO_CONTENT)
async def leave_group(group_id: Int64, claims: ActiveClaimsDep, session: SessionDep) -> Response:
    """Leave a group or withdraw your request; the owner hands over first (alone: deleted)."""
    await service.leave(session, claims.user_id, group_id)
    return Response(status_code=NO_CONTENT)


@router.post("/{group_id}/transfer", response_model=GroupOut)
async def transfer_group(
    group_id: Int64, body: TransferIn, claims: ActiveClaimsDep, session: SessionDep
) -> Any:
    """Hand the group to a member (owner); you stay as an admin."""
    return await service.transfer(session, claims.user_id, group_id, body.user_id)


@router.get("/{group_id}/members", response_model=MembersOut)
async def list_members(
    group_id: Int64,
    claims: ActiveClaimsDep,
    session: ReadSessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Any:
    """The members in joining order (members; anyone for an open group)."""
    return await service.list_members(session, claims.user_id, group_id, limit=limit, cursor=cursor)


@router.get("/{group_id}/requests", response_model=WaitingListOut)
async def list_requests(group_id: Int64, claims: ActiveClaimsDep, session: SessionDep) -> Any:
    """Walkers waiting to join (owner, admins)."""
    return await service.list_requests(session, claims.user_id, group_id)


@router.post(_MEMBER + "/approve", response_model=MemberOut)
async def approve_member(
    group_id: Int64, user_id: uuid.UUID, claims: ActiveClaimsDep, session: SessionDep
) -> Any:
    """Let a waiting walker in (owner, admins)."""
    return await service.approve(session, claims.user_id, group_id, user_id)


@router.post(_MEMBER + "/decline", status_code=NO_CONTENT)
async def decline_member(
    group_id: Int64, user_id: uuid.UUID, claims: ActiveClaimsDep, session: SessionDep
) -> Response:
    """Refuse a waiting walker (owner, admins); they may ask again."""
    await service.decline(session, claims.user_id, group_id, user_id)
    return Response(status_code=NO_CONTENT)


@router.post(_MEMBER + "/kick", status_code=NO_CONTENT)
async def kick_member(
    group_id: Int64, user_id: uuid.UUID, claims: ActiveClaimsDep, session: SessionDep
) -> Response:
    """Remove a member (owner; admins remove plain members)."""
    await service.kick(session, claims.user_id, group_id, user_id)
    return Response(status_code=NO_CONTENT)


@router.post(_MEMBER + "/ban", status_code=NO_CONTENT)
async def ban_member(
    group_id: Int64, user_id: uuid.UUID, claims: ActiveClaimsDep, session: SessionDep
) -> Response:
    """Remove and keep out a walker (owner; admins ban plain members and outsiders)."""
    await service.ban(session, claims.user_id, group_id, user_id)
    return Response(status_code=NO_CONTENT)


@router.put(_MEMBER + "/role", response_model=MemberOut)
async def set_member_role(
    group_id: Int64,
    user_id: uuid.UUID,
    body: RoleIn,
    claims: ActiveClaimsDep,
    session: SessionDep,
) -> Any:
    """Make a member an admin, or an admin a member (owner)."""
    return await service.set_role(session, claims.user_id, group_id, user_id, body.role)


@router.get("/{group_id}/bans", response_model=WaitingListOut)
async def list_bans(group_id: Int64, claims: ActiveClaimsDep, session: SessionDep) -> Any:
    """Walkers banned from the group (owner, admins)."""
    return await service.list_bans(session, claims.user_id, group_id)


@router.delete("/{group_id}/bans/{user_id}", status_code=NO_CONTENT)
async def unban_member(
    group_id: Int64, user_id: uuid.UUID, claims: ActiveClaimsDep, session: SessionDep
) -> Response:
    """Lift a ban (owner, admins; idempotent)."""
    await service.unban(session, claims.user_id, group_id, user_id)
    return Response(status_code=NO_CONTENT)


@admin_router.get("", response_model=StaffGroupPage)
async def admin_list_groups(
    staff: StaffDep,
    session: ReadSessionDep,
    q: Annotated[str | None, Query(max_length=255, description="Name or domain.")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: Annotated[Int64 | None, Query(description="next_cursor of the last page.")] = None,
) -> Any:
    """Every group, newest first (staff)."""
    return await service.admin_groups(session, query=q, limit=limit, cursor=cursor)


@admin_router.get("/{group_id}", response_model=StaffGroupDetail)
async def admin_get_group(group_id: Int64, staff: StaffDep, session: ReadSessionDep) -> Any:
    """A group with its first members (staff)."""
    return await service.admin_group(session, group_id)


@admin_router.put("/{group_id}/domain", response_model=StaffGroupOut)
async def bind_domain(group_id: Int64, body: DomainIn, admin: AdminDep, session: SessionDep) -> Any:
    """Bind a company group to an email domain, or unbind it (admins; audited)."""
    return await service.bind_domain(session, admin.id, group_id, body.email_domain)

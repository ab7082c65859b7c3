"""Friends by consent: invitations, requests by email, the friends list, blocks, reports, and
the staff's moderation queue (docs/friends.md)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response, status

from stepcoin.auth.dependencies import ActiveClaimsDep, StaffDep
from stepcoin.db import ReadSessionDep, SessionDep
from stepcoin.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery
from stepcoin.ratelimit import LimitedRoute
from stepcoin.social import service
from stepcoin.social.schemas import (
    AdminReportOut,
    AdminReportPage,
    AliasIn,
    BlockOut,
    BlocksOut,
    FriendOut,
    FriendsOut,
    InvitationOut,
    InvitationView,
    ReportIn,
    ReportOut,
    ReportStatus,
    RequestIn,
    RequestSent,
    RequestsOut,
    ResolveIn,
    UserIn,
)
from stepcoin.validation import Int64

router = APIRouter(tags=["friends"])
admin_router = APIRouter(prefix="/v1/admin/reports", tags=["admin: reports"])
_CODE = "/v1/friends/invitations/{code}"
# a uuid only: /v1/friends/invitations and /v1/friends/requests are other resources (a DELETE
# there is 405, not a user id that fails to parse); the document shows /v1/friends/{user_id}
_FRIEND = "/v1/friends/{user_id:uuid}"
# counted before the route runs (stepcoin.ratelimit; main.py applies them): guessing codes
# and probing emails is slow
LIMITED = (
    LimitedRoute("GET", _CODE, "friend_codes"),
    LimitedRoute("POST", _CODE + "/accept", "friend_codes"),
    LimitedRoute("POST", "/v1/friends/requests", "friend_codes"),
)
CodePath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern="^[A-Za-z0-9-]+$",
        description="An invitation code (case and dashes do not matter).",
    ),
]


@router.post("/v1/friends/invitations", status_code=status.HTTP_201_CREATED)
async def create_invitation(claims: ActiveClaimsDep, session: SessionDep) -> InvitationOut:
    """A new invitation code and link, valid for `friends.invitation_days`; shown once."""
    return InvitationOut(**await service.create_invitation(session, claims.user_id))


@router.get(_CODE, response_model=InvitationView)
async def view_invitation(code: CodePath, claims: ActiveClaimsDep, session: SessionDep) -> Any:
    """Who invites you; an unknown, expired, revoked, used or blocked code is the same 404."""
    return await service.view_invitation(session, claims.user_id, code)


@router.post(_CODE + "/accept", response_model=FriendOut)
async def accept_invitation(code: CodePath, claims: ActiveClaimsDep, session: SessionDep) -> Any:
    """Accept an invitation: you and the inviter become friends (friends already: the same)."""
    return await service.accept_invitation(session, claims.user_id, code)


@router.delete(_CODE, status_code=status.HTTP_204_NO_CONTENT)
async def revoke_invitation(
    code: CodePath, claims: ActiveClaimsDep, session: SessionDep
) -> Response:
    """Revoke one of your open invitations."""
    await service.revoke_invitation(session, claims.user_id, code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/friends/requests", status_code=status.HTTP_202_ACCEPTED, response_model=RequestSent
)
async def request_friend(body: RequestIn, claims: ActiveClaimsDep, session: SessionDep) -> Any:
    """Ask the walker with this exact email; the same answer whether or not one exists."""
    return await service.request_friend(session, claims.user_id, str(body.email))


@router.get("/v1/friends/requests", response_model=RequestsOut)
async def list_friend_requests(claims: ActiveClaimsDep, session: ReadSessionDep) -> Any:
    """Requests waiting for your answer, and yours waiting for others'."""
    return await service.list_requests(session, claims.user_id)


@router.post("/v1/friends/requests/{friend_request_id}/accept", response_model=FriendOut)
async def accept_friend_request(
    friend_request_id: Int64, claims: ActiveClaimsDep, session: SessionDep
) -> Any:
    """Accept a request to you: you become friends."""
    return await service.accept_request(session, claims.user_id, friend_request_id)


@router.post(
    "/v1/friends/requests/{friend_request_id}/decline", status_code=status.HTTP_204_NO_CONTENT
)
async def decline_friend_request(
    friend_request_id: Int64, claims: ActiveClaimsDep, session: SessionDep
) -> Response:
    """Decline a request to you; the sender is not told."""
    await service.decline_request(session, claims.user_id, friend_request_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/friends", response_model=FriendsOut)
async def list_friends(claims: ActiveClaimsDep, session: ReadSessionDep) -> Any:
    """Your friends, newest first, with your private aliases."""
    return await service.list_friends(session, claims.user_id)


@router.delete(_FRIEND, status_code=status.HTTP_204_NO_CONTENT)
async def remove_friend(
    user_id: uuid.UUID, claims: ActiveClaimsDep, session: SessionDep
) -> Response:
    """End a friendship (for both)."""
    await service.remove_friend(session, claims.user_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(_FRIEND + "/alias", response_model=FriendOut)
async def set_friend_alias(
    user_id: uuid.UUID, body: AliasIn, claims: ActiveClaimsDep, session: SessionDep
) -> Any:
    """Your private name for a friend (null removes it)."""
    return await service.set_alias(session, claims.user_id, user_id, body.alias)


@router.post("/v1/blocks", response_model=BlockOut)
async def block_walker(body: UserIn, claims: ActiveClaimsDep, session: SessionDep) -> Any:
    """Block a walker: the friendship ends, requests are cancelled, each is hidden from the
    other (idempotent)."""
    return await service.block(session, claims.user_id, body.user_id)


@router.get("/v1/blocks", response_model=BlocksOut)
async def list_blocks(claims: ActiveClaimsDep, session: ReadSessionDep) -> Any:
    """The walkers you blocked."""
    return await service.list_blocks(session, claims.user_id)


@router.delete("/v1/blocks/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def unblock_walker(
    user_id: uuid.UUID, claims: ActiveClaimsDep, session: SessionDep
) -> Response:
    """Lift a block (idempotent); an ended friendship does not come back."""
    await service.unblock(session, claims.user_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/v1/reports", status_code=status.HTTP_201_CREATED, response_model=ReportOut)
async def report_walker(body: ReportIn, claims: ActiveClaimsDep, session: SessionDep) -> Any:
    """Report a walker to the moderation queue."""
    return await service.report_walker(session, claims.user_id, body.user_id, body.reason)


@admin_router.get("", response_model=AdminReportPage)
async def list_reports(
    staff: StaffDep,
    session: ReadSessionDep,
    status: ReportStatus | None = "open",
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Any:
    """Reports of a status (default: the open queue), oldest first."""
    return await service.admin_reports(session, status=status, limit=limit, cursor=cursor)


@admin_router.post("/{report_id}/resolve", response_model=AdminReportOut)
async def resolve_report(
    report_id: Int64,
    staff: StaffDep,
    session: SessionDep,
    body: Annotated[ResolveIn | None, Body()] = None,
) -> Any:
    """Resolve an open report with an optional note; never one about yourself; audited."""
    resolution = service.Resolution(staff_id=staff.id, note=body.note if body else None)
    return await service.resolve_report(session, report_id, resolution)

"""Challenge routes: templates, create, view, join/leave, the leaderboard; admin list, detail,
cancel (docs/challenges.md)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status

from stepcoin.auth.dependencies import AdminDep, CurrentUserDep, StaffDep
from stepcoin.challenges import service
from stepcoin.challenges.schemas import (
    AdminChallengeList,
    AdminChallengeOut,
    CancelIn,
    ChallengeDetailOut,
    ChallengeIn,
    ChallengeList,
    LeaderboardOut,
    Status,
    TemplatesOut,
)
from stepcoin.db import ReadSessionDep, SessionDep

router = APIRouter(prefix="/v1/challenges", tags=["challenges"])
admin_router = APIRouter(prefix="/v1/admin/challenges", tags=["admin: challenges"])


def _caller(user: Any) -> service.Caller:
    return service.Caller(id=user.id, role=user.role)


@router.get("/templates", response_model=TemplatesOut)
async def list_templates(user: CurrentUserDep) -> Any:
    """The challenge templates and their parameters."""
    return service.templates()


@router.get("", response_model=ChallengeList)
async def list_challenges(user: CurrentUserDep, session: ReadSessionDep) -> Any:
    """Your challenges (created, joined, invited) and those open to everyone."""
    return await service.my_challenges(session, user.id)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ChallengeDetailOut)
async def create_challenge(body: ChallengeIn, user: CurrentUserDep, session: SessionDep) -> Any:
    """Create a challenge (a walker's: for friends; an admin's: for everyone); a walker's own
    challenge has them as its first participant, their entry fee in escrow."""
    return await service.create(session, _caller(user), body.model_dump())


@router.get("/{challenge_id}", response_model=ChallengeDetailOut)
async def get_challenge(
    challenge_id: uuid.UUID, user: CurrentUserDep, session: ReadSessionDep
) -> Any:
    """One challenge with its lifecycle status and your part in it."""
    return await service.view(session, user.id, challenge_id)


@router.post("/{challenge_id}/publish", response_model=ChallengeDetailOut)
async def publish_challenge(
    challenge_id: uuid.UUID, user: CurrentUserDep, session: SessionDep
) -> Any:
    """A draft of yours becomes scheduled (open for joining until its start)."""
    return await service.publish(session, _caller(user), challenge_id)


@router.post("/{challenge_id}/join", response_model=ChallengeDetailOut)
async def join_challenge(challenge_id: uuid.UUID, user: CurrentUserDep, session: SessionDep) -> Any:
    """Join (the entry fee goes to escrow); joined already: the same answer."""
    return await service.join(session, _caller(user), challenge_id)


@router.post("/{challenge_id}/leave", response_model=ChallengeDetailOut)
async def leave_challenge(
    challenge_id: uuid.UUID, user: CurrentUserDep, session: SessionDep
) -> Any:
    """Leave before the start, the entry fee refunded; after the start: 409."""
    return await service.leave(session, _caller(user), challenge_id)


@router.post("/{challenge_id}/cancel", response_model=ChallengeDetailOut)
async def cancel_challenge(
    challenge_id: uuid.UUID,
    user: CurrentUserDep,
    session: SessionDep,
    body: Annotated[CancelIn | None, Body()] = None,
) -> Any:
    """Cancel your challenge before its start: every entry fee goes back."""
    return await service.cancel(
        session, _caller(user), challenge_id, reason=body.reason if body else None
    )


@router.get("/{challenge_id}/leaderboard", response_model=LeaderboardOut)
async def challenge_leaderboard(
    challenge_id: uuid.UUID, user: CurrentUserDep, session: ReadSessionDep
) -> Any:
    """The standings as of the last score refresh (about a minute; final once settled)."""
    return await service.leaderboard(session, user.id, challenge_id)


@admin_router.get("", response_model=AdminChallengeList)
async def admin_list_challenges(
    staff: StaffDep,
    session: ReadSessionDep,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """Every challenge (newest first), with counts per status."""
    return await service.admin_list(session, status=status, limit=limit)


@admin_router.get("/{challenge_id}", response_model=AdminChallengeOut)
async def admin_get_challenge(
    challenge_id: uuid.UUID, staff: StaffDep, session: ReadSessionDep
) -> Any:
    """A challenge with its participants, fees held, results and payouts."""
    return await service.admin_detail(session, challenge_id)


@admin_router.post("/{challenge_id}/cancel", response_model=AdminChallengeOut)
async def admin_cancel_challenge(
    challenge_id: uuid.UUID,
    admin: AdminDep,
    session: SessionDep,
    body: Annotated[CancelIn | None, Body()] = None,
) -> Any:
    """Cancel a challenge before its settlement: every entry fee goes back; audited."""
    return await service.cancel(
        session,
        service.Caller(id=admin.id, role=admin.role),
        challenge_id,
        reason=body.reason if body else None,
        as_admin=True,
    )

"""Fair play over HTTP: the walker's standing, and staff's view of a walker's links and trust."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from stepcoin.auth.dependencies import ActiveClaimsDep, CurrentUser, require_roles
from stepcoin.db import SessionDep
from stepcoin.fairplay import service

router = APIRouter(tags=["fair play"])
Staff = Annotated[CurrentUser, Depends(require_roles("admin", "support"))]


class StandingOut(BaseModel):
    standing: str = Field(description="good, building or limited")
    title: str
    message: str
    checks: list[str] = Field(description="What is checked by our team for now, in plain words.")


class ClearIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000)


@router.get("/v1/me/standing", response_model=StandingOut)
async def my_standing(claims: ActiveClaimsDep, session: SessionDep) -> Any:
    """Your standing (trust) in plain words: what it means for you and what is checked."""
    return await service.standing(session, claims.user_id)


@router.get("/v1/admin/users/{user_id}/fair-play", tags=["admin: fair play"])
async def fair_play_of(user_id: uuid.UUID, staff: Staff, session: SessionDep) -> Any:
    """A walker's trust score with its inputs, their linked accounts (by device, sign-up
    address, same steps), what the link rules count now and what reviewers cleared."""
    return await service.staff_view(session, user_id)


@router.post("/v1/admin/users/{user_id}/links/clear", tags=["admin: fair play"])
async def clear_links(
    user_id: uuid.UUID, staff: Staff, session: SessionDep, body: ClearIn | None = None
) -> Any:
    """The walker's links were looked at and are fine: the link rules stay quiet for them
    until more accounts join a link. Audited."""
    return await service.clear_links(
        session, user_id, actor_id=staff.id, note=body.note if body else None
    )

"""Achievements: the walker's badges with progress, and the admins' catalogue of them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status

from stepcoin.achievements import repository, service
from stepcoin.achievements.schemas import (
    AchievementCreate,
    AchievementUpdate,
    AdminAchievementOut,
    AdminAchievementsOut,
    MyAchievementsOut,
)
from stepcoin.auth.dependencies import ClaimsDep, CurrentUser, require_roles
from stepcoin.db import SessionDep
from stepcoin.errors import NotFound, account_gone

router = APIRouter(tags=["achievements"])
admin_router = APIRouter(prefix="/v1/admin/achievements", tags=["admin: achievements"])
Staff = Annotated[CurrentUser, Depends(require_roles("admin", "support"))]
Admin = Annotated[CurrentUser, Depends(require_roles("admin"))]
AchievementId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _not_found() -> NotFound:
    return NotFound("No such achievement.", code="achievement_not_found")


@router.get("/v1/achievements", response_model=MyAchievementsOut)
async def my_achievements(claims: ClaimsDep, session: SessionDep) -> Any:
    """Every active achievement with your `unlocked_at` (null while locked) and progress."""
    items = await service.list_for_user(session, claims.user_id)
    if items is None:
        raise account_gone()
    return {"items": items}


@admin_router.get("", response_model=AdminAchievementsOut)
async def list_achievements(staff: Staff, session: SessionDep) -> Any:
    """Every achievement, active or not, with how many users unlocked it."""
    return {"items": await repository.list_all(session)}


@admin_router.get("/{achievement_id}", response_model=AdminAchievementOut)
async def get_achievement(achievement_id: AchievementId, staff: Staff, session: SessionDep) -> Any:
    """One achievement."""
    row = await repository.get(session, achievement_id)
    if row is None:
        raise _not_found()
    return row


@admin_router.post("", status_code=status.HTTP_201_CREATED, response_model=AdminAchievementOut)
async def create_achievement(body: AchievementCreate, admin: Admin, session: SessionDep) -> Any:
    """Create an achievement (admins only); existing users are evaluated by a background job."""
    values = body.model_dump()
    values["unlock_criteria"] = body.unlock_criteria.model_dump()
    return await service.create(session, values, admin_id=admin.id)


@admin_router.patch("/{achievement_id}", response_model=AdminAchievementOut)
async def update_achievement(
    achievement_id: AchievementId, body: AchievementUpdate, admin: Admin, session: SessionDep
) -> Any:
    """Change or deactivate (is_active=false) an achievement (admins only); audited."""
    changes = body.model_dump(exclude_unset=True)
    if body.unlock_criteria is not None:
        changes["unlock_criteria"] = body.unlock_criteria.model_dump()
    return await service.update(session, achievement_id, changes, admin_id=admin.id)

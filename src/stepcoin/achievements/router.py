"""Achievements: the walker's badges with progress, and the admins' catalogue of them."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Response, status

from stepcoin.achievements import repository, service
from stepcoin.achievements.schemas import (
    AchievementCreate,
    AchievementUpdate,
    AdminAchievementOut,
    AdminAchievementsOut,
    MyAchievementsOut,
)
from stepcoin.auth.dependencies import ClaimsDep, CurrentUser, require_roles
from stepcoin.db import DriverDep, SessionDep
from stepcoin.errors import NotFound, account_gone

router = APIRouter(tags=["achievements"])
admin_router = APIRouter(prefix="/v1/admin/achievements", tags=["admin: achievements"])
Staff = Annotated[CurrentUser, Depends(require_roles("admin", "support"))]
Admin = Annotated[CurrentUser, Depends(require_roles("admin"))]
AchievementId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _not_found() -> NotFound:
    return NotFound("No such achievement.", code="achievement_not_found")


def json_bytes(data: Any) -> bytes:
    """The answer as FastAPI would serialise it through MyAchievementsOut, without the model
    (tests/achievements/test_endpoints.py compares the bytes)."""
    return orjson.dumps(data, option=orjson.OPT_UTC_Z)


async def achievements_answer(driver: Any, user_id: uuid.UUID, query: bytes = b"") -> bytes | None:
    """GET /v1/achievements's 200 body (the route, and main.HotRoutes without FastAPI's
    routing); None for an inactive or missing account. The route takes no query: one is
    ignored, as FastAPI ignores it."""
    items = await service.my_achievements(driver, user_id)
    return None if items is None else json_bytes({"items": items})


@router.get("/v1/achievements", response_model=MyAchievementsOut)
async def my_achievements(claims: ClaimsDep, driver: DriverDep) -> Any:
    """Every active achievement with your `unlocked_at` (null while locked) and progress."""
    body = await achievements_answer(driver, claims.user_id)
    if body is None:
        raise account_gone()
    return Response(body, media_type="application/json")


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

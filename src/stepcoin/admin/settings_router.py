"""Runtime settings in the admin API: support may read, only admins change them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from stepcoin.auth.dependencies import AdminDep, StaffDep
from stepcoin.db import SessionDep
from stepcoin.runtime_settings import admin as settings_admin
from stepcoin.runtime_settings.registry import SPECS
from stepcoin.runtime_settings.schemas import SettingList, SettingOut, SettingUpdate

router = APIRouter(prefix="/v1/admin/settings", tags=["admin"])


@router.get("", response_model=SettingList)
async def list_settings(staff: StaffDep, session: SessionDep) -> Any:
    """Every known setting with its value, default, meaning and last change."""
    return {"items": await settings_admin.list_settings(session)}


@router.put("/{key}", response_model=SettingOut)
async def put_setting(
    key: Annotated[
        str,
        Path(description="A key GET lists", json_schema_extra={"enum": sorted(SPECS)}),
    ],
    body: SettingUpdate,
    admin: AdminDep,
    session: SessionDep,
) -> Any:
    """Change one setting (validated, audited); other processes see it within 5 seconds."""
    return await settings_admin.update_setting(session, key, body.value, admin_id=admin.id)

"""The caller's own profile."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from stepcoin.auth.dependencies import ClaimsDep
from stepcoin.db import DriverDep, SessionDep
from stepcoin.errors import account_gone
from stepcoin.users import repository
from stepcoin.users.schemas import ProfileOut, ProfileUpdate

router = APIRouter(prefix="/v1", tags=["me"])


@router.get("/me", response_model=ProfileOut)
async def get_me(claims: ClaimsDep, driver: DriverDep) -> Any:
    """The caller's profile with the wallet (one query)."""
    row = await repository.fetch_profile(driver, claims.user_id)
    if row is None:
        raise account_gone()
    return repository.profile_to_response(row)


@router.patch("/me", response_model=ProfileOut)
async def patch_me(body: ProfileUpdate, claims: ClaimsDep, session: SessionDep) -> Any:
    """Change full_name, phone or timezone; any other field is refused with 422."""
    if await repository.get_profile(session, claims.user_id) is None:
        raise account_gone()
    await repository.update_profile(session, claims.user_id, body.model_dump(exclude_unset=True))
    row = await repository.get_profile(session, claims.user_id)
    assert row is not None
    return repository.profile_to_response(row)

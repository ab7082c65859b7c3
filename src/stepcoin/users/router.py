"""The caller's own profile."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Response

from stepcoin.auth.dependencies import ClaimsDep
from stepcoin.db import DriverDep, SessionDep
from stepcoin.errors import account_gone
from stepcoin.users import repository
from stepcoin.users.schemas import ProfileOut, ProfileUpdate

router = APIRouter(prefix="/v1", tags=["me"])


def json_response(data: Any) -> Response:
    """The answer as FastAPI would serialise it through the response model, without the model
    (issue 13: the row is already shaped; tests/users/test_fast_json.py compares the bytes).
    `response_model` stays on the route for the OpenAPI schema."""
    return Response(
        orjson.dumps(data, option=orjson.OPT_UTC_Z, default=_uuid_text),
        media_type="application/json",
    )


def _uuid_text(value: Any) -> str:
    """asyncpg's UUID type is not uuid.UUID itself, which orjson knows; nothing else is let by."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


@router.get("/me", response_model=ProfileOut)
async def get_me(claims: ClaimsDep, driver: DriverDep) -> Any:
    """The caller's profile with the wallet (one query)."""
    row = await repository.fetch_profile(driver, claims.user_id)
    if row is None:
        raise account_gone()
    return json_response(repository.profile_to_response(row))


@router.patch("/me", response_model=ProfileOut)
async def patch_me(body: ProfileUpdate, claims: ClaimsDep, session: SessionDep) -> Any:
    """Change full_name, phone or timezone; any other field is refused with 422."""
    if await repository.get_profile(session, claims.user_id) is None:
        raise account_gone()
    await repository.update_profile(session, claims.user_id, body.model_dump(exclude_unset=True))
    row = await repository.get_profile(session, claims.user_id)
    assert row is not None
    return repository.profile_to_response(row)

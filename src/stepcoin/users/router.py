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


def json_bytes(data: Any) -> bytes:
    """The answer as FastAPI would serialise it through the response model, without the model
    (issue 13: the row is already shaped; tests/wallet/test_fast_json.py compares the bytes).
    `response_model` stays on the routes for the OpenAPI schema."""
    return orjson.dumps(data, option=orjson.OPT_UTC_Z, default=_uuid_text)


def json_response(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _uuid_text(value: Any) -> str:
    """asyncpg's UUID type is not uuid.UUID itself, which orjson knows; nothing else is let by."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


async def profile_answer(driver: Any, user_id: uuid.UUID, query: bytes = b"") -> bytes | None:
    """GET /v1/me's 200 body; None for an inactive or missing account. Also served by
    main.HotRoutes without FastAPI's routing (which falls back here for anything else)."""
    row = await repository.fetch_profile(driver, user_id)
    return None if row is None else json_bytes(repository.profile_to_response(row))


@router.get("/me", response_model=ProfileOut)
async def get_me(claims: ClaimsDep, driver: DriverDep) -> Any:
    """The caller's profile with the wallet (one query)."""
    body = await profile_answer(driver, claims.user_id)
    if body is None:
        raise account_gone()
    return json_response(body)


@router.patch("/me", response_model=ProfileOut)
async def patch_me(body: ProfileUpdate, claims: ClaimsDep, session: SessionDep) -> Any:
    """Change full_name, phone, timezone or daily_step_goal; any other field is refused
    with 422."""
    if await repository.get_profile(session, claims.user_id) is None:
        raise account_gone()
    await repository.update_profile(session, claims.user_id, body.model_dump(exclude_unset=True))
    row = await repository.get_profile(session, claims.user_id)
    assert row is not None
    return repository.profile_to_response(row)

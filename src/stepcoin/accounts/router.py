"""The walker's own account: password change, signed-in devices, deletion, data export."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Response, status

from stepcoin.accounts import export, service
from stepcoin.accounts.schemas import (
    DeleteAccountIn,
    PasswordChangedOut,
    PasswordChangeIn,
    SessionListOut,
    SessionsEndedOut,
)
from stepcoin.auth import credentials
from stepcoin.auth import sessions as auth_sessions
from stepcoin.auth.dependencies import ActiveClaimsDep, SettingsDep
from stepcoin.db import ReadSessionDep, SessionDep
from stepcoin.ratelimit import LimitedRoute

router = APIRouter(prefix="/v1/me", tags=["me"])
# counted before the route runs (stepcoin.ratelimit; main.py applies them)
LIMITED = (LimitedRoute("GET", "/v1/me/export", "exports"),)


@router.post("/password", response_model=PasswordChangedOut)
async def change_password(
    body: PasswordChangeIn, claims: ActiveClaimsDep, session: SessionDep, settings: SettingsDep
) -> Any:
    """Change the password (the current one is asked; a wrong one is 403 `wrong_password`);
    every other signed-in device is signed out, this one stays."""
    ended = await credentials.change_password(
        session,
        settings,
        claims.user_id,
        current_password=body.current_password,
        new_password=body.new_password,
        keep_session=claims.session_id,
    )
    return {"other_sessions_ended": ended}


@router.get("/sessions", response_model=SessionListOut)
async def list_sessions(claims: ActiveClaimsDep, session: ReadSessionDep) -> Any:
    """The signed-in devices, most recently used first; `current` marks this one."""
    items = await auth_sessions.list_sessions(session, claims.user_id, current=claims.session_id)
    return {"items": items}


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def end_session(
    session_id: uuid.UUID, claims: ActiveClaimsDep, session: SessionDep
) -> Response:
    """Sign one device out (404 for a session that is not yours or already ended)."""
    await auth_sessions.end_session(session, claims.user_id, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/sessions", response_model=SessionsEndedOut)
async def end_other_sessions(claims: ActiveClaimsDep, session: SessionDep) -> Any:
    """Sign out every device but this one."""
    ended = await auth_sessions.end_other_sessions(
        session, claims.user_id, current=claims.session_id
    )
    return {"ended": ended}


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
async def delete_account(
    body: DeleteAccountIn, claims: ActiveClaimsDep, session: SessionDep, settings: SettingsDep
) -> Response:
    """Delete the account (re-authenticated by password or a fresh Google/Apple ID token):
    unsent orders are cancelled and refunded, every token is revoked at once, personal data is
    erased; the books (ledger, orders, audit) stay under a tombstone."""
    await service.delete_account(session, settings, claims.user_id, body)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/export", response_class=Response)
async def export_data(claims: ActiveClaimsDep, session: ReadSessionDep) -> Response:
    """Everything StepCoin holds about you as one JSON document."""
    document = await export.build_export(session, claims.user_id, current_session=claims.session_id)
    day = datetime.now(UTC).date().isoformat()
    return Response(
        content=orjson.dumps(document, default=str),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="stepcoin-export-{day}.json"',
            "Cache-Control": "no-store",
        },
    )

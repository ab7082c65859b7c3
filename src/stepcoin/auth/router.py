"""HTTP endpoints of sign-in (thin: parse, one service call, answer)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from stepcoin.auth import service
from stepcoin.auth.dependencies import SettingsDep
from stepcoin.auth.schemas import IdTokenIn, LoginIn, RefreshIn, RegisterIn, TokenPair
from stepcoin.db import SessionDep
from stepcoin.ratelimit import LimitedRoute

router = APIRouter(prefix="/v1/auth", tags=["auth"])
# counted per client address before the route runs (stepcoin.ratelimit; main.py applies
# them); sign-up and sign-in count in auth/throttle.py, where the outcome is known
LIMITED = tuple(
    LimitedRoute("POST", f"/v1/auth/{name}", "sessions", per_account=False)
    for name in ("refresh", "google", "apple")
)

_THROTTLED = "problem+json; Retry-After and RateLimit headers say when to try again"
SIGNUP_THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "`signup_throttled`: too many sign-ups from this address or for this "
        f"email; {_THROTTLED}"
    }
}
LOGIN_THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {"description": f"`login_throttled`: too many failed sign-ins; {_THROTTLED}"}
}


def _client(request: Request) -> service.ClientInfo:
    return service.ClientInfo(
        address=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenPair,
    responses=SIGNUP_THROTTLED,
)
async def register(
    body: RegisterIn, request: Request, session: SessionDep, settings: SettingsDep
) -> Any:
    """Create an account with email and password; answers with a first token pair."""
    return await service.register(
        session,
        settings,
        email=str(body.email),
        password=body.password,
        full_name=body.full_name,
        phone=body.phone,
        client=_client(request),
    )


@router.post("/login", response_model=TokenPair, responses=LOGIN_THROTTLED)
async def login(body: LoginIn, request: Request, session: SessionDep, settings: SettingsDep) -> Any:
    """Sign in with email and password (the same 401 for an unknown email or a wrong password)."""
    return await service.login(
        session, settings, email=body.email, password=body.password, client=_client(request)
    )


@router.post("/refresh", response_model=TokenPair)
async def refresh(
    body: RefreshIn, request: Request, session: SessionDep, settings: SettingsDep
) -> Any:
    """Trade a refresh token for a new pair; the old one is spent (reuse revokes the family)."""
    return await service.refresh(
        session, settings, refresh_token=body.refresh_token, client=_client(request)
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshIn, session: SessionDep) -> Response:
    """End the session this refresh token belongs to."""
    await service.logout(session, refresh_token=body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _social(
    provider: str, body: IdTokenIn, request: Request, session: SessionDep, settings: SettingsDep
) -> Any:
    return await service.social_login(
        session,
        settings,
        provider=provider,
        id_token=body.id_token,
        nonce=body.nonce,
        full_name=body.full_name,
        client=_client(request),
    )


@router.post("/google", response_model=TokenPair)
async def google(
    body: IdTokenIn, request: Request, session: SessionDep, settings: SettingsDep
) -> Any:
    """Sign in with a Google ID token (verified against Google's key set)."""
    return await _social("google", body, request, session, settings)


@router.post("/apple", response_model=TokenPair)
async def apple(
    body: IdTokenIn, request: Request, session: SessionDep, settings: SettingsDep
) -> Any:
    """Sign in with an Apple ID token (verified against Apple's key set)."""
    return await _social("apple", body, request, session, settings)

"""HTTP endpoints of the email links: verification and password reset (thin: parse, one
service call, answer). Here rather than in auth because verifying answers with the profile
and its wallet, which the users domain owns."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from stepcoin.auth import recovery, verification
from stepcoin.auth.dependencies import ActiveClaimsDep, SettingsDep
from stepcoin.auth.email_schemas import (
    AcceptedOut,
    EmailTokenIn,
    PasswordResetIn,
    PasswordResetOut,
    PasswordResetRequestIn,
)
from stepcoin.db import SessionDep
from stepcoin.errors import account_gone
from stepcoin.ratelimit import LimitedRoute
from stepcoin.users import repository
from stepcoin.users.schemas import ProfileOut

router = APIRouter(prefix="/v1/auth", tags=["auth"])
# counted before the route runs (stepcoin.ratelimit; main.py applies them); the codes are the
# ones these routes answered before the limits were settings
LIMITED = (
    LimitedRoute("POST", "/v1/auth/verify-email/request", "mails", "too_many_verification_mails"),
    LimitedRoute(
        "POST",
        "/v1/auth/password-reset/request",
        "mails",
        "too_many_reset_requests",
        per_account=False,
    ),
)

TOKEN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Unknown token (`invalid_token_link`)."},
    410: {"description": "Used (`token_used`) or expired (`token_expired`) token."},
}


@router.post(
    "/verify-email/request", status_code=status.HTTP_202_ACCEPTED, response_model=AcceptedOut
)
async def request_verification(
    claims: ActiveClaimsDep, session: SessionDep, settings: SettingsDep
) -> Any:
    """Send the verification mail again (nothing is sent for a verified email); at most a few
    an hour (429)."""
    sent = await verification.request_verification(session, settings, claims.user_id)
    if not sent:
        return {"detail": "Your email is verified already."}
    return {"detail": "A verification mail is on its way."}


@router.post("/verify-email", response_model=ProfileOut, responses=TOKEN_ERRORS)
async def verify_email(body: EmailTokenIn, session: SessionDep) -> Any:
    """Spend the token of a verification mail; answers with the profile (`email_verified`)."""
    user_id = await verification.verify_email(session, body.token)
    row = await repository.get_profile(session, user_id)
    if row is None:
        raise account_gone()
    return repository.profile_to_response(row)


@router.post(
    "/password-reset/request", status_code=status.HTTP_202_ACCEPTED, response_model=AcceptedOut
)
async def request_password_reset(
    body: PasswordResetRequestIn, request: Request, session: SessionDep, settings: SettingsDep
) -> Any:
    """Mail a reset link (valid 30 minutes) if the email has an account: the same answer for
    every email."""
    await recovery.request_reset(
        session,
        settings,
        email=str(body.email),
        address=request.client.host if request.client else None,
    )
    return {"detail": "If this email has a StepCoin account, a reset link is on its way."}


@router.post("/password-reset", response_model=PasswordResetOut, responses=TOKEN_ERRORS)
async def reset_password(body: PasswordResetIn, session: SessionDep, settings: SettingsDep) -> Any:
    """Spend the token of a reset mail and set the new password; every session ends."""
    ended = await recovery.reset_password(
        session, settings, token=body.token, new_password=body.new_password
    )
    return {"detail": "Your password is changed; sign in again.", "sessions_ended": ended}

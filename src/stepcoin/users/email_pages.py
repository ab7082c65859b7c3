"""The pages the mail links open when STEPCOIN_PUBLIC_URL points at this server (development,
or an installation without its own web site): /verify-email and /reset-password.

Opening a link changes nothing (mail scanners and link previews fetch links): the page shows a
button or a password form that posts the token, and the post calls the same service as the
API. The pages load nothing from anywhere (a strict CSP), cannot be framed (the button cannot be
clickjacked) and send no Referer (the token is in the address)."""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse

from stepcoin.auth import recovery, verification
from stepcoin.auth.dependencies import SettingsDep
from stepcoin.db import SessionDep
from stepcoin.errors import AppError

router = APIRouter(include_in_schema=False)

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
TokenQuery = Annotated[str, Query(max_length=128)]
TokenForm = Annotated[str, Form(max_length=128)]


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} · StepCoin</title></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=HEADERS)


def _message(text: str, element_id: str) -> str:
    return f'<p id="{element_id}">{html.escape(text)}</p>'


def _token_field(token: str) -> str:
    return f'<input type="hidden" name="token" value="{html.escape(token, quote=True)}">'


@router.get("/verify-email")
async def verify_email_page(token: TokenQuery = "") -> HTMLResponse:
    """The verification link: a button that confirms (a GET changes nothing)."""
    if not token:
        return _page("Confirm your email", _message("This link has no token.", "problem"), 400)
    return _page(
        "Confirm your email",
        '<form method="post" action="/verify-email">'
        f'{_token_field(token)}<button type="submit" id="confirm">Confirm my email</button>'
        "</form>",
    )


@router.post("/verify-email")
async def verify_email_submit(session: SessionDep, token: TokenForm = "") -> HTMLResponse:
    try:
        await verification.verify_email(session, token)
    except AppError as exc:
        await session.rollback()  # nothing of a refused link is kept
        return _page("Confirm your email", _message(exc.detail, "problem"), exc.status)
    return _page(
        "Email confirmed",
        _message("Your email is confirmed. You can go back to the StepCoin app.", "done"),
    )


def _reset_form(token: str, problem: str | None = None) -> str:
    note = _message(problem, "problem") if problem else ""
    return (
        f'{note}<form method="post" action="/reset-password">{_token_field(token)}'
        "<label>New password (8 to 128 characters) "
        '<input type="password" name="new_password" autocomplete="new-password" '
        'minlength="8" maxlength="128" required></label> '
        '<button type="submit" id="reset">Set the new password</button></form>'
        "<p>Every device signed in to your account will be signed out.</p>"
    )


@router.get("/reset-password")
async def reset_password_page(token: TokenQuery = "") -> HTMLResponse:
    """The reset link: a form for the new password (a GET changes nothing)."""
    if not token:
        return _page("Reset your password", _message("This link has no token.", "problem"), 400)
    return _page("Reset your password", _reset_form(token))


@router.post("/reset-password")
async def reset_password_submit(
    session: SessionDep,
    settings: SettingsDep,
    token: TokenForm = "",
    new_password: Annotated[str, Form(max_length=1024)] = "",
) -> HTMLResponse:
    try:
        await recovery.reset_password(session, settings, token=token, new_password=new_password)
    except AppError as exc:
        await session.rollback()  # a refused reset keeps nothing, the link stays as it was
        if exc.status == 422:  # a weak password: the same link, another try
            return _page("Reset your password", _reset_form(token, exc.detail), 422)
        return _page("Reset your password", _message(exc.detail, "problem"), exc.status)
    return _page(
        "Password changed",
        _message(
            "Your password is changed and every device was signed out. Sign in again in the "
            "StepCoin app.",
            "done",
        ),
    )

"""Sign-in, the TOTP step, sign-out and the admin's own account page."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import available_timezones

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.console import sessions
from stepcoin.console.web import (
    LOGIN_CSRF_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    ConsoleRefused,
    ConsoleUserDep,
    CsrfFormDep,
    DatabaseDep,
    HalfSessionDep,
    delete_cookie,
    perform,
    redirect,
    render,
    safe_next,
    secure_cookies,
    set_cookie,
    settings_of,
)
from stepcoin.db import session_scope
from stepcoin.errors import AppError, InvalidInput
from stepcoin.users import repository as users_repository
from stepcoin.users.schemas import check_timezone

router = APIRouter(prefix=PREFIX, include_in_schema=False)

NextQuery = Annotated[str | None, Query(max_length=500)]
ReasonQuery = Annotated[str | None, Query(max_length=200)]


def _login_page(
    request: Request,
    *,
    next_url: str,
    reason: str | None = None,
    error: str | None = None,
    email: str = "",
    status: int = 200,
) -> Response:
    """The sign-in form with a fresh double-submit CSRF token (cookie + hidden field)."""
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        None,
        "login.html",
        {
            "login_csrf": token,
            "next_url": next_url,
            "reason": reason,
            "error": error,
            "email": email,
            "needs_https": secure_cookies(request)
            and request.url.scheme == "http"
            and request.url.hostname not in ("localhost", "127.0.0.1", "::1"),
        },
        status=status,
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.get("/login")
async def login_form(
    request: Request, next: NextQuery = None, reason: ReasonQuery = None
) -> Response:
    return _login_page(request, next_url=safe_next(next), reason=reason)


def _client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/login")
async def login(request: Request, database: DatabaseDep) -> Response:
    form = await request.form()
    email = str(form.get("email") or "").strip()[:320]
    password = str(form.get("password") or "")[:1024]
    next_url = safe_next(str(form.get("next") or ""))
    sent = str(form.get("csrf_token") or "")
    expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not expected or not secrets.compare_digest(sent, expected):
        raise ConsoleRefused(
            "The sign-in form is missing its security token or it is out of date (CSRF "
            "check). Open the sign-in page again."
        )
    address = _client_address(request)
    try:
        async with session_scope(database) as session:
            account = await sessions.check_password(
                session, email=email, password=password, address=address
            )
            token = await sessions.start_session(
                session,
                account["id"],
                second_factor_done=not account["totp_enabled"],
                user_agent=request.headers.get("user-agent"),
                ip=address,
            )
    except AppError as exc:
        return _login_page(
            request, next_url=next_url, error=exc.detail, email=email, status=exc.status
        )
    target = next_url
    if account["totp_enabled"]:
        target = f"{PREFIX}/login/totp?" + urlencode({"next": next_url})
    response = redirect(request, target)
    set_cookie(request, response, SESSION_COOKIE, token)
    delete_cookie(request, response, LOGIN_CSRF_COOKIE)
    return response


@router.get("/login/totp")
async def totp_form(request: Request, user: HalfSessionDep, next: NextQuery = None) -> Response:
    if user.second_factor_done:
        return redirect(request, safe_next(next))
    return render(request, user, "login_totp.html", {"next_url": safe_next(next)})


@router.post("/login/totp")
async def totp_check(request: Request, user: HalfSessionDep, database: DatabaseDep) -> Response:
    form = await request.form()
    sent = str(form.get("csrf_token") or "")
    if not secrets.compare_digest(sent, user.csrf_token):
        raise ConsoleRefused("The form's security token does not match (CSRF check).")
    next_url = safe_next(str(form.get("next") or ""))
    try:
        async with session_scope(database) as session:
            # each code is counted on the account's second-factor key before it is checked
            await sessions.complete_second_factor(
                session, settings_of(request), user, str(form.get("code") or "")
            )
    except AppError as exc:
        return render(
            request,
            user,
            "login_totp.html",
            {"next_url": next_url, "error": exc.detail},
            status=exc.status,
        )
    return redirect(request, next_url)


@router.post("/logout")
async def logout(request: Request, form: CsrfFormDep, database: DatabaseDep) -> Response:
    async with session_scope(database) as session:
        await sessions.revoke(session, form.user.id, form.user.session_id)
    response = redirect(request, f"{PREFIX}/login?reason=You+are+signed+out.")
    delete_cookie(request, response, SESSION_COOKIE)
    return response


@router.get("/account")
async def account(request: Request, user: ConsoleUserDep, database: DatabaseDep) -> Response:
    async with session_scope(database) as session:
        pending = await sessions.pending_totp_secret(session, settings_of(request), user.id)
    return render(
        request,
        user,
        "account.html",
        {
            "pending_secret": pending,
            "provisioning_uri": sessions.provisioning_uri(pending, user.email) if pending else "",
            "timezones": sorted(available_timezones()),
        },
        section="account",
    )


@router.post("/account/timezone")
async def change_timezone(request: Request, form: CsrfFormDep) -> Response:
    """The admin's own timezone (the profile's, as PATCH /v1/me sets it): every time shown."""

    async def action(session: AsyncSession) -> str:
        try:
            timezone = check_timezone(form.get("timezone"))
        except ValueError as exc:
            raise InvalidInput(str(exc), code="invalid_timezone") from exc
        await users_repository.update_profile(session, form.user.id, {"timezone": timezone})
        return f"Times are now shown in {timezone}."

    return await perform(request, action, back=f"{PREFIX}/account")


@router.post("/account/totp/start")
async def totp_start(request: Request, form: CsrfFormDep) -> Response:
    async def action(session: AsyncSession) -> str:
        await sessions.begin_totp_setup(session, settings_of(request), form.user.id)
        return "Add the key to your authenticator app, then enter its code."

    return await perform(request, action, back=f"{PREFIX}/account")


@router.post("/account/totp/confirm")
async def totp_confirm(request: Request, form: CsrfFormDep) -> Response:
    async def action(session: AsyncSession) -> str:
        await sessions.confirm_totp(session, settings_of(request), form.user, form.get("code"))
        return "Two-step sign-in is on."

    return await perform(request, action, back=f"{PREFIX}/account")


@router.post("/account/totp/disable")
async def totp_disable(request: Request, form: CsrfFormDep) -> Response:
    async def action(session: AsyncSession) -> str:
        await sessions.disable_totp(session, settings_of(request), form.user, form.get("code"))
        return "Two-step sign-in is off."

    return await perform(request, action, back=f"{PREFIX}/account")

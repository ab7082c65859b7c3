"""The console's plumbing: templates, the signed-in user, CSRF-checked forms, actions, flashes.

Every page handler is `user: ConsoleUserDep` (or `ConsoleAdminDep`) + a read session + `render`;
every form handler is `form: CsrfFormDep` (or `AdminFormDep`) + `perform(...)`, which runs the
same service the API uses in one transaction and redirects back with a message (POST/redirect/
GET), so a reload never repeats an action.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from stepcoin.config import Settings
from stepcoin.console import charts
from stepcoin.console.sessions import ConsoleUser, load_session
from stepcoin.db import Database, get_database, session_scope
from stepcoin.errors import AppError

PREFIX = "/admin"
SESSION_COOKIE = "stepcoin_console"
LOGIN_CSRF_COOKIE = "stepcoin_console_login"
FLASH_COOKIE = "stepcoin_console_flash"
HERE = Path(__file__).parent

templates = Jinja2Templates(directory=str(HERE / "templates"))

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


# ---- errors that become pages or redirects --------------------------------------------------


class ConsoleSignInRequired(Exception):
    """No live session: GET redirects to the sign-in page, which says why."""

    def __init__(self, next_url: str, reason: str | None, *, second_factor: bool = False) -> None:
        self.next_url = next_url
        self.reason = reason
        self.second_factor = second_factor  # password done, TOTP code still to come


class ConsoleRefused(Exception):
    """A signed-in user may not do this (role) or the form failed its CSRF check: 403 page."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        self.message = message
        self.status = status


# ---- formatting helpers available in every template -----------------------------------------


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def format_coins(value: Any) -> str:
    if value is None:
        return "—"
    return f"{int(value):,}".replace(",", "\u202f")


def format_number(value: Any) -> str:
    return format_coins(value)


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


templates.env.filters["coins"] = format_coins
templates.env.filters["number"] = format_number
templates.env.filters["as_json"] = as_json
templates.env.globals["bar_chart"] = charts.bar_chart
templates.env.globals["paired_bar_chart"] = charts.paired_bar_chart


def url_with(request: Request, **changes: Any) -> str:
    """The current URL with some query parameters replaced (None removes one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


templates.env.globals["url_with"] = url_with


# ---- flash messages (one short-lived cookie, read by the next page) --------------------------


def _encode_flash(kind: str, message: str) -> str:
    raw = json.dumps({"kind": kind, "text": message[:500]}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_flash(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        if isinstance(data, dict) and data.get("kind") in ("ok", "error"):
            return {"kind": str(data["kind"]), "text": str(data.get("text", ""))}
    except (ValueError, TypeError):
        return None
    return None


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def secure_cookies(request: Request) -> bool:
    """Secure everywhere but in development (where the console may run on plain http)."""
    return settings_of(request).env != "development"


def set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        secure=secure_cookies(request),
        samesite="strict",
    )


def delete_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=PREFIX, httponly=True, secure=secure_cookies(request), samesite="strict"
    )


def redirect(
    request: Request, url: str, *, flash: tuple[str, str] | None = None
) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if flash:
        set_cookie(request, response, FLASH_COOKIE, _encode_flash(*flash), max_age=60)
    for key, value in SECURITY_HEADERS.items():
        response.headers[key] = value
    return response


def safe_next(url: str | None) -> str:
    """Only a path inside the console: never an open redirect."""
    if url and url.startswith(PREFIX) and not url.startswith("//") and "\\" not in url:
        return url
    return PREFIX + "/"


# ---- rendering --------------------------------------------------------------------------------


def local_time(value: Any, user: ConsoleUser | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.astimezone(zone(user.timezone if user else None)).strftime(fmt)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


NAV = [
    ("overview", "/admin/", "Overview"),
    ("review", "/admin/review", "Review queue"),
    ("users", "/admin/users", "Users"),
    ("products", "/admin/products", "Products"),
    ("orders", "/admin/orders", "Orders"),
    ("achievements", "/admin/achievements", "Achievements"),
    ("earn_rules", "/admin/earn-rules", "Earn rules"),
    ("budgets", "/admin/budgets", "Budgets"),
    ("campaigns", "/admin/campaigns", "Campaigns"),
    ("prizes", "/admin/prizes", "Prizes"),
    ("referrals", "/admin/referrals", "Referrals"),
    ("challenges", "/admin/challenges", "Challenges"),
    ("reports", "/admin/reports", "Reports"),
    ("groups", "/admin/groups", "Groups"),
    ("settings", "/admin/settings", "Settings"),
    ("audit", "/admin/audit", "Audit log"),
]


def render(
    request: Request,
    user: ConsoleUser | None,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    section: str | None = None,
) -> HTMLResponse:
    """Render a page with the layout's context: user, CSRF token, nav, flash, time helpers."""
    flash = _decode_flash(request.cookies.get(FLASH_COOKIE))
    ctx: dict[str, Any] = {
        "user": user,
        "csrf_token": user.csrf_token if user else "",
        "nav": NAV,
        "section": section,
        "flash": flash,
        "tz": user.timezone if user else "UTC",
        "t": lambda value, fmt="%Y-%m-%d %H:%M": local_time(value, user, fmt),
        "env": settings_of(request).env,
    }
    ctx.update(context or {})
    response = templates.TemplateResponse(request, template, ctx, status_code=status)
    if flash:
        delete_cookie(request, response, FLASH_COOKIE)
    for key, value in SECURITY_HEADERS.items():
        response.headers[key] = value
    return response


def csrf_field(user: ConsoleUser) -> Markup:
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(user.csrf_token)


# ---- the API's limits, read from its request models ----------------------------------------


def field_limits(model: type[BaseModel], name: str) -> tuple[Any, Any]:
    """(lower, upper) bound that an API request model puts on a field (ge/le or min/max
    length; None where there is none), so a console form checks exactly what the API does
    and the limit is written once."""
    low = high = None
    for item in model.model_fields[name].metadata:
        low = getattr(item, "ge", getattr(item, "min_length", low))
        high = getattr(item, "le", getattr(item, "max_length", high))
    return low, high


# ---- dependencies -----------------------------------------------------------------------------

DatabaseDep = Annotated[Database, Depends(get_database)]


def _next_of(request: Request) -> str:
    if request.method == "GET":
        path = request.url.path
        return path + (f"?{request.url.query}" if request.url.query else "")
    return PREFIX + "/"


async def console_session(request: Request, database: DatabaseDep) -> ConsoleUser:
    """The signed-in user with both factors done, or ConsoleSignInRequired."""
    user = await half_session(request, database)
    if not user.second_factor_done:
        raise ConsoleSignInRequired(_next_of(request), None, second_factor=True)
    return user


async def half_session(request: Request, database: DatabaseDep) -> ConsoleUser:
    """The session even when its TOTP step is still to come (the code page needs it)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise ConsoleSignInRequired(_next_of(request), None)
    async with session_scope(database) as session:
        user = await load_session(session, token)
    if user is None:
        raise ConsoleSignInRequired(
            _next_of(request), "Your session has ended (signed out, idle or expired)."
        )
    return user


ConsoleUserDep = Annotated[ConsoleUser, Depends(console_session)]
HalfSessionDep = Annotated[ConsoleUser, Depends(half_session)]


async def admin_session(user: ConsoleUserDep) -> ConsoleUser:
    if not user.is_admin:
        raise ConsoleRefused("This needs the admin role; support can read it but not change it.")
    return user


ConsoleAdminDep = Annotated[ConsoleUser, Depends(admin_session)]


@dataclass(frozen=True, slots=True)
class ConsoleForm:
    """A posted form whose CSRF token matched the session's."""

    user: ConsoleUser
    data: FormData

    def get(self, name: str, default: str = "") -> str:
        value = self.data.get(name)
        return value.strip() if isinstance(value, str) else default

    def getlist(self, name: str) -> list[str]:
        return [v for v in self.data.getlist(name) if isinstance(v, str)]


async def _checked_form(request: Request, user: ConsoleUser) -> ConsoleForm:
    data = await request.form()
    sent = data.get("csrf_token")
    if not isinstance(sent, str) or not secrets.compare_digest(sent, user.csrf_token):
        raise ConsoleRefused(
            "This form is missing its security token or it is out of date (CSRF check). "
            "Reload the page and try again."
        )
    return ConsoleForm(user, data)


async def csrf_form(request: Request, user: ConsoleUserDep) -> ConsoleForm:
    return await _checked_form(request, user)


async def admin_form(request: Request, user: ConsoleUserDep) -> ConsoleForm:
    form = await _checked_form(request, user)
    if not user.is_admin:
        raise ConsoleRefused("This needs the admin role; support can read it but not change it.")
    return form


CsrfFormDep = Annotated[ConsoleForm, Depends(csrf_form)]
AdminFormDep = Annotated[ConsoleForm, Depends(admin_form)]


# ---- actions ----------------------------------------------------------------------------------


async def perform(
    request: Request,
    action: Callable[[AsyncSession], Awaitable[str | None]],
    *,
    back: str,
    success: str = "Done.",
) -> RedirectResponse:
    """Run `action` in one transaction (the service audits inside it), then redirect to `back`.

    An AppError (invalid input, conflict, not found...) rolls everything back and is shown as
    an error message on the page; the action may return its own success message.
    """
    database: Database = request.app.state.database
    try:
        async with session_scope(database) as session:
            message = await action(session)
    except AppError as exc:
        return redirect(request, back, flash=("error", exc.detail))
    return redirect(request, back, flash=("ok", message or success))


def login_url(next_url: str | None = None, reason: str | None = None) -> str:
    params = {}
    if next_url and next_url != PREFIX + "/":
        params["next"] = next_url
    if reason:
        params["reason"] = reason
    return f"{PREFIX}/login" + (f"?{urlencode(params, quote_via=quote)}" if params else "")


def install_console_errors(app: Any) -> None:
    """Console failures become pages: a redirect to sign-in, or a 403 page with the reason."""

    async def sign_in_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleSignInRequired)
        if exc.second_factor:
            return redirect(request, f"{PREFIX}/login/totp?" + urlencode({"next": exc.next_url}))
        response = redirect(request, login_url(exc.next_url, exc.reason))
        if request.cookies.get(SESSION_COOKIE):
            delete_cookie(request, response, SESSION_COOKIE)
        return response

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConsoleRefused)
        return render(
            request,
            None,
            "error.html",
            {"message": exc.message, "status": exc.status},
            status=exc.status,
        )

    def html_for_console(previous: Any) -> Any:
        """Errors under /admin are pages for people; everywhere else problem+json as before."""

        async def handler(request: Request, exc: Exception) -> Response:
            path = request.url.path
            if path == PREFIX or (
                path.startswith(PREFIX + "/") and not path.startswith(PREFIX + "/static/")
            ):
                raw = getattr(exc, "status", None) or getattr(exc, "status_code", None)
                status = raw if isinstance(raw, int) else 500
                message = getattr(exc, "detail", None)
                if not isinstance(message, str) or status >= 500:
                    message = "Something went wrong." if status >= 500 else "Not found."
                return render(
                    request,
                    None,
                    "error.html",
                    {"message": message, "status": status},
                    status=status,
                )
            response: Response = await previous(request, exc)
            return response

        return handler

    app.add_exception_handler(ConsoleSignInRequired, sign_in_required)
    app.add_exception_handler(ConsoleRefused, refused)
    for exc_class in (AppError, StarletteHTTPException):
        app.add_exception_handler(exc_class, html_for_console(app.exception_handlers[exc_class]))

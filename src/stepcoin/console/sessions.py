"""Console sign-in: password (+ optional TOTP) -> a server-side session behind an HttpOnly cookie.

Sessions live in PostgreSQL (table admin_sessions) rather than in a signed cookie so that
sign-out, deactivation, a role change and the idle timeout take effect on the very next request,
in every API process. The cookie holds 32 random bytes; the table holds their SHA-256.
"""

from __future__ import annotations

import getpass
import hashlib
import secrets
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import pyotp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from stepcoin import audit
from stepcoin.auth import throttle
from stepcoin.auth.dependencies import STAFF_ROLES
from stepcoin.auth.passwords import DUMMY_HASH, verify_password
from stepcoin.config import Settings
from stepcoin.console import totp_keys
from stepcoin.distribution import routed_token, walker_condition
from stepcoin.errors import AppError, Conflict, InvalidInput, Unauthorized
from stepcoin.runtime_settings.service import runtime_settings

TOTP_ISSUER = "StepCoin console"


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """The signed-in staff member of this request."""

    session_id: uuid.UUID
    id: uuid.UUID
    email: str
    full_name: str
    role: str
    timezone: str
    csrf_token: str
    second_factor_done: bool
    totp_enabled: bool

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def bad_sign_in() -> Unauthorized:
    """One answer for a wrong password, an unknown email and a walker's account alike."""
    return Unauthorized(
        "Wrong email or password, or this account has no access to the console.",
        code="invalid_credentials",
        headers={},
    )


async def check_password(
    session: AsyncSession, *, email: str, password: str, address: str | None
) -> dict[str, Any]:
    """The staff account for these credentials, with the API's throttling; else 401/429.

    A walker's correct password is refused exactly like a wrong one (and is not counted as a
    failure: it must not lock the walker out of the app).
    """
    email = email.strip().lower()
    # the API's counts, reserved (and committed) before the password is checked
    reservation, keys = await throttle.reserve_login(session, email, address)
    row = (
        (
            await session.execute(
                text(
                    "SELECT id, email, role, is_active, password_hash, "
                    "totp_enabled_at IS NOT NULL AS totp_enabled FROM users WHERE email = :email"
                ),
                {"email": email},
            )
        )
        .mappings()
        .first()
    )
    stored = row["password_hash"] if row and row["password_hash"] else DUMMY_HASH
    ok = await run_in_threadpool(verify_password, stored, password)
    if not ok or row is None or not row["password_hash"]:
        raise AppError(bad_sign_in().detail, code="invalid_credentials", status=401)
    if row["role"] not in STAFF_ROLES or not row["is_active"]:
        # a walker's right password: given back (committed despite the refusal), so the
        # console never locks a walker out of the app
        await throttle.password_accepted(session, reservation, keys)
        raise AppError(
            bad_sign_in().detail, code="invalid_credentials", status=401, keep_changes=True
        )
    # the second factor's failures are NOT cleared here: only a passed code clears them
    await throttle.password_accepted(session, reservation, keys)
    return dict(row)


async def start_session(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    second_factor_done: bool,
    user_agent: str | None,
    ip: str | None,
) -> str:
    """A new session row; returns the raw cookie token (shown once, never stored)."""
    token = routed_token(user_id, secrets.token_urlsafe(32))  # names its user: one shard
    await session.execute(
        text(
            "INSERT INTO admin_sessions "
            "(user_id, token_hash, csrf_token, second_factor_done, user_agent, ip) "
            "VALUES (:user_id, :hash, :csrf, :done, :ua, CAST(:ip AS inet))"
        ),
        {
            "user_id": user_id,
            "hash": hash_token(token),
            "csrf": secrets.token_urlsafe(32),
            "done": second_factor_done,
            "ua": (user_agent or "")[:512] or None,
            "ip": ip,
        },
    )
    if second_factor_done:
        await audit.record(
            session,
            admin_id=user_id,
            action="console.sign_in",
            entity_type="user",
            entity_id=str(user_id),
            extra={"ip": ip},
        )
    return token


_LOAD = """
    UPDATE admin_sessions AS s SET last_seen_at = now()
    FROM users AS u
    WHERE {walker}s.token_hash = :hash AND s.revoked_at IS NULL AND u.id = s.user_id
      AND u.is_active AND u.role = ANY(:roles)
      AND (u.sessions_valid_after IS NULL OR s.created_at >= u.sessions_valid_after)
      AND s.last_seen_at > now() - make_interval(mins => :idle)
      AND s.created_at > now() - make_interval(hours => :max_hours)
    RETURNING s.id AS session_id, u.id, u.email, u.full_name, u.role, u.timezone,
              s.csrf_token, s.second_factor_done, u.totp_enabled_at IS NOT NULL AS totp_enabled
    """
# by (user_id, token_hash) when the cookie names its user (issue 19 item 4); a cookie issued
# before is found by its hash alone (distribution.walker_condition)
_LOADS = {w: text(_LOAD.format(walker=w)) for w in ("", "s.user_id = :user_id AND ")}


async def load_session(session: AsyncSession, token: str) -> ConsoleUser | None:
    """The live session for this cookie, touched (one statement); None when ended or unknown."""
    settings = await runtime_settings.all(session)
    walker, routed = walker_condition(token, "s.user_id")
    row = (
        (
            await session.execute(
                _LOADS[walker],
                {
                    "user_id": routed,
                    "hash": hash_token(token),
                    "roles": list(STAFF_ROLES),
                    "idle": settings["console.idle_timeout_minutes"],
                    "max_hours": settings["console.session_max_hours"],
                },
            )
        )
        .mappings()
        .first()
    )
    return ConsoleUser(**row) if row else None


async def _second_factor_done(session: AsyncSession, user: ConsoleUser) -> None:
    await session.execute(
        text("UPDATE admin_sessions SET second_factor_done = true WHERE user_id = :u AND id = :id"),
        {"u": user.id, "id": user.session_id},
    )


async def complete_second_factor(
    session: AsyncSession, settings: Settings, user: ConsoleUser, code: str
) -> None:
    """Check the TOTP code of a half signed-in session and mark the session complete."""
    await use_totp_code(session, settings, user.id, code)
    await _second_factor_done(session, user)
    await audit.record(
        session,
        admin_id=user.id,
        action="console.sign_in",
        entity_type="user",
        entity_id=str(user.id),
        extra={"second_factor": "totp"},
    )


async def revoke(session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID) -> None:
    """Sign one console session out (admin_sessions is keyed (user_id, id): by both)."""
    await session.execute(
        text(
            "UPDATE admin_sessions SET revoked_at = now() "
            "WHERE user_id = :u AND id = :id AND revoked_at IS NULL"
        ),
        {"u": user_id, "id": session_id},
    )


async def revoke_all(session: AsyncSession, user_id: uuid.UUID) -> int:
    result = await session.execute(
        text(
            "UPDATE admin_sessions SET revoked_at = now() "
            "WHERE user_id = :id AND revoked_at IS NULL"
        ),
        {"id": user_id},
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _bad_code() -> InvalidInput:
    return InvalidInput("That code is wrong or was already used.", code="invalid_totp_code")


async def use_totp_code(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, code: str
) -> None:
    """Accept a 6-digit code of the current, previous or next 30 s step, each step once.

    Every code is counted on the account's second-factor key before it is checked (429 at
    the limit, however many arrive at once); only a passed code clears that count.
    """
    await throttle.reserve_second_factor(session, user_id)
    row = (
        await session.execute(
            text("SELECT totp_secret, totp_last_step FROM users WHERE id = :id FOR UPDATE"),
            {"id": user_id},
        )
    ).first()
    code = code.strip().replace(" ", "")
    if row is None or not row.totp_secret or not (code.isdigit() and len(code) == 6):
        raise _bad_code()
    try:
        secret = totp_keys.unseal(settings, row.totp_secret)
    except totp_keys.UnreadableSecret as exc:
        raise InvalidInput(
            "This account's authenticator key cannot be read with the server's current keys "
            "(STEPCOIN_TOTP_KEYS or STEPCOIN_JWT_SECRET changed). An operator can clear it "
            "with `stepcoin reset-totp --email ...`.",
            code="totp_unreadable",
        ) from exc
    step = matching_step(secret, code)
    if step is None or (row.totp_last_step is not None and step <= row.totp_last_step):
        raise _bad_code()
    await session.execute(
        text("UPDATE users SET totp_last_step = :step WHERE id = :id"),
        {"step": step, "id": user_id},
    )
    await throttle.second_factor_passed(session, user_id)


def matching_step(secret: str, code: str, *, now: float | None = None) -> int | None:
    """The time step (of -1, 0, +1 around now) whose code is `code`, or None."""
    import time

    totp = pyotp.TOTP(secret)
    current = int((time.time() if now is None else now) // totp.interval)
    for step in (current - 1, current, current + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


async def begin_totp_setup(session: AsyncSession, settings: Settings, user_id: uuid.UUID) -> str:
    """A new secret, stored (encrypted) but not yet enabled; confirm_totp turns it on.

    Refused while two-step sign-in is on (409 `totp_enabled`): starting again would switch an
    enrolled factor off without its code; turning it off needs a current code (and is audited).
    """
    secret = pyotp.random_base32()
    started = (
        await session.execute(
            text(
                "UPDATE users SET totp_secret = :secret, totp_enabled_at = NULL, "
                "totp_last_step = NULL WHERE id = :id AND totp_enabled_at IS NULL RETURNING id"
            ),
            {"secret": totp_keys.seal(settings, secret), "id": user_id},
        )
    ).first()
    if started is None:
        raise Conflict(
            "Two-step sign-in is on: turn it off with a current code before setting up a new "
            "authenticator.",
            code="totp_enabled",
        )
    return secret


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


async def pending_totp_secret(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID
) -> str | None:
    """The secret being set up (shown to its owner until confirmed); None when there is none
    or it can no longer be read (the owner simply starts again)."""
    stored = (
        await session.execute(
            text("SELECT totp_secret FROM users WHERE id = :id AND totp_enabled_at IS NULL"),
            {"id": user_id},
        )
    ).scalar_one_or_none()
    if stored is None:
        return None
    try:
        return totp_keys.unseal(settings, stored)
    except totp_keys.UnreadableSecret:
        return None


async def confirm_totp(
    session: AsyncSession, settings: Settings, user: ConsoleUser, code: str
) -> None:
    """Turn on the authenticator being set up, with one of its codes. Nothing to confirm
    while two-step sign-in is on (409 `totp_enabled`): an enrolled factor changes only by
    turning it off with its code (audited) and setting up again."""
    await use_totp_code(session, settings, user.id, code)
    enabled = (
        await session.execute(
            text(
                "UPDATE users SET totp_enabled_at = now() "
                "WHERE id = :id AND totp_enabled_at IS NULL RETURNING id"
            ),
            {"id": user.id},
        )
    ).first()
    if enabled is None:
        raise Conflict("Two-step sign-in is already on.", code="totp_enabled")
    await _second_factor_done(session, user)
    await audit.record(
        session,
        admin_id=user.id,
        action="console.totp_enable",
        entity_type="user",
        entity_id=str(user.id),
        before={"totp": False},
        after={"totp": True},
    )


async def disable_totp(
    session: AsyncSession, settings: Settings, user: ConsoleUser, code: str
) -> None:
    """Turn two-step sign-in off: only with a current code of the enrolled factor (counted
    like any code), audited."""
    await use_totp_code(session, settings, user.id, code)
    disabled = (
        await session.execute(
            text(
                "UPDATE users SET totp_secret = NULL, totp_enabled_at = NULL, "
                "totp_last_step = NULL WHERE id = :id AND totp_enabled_at IS NOT NULL "
                "RETURNING id"
            ),
            {"id": user.id},
        )
    ).first()
    if disabled is None:  # a code of a setup not yet confirmed: nothing is on
        raise Conflict("Two-step sign-in is not on.", code="totp_not_enabled")
    await audit.record(
        session,
        admin_id=user.id,
        action="console.totp_disable",
        entity_type="user",
        entity_id=str(user.id),
        before={"totp": True},
        after={"totp": False},
    )


async def prune_sessions(session: AsyncSession, *, keep_days: int = 30) -> int:
    """Delete sessions that ended more than `keep_days` ago (kept that long for the users page).

    A session has ended when it was revoked, or when it is past the absolute lifetime (an idle
    session also passes that lifetime within hours, so this catches it too).
    """
    settings = await runtime_settings.all(session)
    result = await session.execute(
        text(
            "DELETE FROM admin_sessions WHERE "
            "coalesce(revoked_at, created_at + make_interval(hours => :max_hours)) "
            "< now() - make_interval(days => :keep)"
        ),
        {"max_hours": settings["console.session_max_hours"], "keep": keep_days},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def reset_totp(session: AsyncSession, email: str) -> bool:
    """Turn two-step sign-in off for an account (the operator's way out of a lost device or a
    changed key); audited. False when there is no such account."""
    row = (
        await session.execute(
            text(
                "WITH old AS (SELECT id, totp_enabled_at IS NOT NULL AS was_on FROM users "
                "WHERE email = :email FOR UPDATE) "
                "UPDATE users AS u SET totp_secret = NULL, totp_enabled_at = NULL, "
                "totp_last_step = NULL FROM old WHERE u.id = old.id RETURNING u.id, old.was_on"
            ),
            {"email": email.strip().lower()},
        )
    ).first()
    if row is None:
        return False
    await audit.record(
        session,
        admin_id=None,
        action="cli.reset_totp",
        entity_type="user",
        entity_id=str(row.id),
        before={"totp": bool(row.was_on)},
        after={"totp": False},
        extra={"operator": _operator()},
    )
    return True


def _operator() -> str:
    """Who ran the command (the machine's user and host), for the audit row."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


async def recent_sessions(
    session: AsyncSession, user_id: uuid.UUID, *, limit: int
) -> list[dict[str, Any]]:
    """A staff member's latest console sessions, newest first (their user page shows them)."""
    rows = await session.execute(
        text(
            "SELECT created_at, last_seen_at, revoked_at, second_factor_done, user_agent, "
            "host(ip) AS ip FROM admin_sessions WHERE user_id = :u "
            "ORDER BY created_at DESC, id DESC LIMIT :limit"
        ),
        {"u": user_id, "limit": limit},
    )
    return [dict(r) for r in rows.mappings()]

"""Proving it is still you: the current password (or a fresh Google/Apple ID token) before a
password change or an account deletion, and the password change itself.

Wrong current passwords are capped per account: each attempt is reserved (counted) before the
password is checked, in one upsert that holds the counter's row lock until the request ends, so
parallel attempts queue and at most REAUTH_MAX_FAILURES are ever checked per window. A correct
password clears the count. The counter lives in `login_throttle` under its own key
("reauth:<user id>"), apart from the sign-in counters of auth/throttle.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from stepcoin.auth.oidc import IdTokenError, VerifiedIdentity, id_token_verifier
from stepcoin.auth.passwords import hash_password, password_problem, verify_password
from stepcoin.auth.service import end_sessions
from stepcoin.config import Settings
from stepcoin.errors import Conflict, Forbidden, InvalidInput, TooManyRequests, account_gone

REAUTH_MAX_FAILURES = 5
REAUTH_WINDOW = timedelta(minutes=15)
# a deletion re-authenticated by Google/Apple wants a token from a sign-in just made
ID_TOKEN_MAX_AGE = timedelta(minutes=10)


def reauth_key(user_id: uuid.UUID) -> str:
    return f"reauth:{user_id}"


def wrong_password() -> Forbidden:
    # 403, not 401: the access token is fine, so the app must not sign the walker out
    return Forbidden("The current password is wrong.", code="wrong_password", keep_changes=True)


def no_password() -> Conflict:
    return Conflict(
        "This account signs in with Google or Apple and has no password.",
        code="no_password",
    )


_RESERVE_ATTEMPT = text(
    """
    INSERT INTO login_throttle AS t (key, failures, window_started_at)
    VALUES (:key, 1, now())
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN t.window_started_at < now() - make_interval(secs => :window)
                        THEN 1 ELSE t.failures + 1 END,
        window_started_at = CASE WHEN t.window_started_at < now() - make_interval(secs => :window)
                                 THEN now() ELSE t.window_started_at END
    RETURNING failures, window_started_at
    """
)


async def check_current_password(
    session: AsyncSession, user_id: uuid.UUID, password_hash: str | None, password: str
) -> None:
    """Raises unless `password` is the account's password; every wrong try counts."""
    if not password_hash:
        raise no_password()
    window = int(REAUTH_WINDOW.total_seconds())
    reserved = (
        await session.execute(_RESERVE_ATTEMPT, {"key": reauth_key(user_id), "window": window})
    ).one()
    if reserved.failures > REAUTH_MAX_FAILURES:
        # give back the reservation: a refused attempt is not a checked one
        await session.execute(
            text("UPDATE login_throttle SET failures = failures - 1 WHERE key = :key"),
            {"key": reauth_key(user_id)},
        )
        retry = reserved.window_started_at + REAUTH_WINDOW - datetime.now(UTC)
        raise TooManyRequests(
            "Too many wrong passwords; try again later.",
            code="reauth_throttled",
            retry_after=int(retry.total_seconds()) + 1,
            keep_changes=True,
        )
    if not await run_in_threadpool(verify_password, password_hash, password):
        raise wrong_password()
    await session.execute(
        text("DELETE FROM login_throttle WHERE key = :key"), {"key": reauth_key(user_id)}
    )


async def lock_credentials(session: AsyncSession, user_id: uuid.UUID) -> str | None:
    """The account's password hash, its row locked for the rest of the transaction."""
    row = (
        await session.execute(
            text("SELECT password_hash FROM users WHERE id = :id AND is_active FOR UPDATE"),
            {"id": user_id},
        )
    ).first()
    if row is None:
        raise account_gone()
    return row.password_hash  # type: ignore[no-any-return]


async def change_password(
    session: AsyncSession,
    settings: Settings,
    user_id: uuid.UUID,
    *,
    current_password: str,
    new_password: str,
    keep_session: uuid.UUID | None,
) -> int:
    """Set a new password after checking the current one; every other session ends (refresh
    families revoked, console sessions begun earlier refused). Returns the sessions ended."""
    password_hash = await lock_credentials(session, user_id)
    await check_current_password(session, user_id, password_hash, current_password)
    problem = password_problem(new_password)
    if problem:
        raise InvalidInput(f"new_password {problem}.", code="weak_password")
    if new_password == current_password:
        raise InvalidInput(
            "The new password must differ from the current one.", code="password_unchanged"
        )
    new_hash = await run_in_threadpool(hash_password, new_password, settings.password_hashing)
    await session.execute(
        text("UPDATE users SET password_hash = :h, updated_at = now() WHERE id = :id"),
        {"h": new_hash, "id": user_id},
    )
    return await end_sessions(session, user_id, "password_changed", keep_family=keep_session)


@dataclass(frozen=True, slots=True)
class LinkedIdentity:
    provider: str
    subject: str
    audience: str | None


def invalid_id_token(reason: str) -> Forbidden:
    return Forbidden(f"The ID token was refused: {reason}", code="invalid_id_token")


async def check_identity_token(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, provider: str, id_token: str
) -> LinkedIdentity:
    """A fresh Google/Apple ID token of an identity linked to this very account."""
    try:
        identity: VerifiedIdentity = await id_token_verifier.verify(settings, provider, id_token)
    except IdTokenError as exc:
        raise invalid_id_token(str(exc)) from exc
    age = datetime.now(UTC).timestamp() - (identity.issued_at or 0)
    if age > ID_TOKEN_MAX_AGE.total_seconds():
        raise invalid_id_token("it is not fresh; sign in with the provider again")
    linked = (
        await session.execute(
            text(
                "SELECT 1 FROM user_identities WHERE user_id = :u AND provider = :p "
                "AND subject = :s"
            ),
            {"u": user_id, "p": identity.provider, "s": identity.subject},
        )
    ).first()
    if linked is None:
        raise invalid_id_token("it belongs to another account")
    return LinkedIdentity(identity.provider, identity.subject, identity.audience)

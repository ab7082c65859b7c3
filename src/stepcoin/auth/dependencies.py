"""Who is calling: bearer-token dependencies for the routers, and who counts as staff
(`admin` does everything, `support` reads and works the queue)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.auth.tokens import AccessClaims, InvalidToken, decode_access_token
from stepcoin.config import Settings, get_settings
from stepcoin.db import Database, SessionDep, get_database
from stepcoin.errors import Forbidden, Unauthorized, account_gone

_bearer = HTTPBearer(auto_error=False, description="Access token from /v1/auth/login")


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = getattr(request.app.state, "settings", None) or get_settings()
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]


async def current_claims(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AccessClaims:
    """The verified access token, without a database read.

    Routes that use only this must check `users.is_active` in their own query (as the profile
    does) so that a deactivated user's still-valid token is refused.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("A bearer access token is required.", code="missing_token")
    try:
        return decode_access_token(settings, credentials.credentials)
    except InvalidToken as exc:
        raise Unauthorized("The access token is invalid or expired.", code="invalid_token") from exc


ClaimsDep = Annotated[AccessClaims, Depends(current_claims)]


_IS_ACTIVE = "SELECT is_active FROM users WHERE id = $1"


async def active_claims(claims: ClaimsDep, database: DatabaseDep) -> AccessClaims:
    """The verified token of an account that is still active: one primary-key read outside a
    transaction, for routes whose own query does not check `users.is_active`. The connection
    is the read pool's and goes back before the route runs (it holds none of the route's)."""
    async with (await database.fast_pool()).acquire() as conn:
        active = await conn.fetchval(_IS_ACTIVE, claims.user_id)
    if not active:
        raise account_gone()
    return claims


ActiveClaimsDep = Annotated[AccessClaims, Depends(active_claims)]


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: uuid.UUID
    role: str


async def load_user(session: AsyncSession, user_id: uuid.UUID) -> CurrentUser | None:
    """The account as it is now (its role), or None when it is gone or deactivated: read in
    the caller's transaction, so deactivation and role changes apply at once."""
    row = (
        await session.execute(
            text("SELECT role, is_active FROM users WHERE id = :id"), {"id": user_id}
        )
    ).first()
    if row is None or not row.is_active:
        return None
    return CurrentUser(id=user_id, role=row.role)


async def current_user(claims: ClaimsDep, session: SessionDep) -> CurrentUser:
    """The caller, re-read from the database: deactivation and role changes apply at once."""
    user = await load_user(session, claims.user_id)
    if user is None:
        raise account_gone()
    return user


CurrentUserDep = Annotated[CurrentUser, Depends(current_user)]


def require_roles(*roles: str):  # type: ignore[no-untyped-def]
    """A dependency that admits only the given roles (403 for everyone else)."""

    async def dependency(user: CurrentUserDep) -> CurrentUser:
        if user.role not in roles:
            raise Forbidden("This needs an administrator.", code="forbidden")
        return user

    return dependency


STAFF_ROLES = ("admin", "support")


@dataclass(frozen=True, slots=True)
class Staff:
    id: uuid.UUID
    role: str


def _as_staff(user: CurrentUser) -> Staff:
    return Staff(id=uuid.UUID(str(user.id)), role=user.role)


async def _any_staff(user: Annotated[CurrentUser, Depends(require_roles(*STAFF_ROLES))]) -> Staff:
    return _as_staff(user)


async def _admin_only(user: Annotated[CurrentUser, Depends(require_roles("admin"))]) -> Staff:
    return _as_staff(user)


StaffDep = Annotated[Staff, Depends(_any_staff)]
"""Admin or support: reading, the review queue, deactivating plain users."""

AdminDep = Annotated[Staff, Depends(_admin_only)]
"""Admin only: money, settings, roles."""

"""Account rules shared by the API, the admin console and the command line."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.admin import audit
from stepcoin.auth.service import revoke_all_sessions
from stepcoin.errors import NotFound


async def set_active(
    session: AsyncSession, user_id: uuid.UUID, active: bool, *, admin_id: uuid.UUID | None
) -> None:
    """Deactivation ends every session at once: refresh tokens are revoked in the same
    transaction, and access tokens are refused because every request re-checks is_active."""
    before = (
        await session.execute(
            text("SELECT is_active FROM users WHERE id = :id FOR UPDATE"), {"id": user_id}
        )
    ).scalar_one_or_none()
    if before is None:
        raise NotFound("No such user.", code="user_not_found")
    await session.execute(
        text("UPDATE users SET is_active = :active, updated_at = now() WHERE id = :id"),
        {"active": active, "id": user_id},
    )
    if not active:
        await revoke_all_sessions(session, user_id, "user_deactivated")
    await audit.record(
        session,
        admin_id=admin_id,
        action="user.activate" if active else "user.deactivate",
        entity_type="user",
        entity_id=str(user_id),
        before={"is_active": before},
        after={"is_active": active},
    )

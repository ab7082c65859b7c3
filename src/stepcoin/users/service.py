"""Account rules shared by the API, the admin console and the command line."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.auth.service import revoke_all_sessions
from stepcoin.errors import Conflict, Forbidden, NotFound
from stepcoin.users import repository


async def set_active(
    session: AsyncSession, user_id: uuid.UUID, active: bool, *, admin_id: uuid.UUID | None
) -> None:
    """Deactivation ends every session at once: refresh tokens are revoked in the same
    transaction, and access tokens are refused because every request re-checks is_active."""
    row = (
        await session.execute(
            text("SELECT is_active, deleted_at FROM users WHERE id = :id FOR UPDATE"),
            {"id": user_id},
        )
    ).first()
    if row is None:
        raise NotFound("No such user.", code="user_not_found")
    if row.deleted_at is not None and active:
        raise Conflict("A deleted account cannot be reactivated.", code="account_deleted")
    before = row.is_active
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


async def update_as_staff(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    actor_id: uuid.UUID,
    is_active: bool | None = None,
    role: str | None = None,
) -> None:
    """An admin or support member changes a user's activeness or role.

    Role changes are for admins only; support may (de)activate plain users but not staff.
    Nobody changes their own role or deactivates themself (409 `cannot_change_self`), so an
    admin always remains. The actor and the target are locked in key order and the actor's
    role is re-read under the lock: two admins demoting each other at once cannot both win.
    """
    locked = await repository.lock_users(session, [actor_id, user_id])
    target = locked.get(user_id)
    if target is None:
        raise NotFound("No such user.", code="user_not_found")
    actor = locked.get(actor_id)
    if actor is None or not actor.is_active or actor.role not in ("admin", "support"):
        raise Forbidden("This needs an administrator.", code="forbidden")
    changes_role = role is not None and role != target.role
    changes_active = is_active is not None and is_active != target.is_active
    if changes_role and actor.role != "admin":
        raise Forbidden("Only an administrator can change roles.", code="forbidden")
    if changes_active and actor.role != "admin" and target.role != "user":
        raise Forbidden("Only an administrator can (de)activate staff.", code="forbidden")
    if user_id == actor_id and (changes_role or changes_active):
        raise Conflict(
            "You cannot change your own role or deactivate yourself.", code="cannot_change_self"
        )
    if changes_active:
        assert is_active is not None
        await set_active(session, user_id, is_active, admin_id=actor_id)
    if changes_role:
        assert role is not None
        await repository.set_role(session, user_id, role)
        await audit.record(
            session,
            admin_id=actor_id,
            action="user.role_change",
            entity_type="user",
            entity_id=str(user_id),
            before={"role": target.role},
            after={"role": role},
        )


async def daily_step_goals(
    session: AsyncSession, user_ids: list[uuid.UUID], default: int
) -> dict[uuid.UUID, int]:
    """Each walker's own daily step goal, or `default` when they set none."""
    rows = await session.execute(
        text(
            "SELECT id, coalesce(daily_step_goal, :default) AS goal FROM users "
            "WHERE id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": user_ids, "default": default},
    )
    return {r.id: int(r.goal) for r in rows}

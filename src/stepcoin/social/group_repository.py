"""Queries of groups: the groups, their members and roles, join requests and bans. Flushes,
never commits."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.social.repository import _all, _one

_GROUP = (
    "SELECT g.id, g.name, g.kind, g.is_open, g.description, g.email_domain, g.created_at, "
    "(SELECT count(*) FROM group_members m WHERE m.group_id = g.id) AS member_count, "
    "(SELECT m.user_id FROM group_members m WHERE m.group_id = g.id AND m.role = 'owner') "
    "AS owner_id FROM groups g "
)


async def group(
    session: AsyncSession, group_id: int, *, for_update: bool = False
) -> dict[str, Any] | None:
    """The group with its member count and owner; locked (the group's row) when asked: every
    change of a group's members takes this lock first, so its caps hold."""
    if for_update:
        # the lock alone first: the counts below are then read in a snapshot taken after it
        # (under READ COMMITTED, a statement that waited for a row lock keeps its own older
        # snapshot for its subqueries: two joins would both count the group before the other)
        locked = await session.execute(
            text("SELECT id FROM groups WHERE id = :g FOR UPDATE"), {"g": group_id}
        )
        if locked.first() is None:
            return None
    return _one(await session.execute(text(_GROUP + "WHERE g.id = :g"), {"g": group_id}))


async def insert_group(
    session: AsyncSession,
    *,
    name: str,
    kind: str,
    is_open: bool,
    description: str | None,
    created_by: uuid.UUID,
    now: datetime,
) -> int:
    made = await session.execute(
        text(
            "INSERT INTO groups (name, kind, is_open, description, created_by, created_at) "
            "VALUES (:n, :k, :o, :d, :u, :now) RETURNING id"
        ),
        {"n": name, "k": kind, "o": is_open, "d": description, "u": created_by, "now": now},
    )
    return int(made.scalar_one())


async def update_group(session: AsyncSession, group_id: int, changes: dict[str, Any]) -> None:
    allowed = {"name", "is_open", "description", "email_domain"}
    assert set(changes) <= allowed
    if not changes:
        return
    sets = ", ".join(f"{column} = :{column}" for column in sorted(changes))
    await session.execute(
        text(f"UPDATE groups SET {sets} WHERE id = :g"), {**changes, "g": group_id}
    )


async def delete_group(session: AsyncSession, group_id: int) -> None:
    await session.execute(text("DELETE FROM groups WHERE id = :g"), {"g": group_id})


async def walker(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any] | None:
    """An active walker's email and whether it is verified."""
    return _one(
        await session.execute(
            text(
                "SELECT id, email, (email_verified_at IS NOT NULL) AS verified FROM users "
                "WHERE id = :u AND is_active AND deleted_at IS NULL"
            ),
            {"u": user_id},
        )
    )


# ---- members ---------------------------------------------------------------------------------


async def member_role(session: AsyncSession, group_id: int, user_id: uuid.UUID) -> str | None:
    role: str | None = (
        await session.execute(
            text("SELECT role FROM group_members WHERE group_id = :g AND user_id = :u"),
            {"g": group_id, "u": user_id},
        )
    ).scalar_one_or_none()
    return role


async def kind_of(session: AsyncSession, group_id: int) -> str | None:
    kind: str | None = (
        await session.execute(text("SELECT kind FROM groups WHERE id = :g"), {"g": group_id})
    ).scalar_one_or_none()
    return kind


async def group_ids_of(session: AsyncSession, user_id: uuid.UUID) -> list[int]:
    """The ids of the walker's groups (ix_group_members_user)."""
    rows = await session.execute(
        text("SELECT group_id FROM group_members WHERE user_id = :u ORDER BY group_id"),
        {"u": user_id},
    )
    return [int(r[0]) for r in rows]


async def counts_of(session: AsyncSession, user_id: uuid.UUID) -> tuple[int, int]:
    """(groups the walker belongs to, groups the walker owns)."""
    row = (
        await session.execute(
            text(
                "SELECT count(*) AS groups, count(*) FILTER (WHERE role = 'owner') AS owned "
                "FROM group_members WHERE user_id = :u"
            ),
            {"u": user_id},
        )
    ).one()
    return int(row.groups), int(row.owned)


async def add_member(
    session: AsyncSession, group_id: int, user_id: uuid.UUID, role: str, now: datetime
) -> None:
    """The member (once); a waiting request of theirs is answered by it."""
    await session.execute(
        text(
            "INSERT INTO group_members (group_id, user_id, role, joined_at) "
            "VALUES (:g, :u, :r, :now) ON CONFLICT DO NOTHING"
        ),
        {"g": group_id, "u": user_id, "r": role, "now": now},
    )
    await delete_request(session, group_id, user_id)


async def set_role(session: AsyncSession, group_id: int, user_id: uuid.UUID, role: str) -> None:
    await session.execute(
        text("UPDATE group_members SET role = :r WHERE group_id = :g AND user_id = :u"),
        {"g": group_id, "u": user_id, "r": role},
    )


async def remove_member(session: AsyncSession, group_id: int, user_id: uuid.UUID) -> bool:
    done = await session.execute(
        text("DELETE FROM group_members WHERE group_id = :g AND user_id = :u RETURNING 1"),
        {"g": group_id, "u": user_id},
    )
    return done.first() is not None


async def members_page(
    session: AsyncSession, group_id: int, *, limit: int, after: tuple[datetime, uuid.UUID] | None
) -> list[dict[str, Any]]:
    """Members in the order they joined."""
    where = "m.group_id = :g"
    params: dict[str, Any] = {"g": group_id, "n": limit}
    if after is not None:
        where += " AND (m.joined_at, m.user_id) > (:at, :id)"
        params |= {"at": after[0], "id": after[1]}
    return _all(
        await session.execute(
            text(
                "SELECT m.user_id, m.role, m.joined_at, u.full_name, "
                "(u.deleted_at IS NOT NULL) AS deleted FROM group_members m "
                f"JOIN users u ON u.id = m.user_id WHERE {where} "
                "ORDER BY m.joined_at, m.user_id LIMIT :n"
            ),
            params,
        )
    )


async def member(session: AsyncSession, group_id: int, user_id: uuid.UUID) -> dict[str, Any] | None:
    return _one(
        await session.execute(
            text(
                "SELECT m.user_id, m.role, m.joined_at, u.full_name, "
                "(u.deleted_at IS NOT NULL) AS deleted FROM group_members m "
                "JOIN users u ON u.id = m.user_id WHERE m.group_id = :g AND m.user_id = :u"
            ),
            {"g": group_id, "u": user_id},
        )
    )


async def groups_of(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The walker's groups with their role, newest membership first."""
    return _all(
        await session.execute(
            text(
                _GROUP.replace("FROM groups g", ", m.role AS my_role FROM groups g")
                + "JOIN group_members m ON m.group_id = g.id AND m.user_id = :u "
                "ORDER BY m.joined_at DESC, g.id DESC"
            ),
            {"u": user_id},
        )
    )


async def search(session: AsyncSession, query: str, limit: int) -> list[dict[str, Any]]:
    """Groups whose name holds the text (case-insensitive), names starting with it first."""
    pattern = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return _all(
        await session.execute(
            text(
                _GROUP + "WHERE g.name ILIKE :contains "
                "ORDER BY (g.name ILIKE :prefix) DESC, lower(g.name), g.id LIMIT :n"
            ),
            {"contains": f"%{pattern}%", "prefix": f"{pattern}%", "n": limit},
        )
    )


async def successor(session: AsyncSession, group_id: int, leaving: uuid.UUID) -> uuid.UUID | None:
    """Who takes a group over from a leaving owner: the oldest admin, else the oldest member."""
    found: uuid.UUID | None = (
        await session.execute(
            text(
                "SELECT user_id FROM group_members WHERE group_id = :g AND user_id <> :u "
                "ORDER BY (role = 'admin') DESC, joined_at, user_id LIMIT 1"
            ),
            {"g": group_id, "u": leaving},
        )
    ).scalar_one_or_none()
    return found


async def owned_by(session: AsyncSession, user_id: uuid.UUID) -> list[int]:
    rows = await session.execute(
        text(
            "SELECT group_id FROM group_members WHERE user_id = :u AND role = 'owner' "
            "ORDER BY group_id"
        ),
        {"u": user_id},
    )
    return [int(r) for r in rows.scalars().all()]


# ---- join requests and bans ------------------------------------------------------------------


async def insert_request(
    session: AsyncSession, group_id: int, user_id: uuid.UUID, now: datetime
) -> None:
    await session.execute(
        text(
            "INSERT INTO group_join_requests (group_id, user_id, created_at) "
            "VALUES (:g, :u, :now) ON CONFLICT DO NOTHING"
        ),
        {"g": group_id, "u": user_id, "now": now},
    )


async def has_request(session: AsyncSession, group_id: int, user_id: uuid.UUID) -> bool:
    return (
        await session.execute(
            text("SELECT 1 FROM group_join_requests WHERE group_id = :g AND user_id = :u"),
            {"g": group_id, "u": user_id},
        )
    ).first() is not None


async def delete_request(session: AsyncSession, group_id: int, user_id: uuid.UUID) -> bool:
    done = await session.execute(
        text("DELETE FROM group_join_requests WHERE group_id = :g AND user_id = :u RETURNING 1"),
        {"g": group_id, "u": user_id},
    )
    return done.first() is not None


async def requests_of(session: AsyncSession, group_id: int) -> list[dict[str, Any]]:
    """Waiting requests, oldest first (at most 500)."""
    return _all(
        await session.execute(
            text(
                "SELECT r.user_id, r.created_at, u.full_name FROM group_join_requests r "
                "JOIN users u ON u.id = r.user_id WHERE r.group_id = :g "
                "AND u.is_active AND u.deleted_at IS NULL ORDER BY r.created_at, r.user_id "
                "LIMIT 500"
            ),
            {"g": group_id},
        )
    )


async def is_banned(session: AsyncSession, group_id: int, user_id: uuid.UUID) -> bool:
    return (
        await session.execute(
            text("SELECT 1 FROM group_bans WHERE group_id = :g AND user_id = :u"),
            {"g": group_id, "u": user_id},
        )
    ).first() is not None


async def insert_ban(
    session: AsyncSession, group_id: int, user_id: uuid.UUID, by: uuid.UUID, now: datetime
) -> None:
    await session.execute(
        text(
            "INSERT INTO group_bans (group_id, user_id, banned_by, created_at) "
            "VALUES (:g, :u, :b, :now) ON CONFLICT DO NOTHING"
        ),
        {"g": group_id, "u": user_id, "b": by, "now": now},
    )
    await delete_request(session, group_id, user_id)


async def delete_ban(session: AsyncSession, group_id: int, user_id: uuid.UUID) -> None:
    await session.execute(
        text("DELETE FROM group_bans WHERE group_id = :g AND user_id = :u"),
        {"g": group_id, "u": user_id},
    )


async def bans_of(session: AsyncSession, group_id: int) -> list[dict[str, Any]]:
    return _all(
        await session.execute(
            text(
                "SELECT b.user_id, b.created_at, u.full_name FROM group_bans b "
                "JOIN users u ON u.id = b.user_id WHERE b.group_id = :g "
                "ORDER BY b.created_at DESC, b.user_id LIMIT 500"
            ),
            {"g": group_id},
        )
    )


# ---- staff -----------------------------------------------------------------------------------


async def admin_page(
    session: AsyncSession, *, query: str | None, limit: int, after: int | None
) -> list[dict[str, Any]]:
    """Every group (newest first), optionally by name or bound domain."""
    where = ["TRUE"]
    params: dict[str, Any] = {"n": limit}
    if query:
        pattern = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("(g.name ILIKE :q OR g.email_domain ILIKE :q)")
        params["q"] = f"%{pattern}%"
    if after is not None:
        where.append("g.id < :after")
        params["after"] = after
    return _all(
        await session.execute(
            text(_GROUP + "WHERE " + " AND ".join(where) + " ORDER BY g.id DESC LIMIT :n"),
            params,
        )
    )


# ---- account deletion and export -------------------------------------------------------------


async def forget(session: AsyncSession, user_id: uuid.UUID) -> dict[str, int]:
    """The walker's memberships, requests and bans (their own; bans they made keep the group's
    decision, without their name)."""
    counts: dict[str, int] = {}
    for name, statement in {
        "group_memberships": "DELETE FROM group_members WHERE user_id = :u",
        "group_requests": "DELETE FROM group_join_requests WHERE user_id = :u",
        "group_bans": "DELETE FROM group_bans WHERE user_id = :u",
    }.items():
        done = await session.execute(text(statement + " RETURNING 1"), {"u": user_id})
        counts[name] = len(done.all())
    await session.execute(
        text("UPDATE group_bans SET banned_by = NULL WHERE banned_by = :u"), {"u": user_id}
    )
    await session.execute(
        text("UPDATE groups SET created_by = NULL WHERE created_by = :u"), {"u": user_id}
    )
    return counts


async def requests_by(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    return _all(
        await session.execute(
            text(
                "SELECT group_id, created_at FROM group_join_requests WHERE user_id = :u "
                "ORDER BY created_at, group_id"
            ),
            {"u": user_id},
        )
    )

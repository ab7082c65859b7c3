"""Queries of friends by consent: invitations, friendships, requests, blocks, reports."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


def _one(result: Any) -> dict[str, Any] | None:
    row = result.mappings().first()
    return dict(row) if row is not None else None


def _all(result: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in result.mappings().all()]


# ---- walkers ---------------------------------------------------------------------------------


async def lock_walkers(session: AsyncSession, user_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Lock the walkers' rows in id order (two friendships of one walker take turns, so a cap
    holds); the ids of those that are active."""
    rows = await session.execute(
        text(
            "SELECT id FROM users WHERE id = ANY(CAST(:ids AS uuid[])) "
            "AND is_active AND deleted_at IS NULL ORDER BY id FOR UPDATE"
        ),
        {"ids": sorted(set(user_ids))},
    )
    return set(rows.scalars().all())


async def walker_exists(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return (
        await session.execute(
            text("SELECT 1 FROM users WHERE id = :u AND deleted_at IS NULL"), {"u": user_id}
        )
    ).first() is not None


async def active_by_email(session: AsyncSession, email: str) -> uuid.UUID | None:
    return (
        await session.execute(
            text("SELECT id FROM users WHERE email = :e AND is_active AND deleted_at IS NULL"),
            {"e": email},
        )
    ).scalar_one_or_none()


# ---- invitations -----------------------------------------------------------------------------


async def open_invitations(session: AsyncSession, inviter_id: uuid.UUID, now: datetime) -> int:
    return int(
        (
            await session.execute(
                text(
                    "SELECT count(*) FROM friend_invitations WHERE inviter_id = :u "
                    "AND revoked_at IS NULL AND accepted_at IS NULL AND expires_at > :now"
                ),
                {"u": inviter_id, "now": now},
            )
        ).scalar_one()
    )


async def insert_invitation(
    session: AsyncSession, inviter_id: uuid.UUID, code_hash: str, expires_at: datetime
) -> bool:
    """False when the hash is taken (a code drawn twice)."""
    made = await session.execute(
        text(
            "INSERT INTO friend_invitations (inviter_id, code_hash, expires_at) "
            "VALUES (:u, :h, :x) ON CONFLICT (code_hash) DO NOTHING RETURNING id"
        ),
        {"u": inviter_id, "h": code_hash, "x": expires_at},
    )
    return made.first() is not None


async def invitation(
    session: AsyncSession, code_hash: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    """The invitation with its inviter (name, whether active)."""
    lock = " FOR UPDATE OF i" if for_update else ""
    return _one(
        await session.execute(
            text(
                "SELECT i.id, i.inviter_id, i.expires_at, i.revoked_at, i.accepted_by, "
                "i.accepted_at, u.full_name AS inviter_name, "
                "(u.is_active AND u.deleted_at IS NULL) AS inviter_active "
                "FROM friend_invitations i JOIN users u ON u.id = i.inviter_id "
                "WHERE i.code_hash = :h" + lock
            ),
            {"h": code_hash},
        )
    )


async def revoke_invitation(
    session: AsyncSession, inviter_id: uuid.UUID, code_hash: str, now: datetime
) -> bool:
    """Revoke one of the inviter's open invitations; False when there is none."""
    done = await session.execute(
        text(
            "UPDATE friend_invitations SET revoked_at = :now WHERE code_hash = :h "
            "AND inviter_id = :u AND revoked_at IS NULL AND accepted_at IS NULL "
            "AND expires_at > :now RETURNING id"
        ),
        {"h": code_hash, "u": inviter_id, "now": now},
    )
    return done.first() is not None


async def mark_accepted(
    session: AsyncSession, invitation_id: int, by: uuid.UUID, now: datetime
) -> None:
    await session.execute(
        text("UPDATE friend_invitations SET accepted_by = :b, accepted_at = :now WHERE id = :i"),
        {"b": by, "now": now, "i": invitation_id},
    )


# ---- friendships and blocks -------------------------------------------------------------------


async def blocked_between(session: AsyncSession, a: uuid.UUID, b: uuid.UUID) -> bool:
    """Whether either walker blocked the other."""
    return (
        await session.execute(
            text(
                "SELECT 1 FROM blocks WHERE (blocker_id = :a AND blocked_id = :b) "
                "OR (blocker_id = :b AND blocked_id = :a)"
            ),
            {"a": a, "b": b},
        )
    ).first() is not None


async def are_friends(session: AsyncSession, a: uuid.UUID, b: uuid.UUID) -> bool:
    return (
        await session.execute(
            text("SELECT 1 FROM friendships WHERE user_id = :a AND friend_id = :b"),
            {"a": a, "b": b},
        )
    ).first() is not None


async def friends_among(
    session: AsyncSession, user_id: uuid.UUID, others: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of `others` are the walker's friends (one range of the primary key)."""
    rows = await session.execute(
        text(
            "SELECT friend_id FROM friendships WHERE user_id = :u "
            "AND friend_id = ANY(CAST(:o AS uuid[]))"
        ),
        {"u": user_id, "o": list(others)},
    )
    return {r[0] for r in rows}


async def friend_count(session: AsyncSession, user_id: uuid.UUID) -> int:
    return int(
        (
            await session.execute(
                text("SELECT count(*) FROM friendships WHERE user_id = :u"), {"u": user_id}
            )
        ).scalar_one()
    )


async def befriend(session: AsyncSession, a: uuid.UUID, b: uuid.UUID, now: datetime) -> None:
    """Both directions, and every open request between the two is answered."""
    await session.execute(
        text(
            "INSERT INTO friendships (user_id, friend_id, created_at) "
            "VALUES (:a, :b, :now), (:b, :a, :now) ON CONFLICT DO NOTHING"
        ),
        {"a": a, "b": b, "now": now},
    )
    # also those to the address one of them holds verified now, sent before they had an
    # account (to_id NULL: see _ADDRESSED_TO)
    await session.execute(
        text(
            "UPDATE friend_requests r SET status = 'accepted', decided_at = :now, "
            "to_id = CASE WHEN r.from_id = :a THEN CAST(:b AS uuid) ELSE CAST(:a AS uuid) END "
            "WHERE r.status = 'pending' AND ((r.from_id = :a AND r.to_id = :b) "
            "OR (r.from_id = :b AND r.to_id = :a) "
            "OR (r.to_id IS NULL AND (r.from_id, r.to_email) IN ("
            "SELECT CAST(:a AS uuid), lower(u.email) FROM users u "
            "WHERE u.id = :b AND u.email_verified_at IS NOT NULL UNION ALL "
            "SELECT CAST(:b AS uuid), lower(u.email) FROM users u "
            "WHERE u.id = :a AND u.email_verified_at IS NOT NULL)))"
        ),
        {"a": a, "b": b, "now": now},
    )


async def unfriend(session: AsyncSession, a: uuid.UUID, b: uuid.UUID) -> bool:
    done = await session.execute(
        text(
            "DELETE FROM friendships WHERE (user_id = :a AND friend_id = :b) "
            "OR (user_id = :b AND friend_id = :a) RETURNING user_id"
        ),
        {"a": a, "b": b},
    )
    return len(done.all()) > 0


_FRIEND = (
    "SELECT f.friend_id AS user_id, f.alias, f.created_at AS since, u.full_name, "
    "(u.deleted_at IS NOT NULL) AS deleted FROM friendships f JOIN users u ON u.id = f.friend_id "
)


async def friends_of(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    return _all(
        await session.execute(
            text(_FRIEND + "WHERE f.user_id = :u ORDER BY f.created_at DESC, f.friend_id"),
            {"u": user_id},
        )
    )


async def friend(
    session: AsyncSession, user_id: uuid.UUID, friend_id: uuid.UUID
) -> dict[str, Any] | None:
    return _one(
        await session.execute(
            text(_FRIEND + "WHERE f.user_id = :u AND f.friend_id = :f"),
            {"u": user_id, "f": friend_id},
        )
    )


async def set_alias(
    session: AsyncSession, user_id: uuid.UUID, friend_id: uuid.UUID, alias: str | None
) -> bool:
    done = await session.execute(
        text(
            "UPDATE friendships SET alias = :a WHERE user_id = :u AND friend_id = :f "
            "RETURNING user_id"
        ),
        {"a": alias, "u": user_id, "f": friend_id},
    )
    return done.first() is not None


async def block(
    session: AsyncSession, blocker_id: uuid.UUID, blocked_id: uuid.UUID, now: datetime
) -> None:
    """The block row (once), the friendship gone, open requests both ways cancelled."""
    await session.execute(
        text(
            "INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (:a, :b, :now) "
            "ON CONFLICT DO NOTHING"
        ),
        {"a": blocker_id, "b": blocked_id, "now": now},
    )
    await unfriend(session, blocker_id, blocked_id)
    await session.execute(
        text(
            "UPDATE friend_requests SET status = 'cancelled', decided_at = :now "
            "WHERE status = 'pending' AND ((from_id = :a AND to_id = :b) "
            "OR (from_id = :b AND to_id = :a))"
        ),
        {"a": blocker_id, "b": blocked_id, "now": now},
    )


async def unblock(session: AsyncSession, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> None:
    await session.execute(
        text("DELETE FROM blocks WHERE blocker_id = :a AND blocked_id = :b"),
        {"a": blocker_id, "b": blocked_id},
    )


async def blocks_of(session: AsyncSession, blocker_id: uuid.UUID) -> list[dict[str, Any]]:
    return _all(
        await session.execute(
            text(
                "SELECT blocked_id AS user_id, created_at FROM blocks WHERE blocker_id = :u "
                "ORDER BY created_at DESC, blocked_id"
            ),
            {"u": blocker_id},
        )
    )


# ---- requests --------------------------------------------------------------------------------


async def latest_request(
    session: AsyncSession, from_id: uuid.UUID, to_email: str
) -> dict[str, Any] | None:
    """The sender's newest request to this address that did not end in a friendship."""
    return _one(
        await session.execute(
            text(
                "SELECT id, status FROM friend_requests WHERE from_id = :f AND to_email = :e "
                "AND status <> 'accepted' ORDER BY id DESC LIMIT 1 FOR UPDATE"
            ),
            {"f": from_id, "e": to_email},
        )
    )


async def insert_request(
    session: AsyncSession,
    from_id: uuid.UUID,
    to_id: uuid.UUID | None,
    to_email: str,
    status: str,
    now: datetime,
) -> None:
    await session.execute(
        text(
            "INSERT INTO friend_requests (from_id, to_id, to_email, status, created_at, "
            "decided_at) VALUES (:f, :t, :e, :s, :now, :decided) ON CONFLICT DO NOTHING"
        ),
        {
            "f": from_id,
            "t": to_id,
            "e": to_email,
            "s": status,
            "now": now,
            "decided": None if status == "pending" else now,
        },
    )


async def reopen_request(session: AsyncSession, request_id: int, now: datetime) -> None:
    await session.execute(
        text(
            "UPDATE friend_requests SET status = 'pending', created_at = :now, "
            "decided_at = NULL WHERE id = :i"
        ),
        {"i": request_id, "now": now},
    )


# A request to an address no account had (to_id NULL) is the walker's once they hold that
# address VERIFIED (signed up later, or changed to it): matched when read, attached (to_id set)
# when answered. An unverified address sees nothing: nobody learns who asks for an email they
# only typed in.
_ADDRESSED_TO = (
    "(r.to_id = :u OR (r.to_id IS NULL AND r.from_id <> :u AND r.to_email = ("
    "SELECT lower(me.email) FROM users me WHERE me.id = :u "
    "AND me.email_verified_at IS NOT NULL)))"
)


async def incoming(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Open requests to the walker (by id, or to their verified address before they had an
    account), from walkers neither side blocked nor friends already (made friends by a code
    before the address was verified)."""
    return _all(
        await session.execute(
            text(
                "SELECT r.id, r.from_id, r.created_at, u.full_name FROM friend_requests r "
                f"JOIN users u ON u.id = r.from_id WHERE {_ADDRESSED_TO} "
                "AND r.status = 'pending' AND NOT EXISTS (SELECT 1 FROM friendships f "
                "WHERE f.user_id = :u AND f.friend_id = r.from_id) "
                "AND u.is_active AND u.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM blocks b "
                "WHERE (b.blocker_id = :u AND b.blocked_id = r.from_id) "
                "OR (b.blocker_id = r.from_id AND b.blocked_id = :u)) "
                "ORDER BY r.created_at DESC, r.id DESC LIMIT 500"
            ),
            {"u": user_id},
        )
    )


async def outgoing(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The walker's requests not answered with a friendship, newest per address: whether
    one was declined, silenced by a block or sent to no account is not told."""
    return _all(
        await session.execute(
            text(
                "SELECT * FROM (SELECT DISTINCT ON (to_email) id, to_email AS email, created_at "
                "FROM friend_requests WHERE from_id = :u AND status <> 'accepted' "
                "ORDER BY to_email, id DESC) AS newest ORDER BY created_at DESC, id DESC "
                "LIMIT 500"
            ),
            {"u": user_id},
        )
    )


async def request_to(
    session: AsyncSession, request_id: int, to_id: uuid.UUID
) -> dict[str, Any] | None:
    """An open request to the walker, locked; one to their verified address is attached to
    them (to_id set) here, so its answer stays theirs whatever their address becomes."""
    row = _one(
        await session.execute(
            text(
                "SELECT r.id, r.from_id, r.to_id FROM friend_requests r WHERE r.id = :i "
                f"AND {_ADDRESSED_TO} AND r.status = 'pending' FOR UPDATE"
            ),
            {"i": request_id, "u": to_id},
        )
    )
    if row is not None and row["to_id"] is None:
        await session.execute(
            text("UPDATE friend_requests SET to_id = :u WHERE id = :i"),
            {"i": request_id, "u": to_id},
        )
        row["to_id"] = to_id
    return row


async def decide_request(
    session: AsyncSession, request_id: int, status: str, now: datetime
) -> None:
    await session.execute(
        text("UPDATE friend_requests SET status = :s, decided_at = :now WHERE id = :i"),
        {"i": request_id, "s": status, "now": now},
    )


# ---- reports ---------------------------------------------------------------------------------

_REPORT = (
    "SELECT r.id, r.reporter_id, r.reported_id, r.reason, r.status, r.created_at, "
    "r.resolved_by, r.resolved_at, r.note, ru.email AS reporter_email, "
    "ru.full_name AS reporter_name, du.email AS reported_email, "
    "du.full_name AS reported_name FROM reports r LEFT JOIN users ru ON ru.id = r.reporter_id "
    "JOIN users du ON du.id = r.reported_id "
)


async def insert_report(
    session: AsyncSession, reporter_id: uuid.UUID, reported_id: uuid.UUID, reason: str | None
) -> dict[str, Any]:
    row = _one(
        await session.execute(
            text(
                "INSERT INTO reports (reporter_id, reported_id, reason) VALUES (:a, :b, :r) "
                "RETURNING id, reported_id AS user_id, reason, status, created_at"
            ),
            {"a": reporter_id, "b": reported_id, "r": reason},
        )
    )
    assert row is not None
    return row


async def report(
    session: AsyncSession, report_id: int, *, for_update: bool = False
) -> dict[str, Any] | None:
    lock = " FOR UPDATE OF r" if for_update else ""
    return _one(await session.execute(text(_REPORT + "WHERE r.id = :i" + lock), {"i": report_id}))


async def reports_page(
    session: AsyncSession, *, status: str | None, limit: int, after: tuple[datetime, int] | None
) -> list[dict[str, Any]]:
    """Oldest first (the queue's order)."""
    where = ["(CAST(:s AS text) IS NULL OR r.status = :s)"]
    params: dict[str, Any] = {"s": status, "n": limit}
    if after is not None:
        where.append("(r.created_at, r.id) > (:at, :id)")
        params |= {"at": after[0], "id": after[1]}
    return _all(
        await session.execute(
            text(
                _REPORT + "WHERE " + " AND ".join(where) + " ORDER BY r.created_at, r.id LIMIT :n"
            ),
            params,
        )
    )


async def resolve_report(
    session: AsyncSession, report_id: int, by: uuid.UUID, note: str | None, now: datetime
) -> None:
    await session.execute(
        text(
            "UPDATE reports SET status = 'resolved', resolved_by = :b, resolved_at = :now, "
            "note = :n WHERE id = :i"
        ),
        {"i": report_id, "b": by, "now": now, "n": note},
    )


async def reports_by(session: AsyncSession, reporter_id: uuid.UUID) -> list[dict[str, Any]]:
    return _all(
        await session.execute(
            text(
                "SELECT id, reported_id AS user_id, reason, status, created_at FROM reports "
                "WHERE reporter_id = :u ORDER BY created_at, id"
            ),
            {"u": reporter_id},
        )
    )


# ---- account deletion ------------------------------------------------------------------------


async def forget(session: AsyncSession, user_id: uuid.UUID, email: str | None) -> dict[str, int]:
    """Everything of the walker's social graph; reports stay (the moderation history)."""
    counts: dict[str, int] = {}
    statements = {
        "friendships": "DELETE FROM friendships WHERE user_id = :u OR friend_id = :u",
        "invitations": "DELETE FROM friend_invitations WHERE inviter_id = :u",
        "requests": "DELETE FROM friend_requests WHERE from_id = :u OR to_id = :u "
        "OR (CAST(:e AS text) IS NOT NULL AND to_email = :e)",
        "blocks": "DELETE FROM blocks WHERE blocker_id = :u OR blocked_id = :u",
    }
    for name, statement in statements.items():
        done = await session.execute(text(statement + " RETURNING 1"), {"u": user_id, "e": email})
        counts[name] = len(done.all())
    await session.execute(
        text("UPDATE friend_invitations SET accepted_by = NULL WHERE accepted_by = :u"),
        {"u": user_id},
    )
    return counts

"""A walker's signed-in devices: one refresh-token family is one sign-in on one device.

A session is live while its family has an unrevoked, unexpired token. The access token's `sid`
claim names the family it came with, so the device that asks is marked `current`.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.auth import email_tokens, recovery, throttle
from stepcoin.auth.service import end_sessions, revoke_family
from stepcoin.errors import NotFound
from stepcoin.mail import outbox

_LIVE_FAMILIES = text(
    """
    SELECT f.family_id, f.created_at, f.last_used_at, latest.user_agent, host(latest.ip) AS ip
    FROM (
        SELECT family_id, min(issued_at) AS created_at, max(issued_at) AS last_used_at,
               bool_or(revoked_at IS NULL AND expires_at > now()
                       AND family_expires_at > now()) AS live
        FROM refresh_tokens WHERE user_id = :user_id
        GROUP BY family_id
    ) f
    JOIN LATERAL (
        SELECT user_agent, ip FROM refresh_tokens t
        WHERE t.user_id = :user_id AND t.family_id = f.family_id
        ORDER BY t.issued_at DESC, t.id DESC LIMIT 1
    ) latest ON true
    WHERE f.live
    ORDER BY f.last_used_at DESC, f.family_id
    """
)


def coarse_address(address: str | None) -> str | None:
    """The network, not the host: an IPv4 /24 or an IPv6 /48 (enough to recognise a place,
    too little to point at one line)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


async def list_sessions(
    session: AsyncSession, user_id: uuid.UUID, *, current: uuid.UUID | None
) -> list[dict[str, Any]]:
    """The user's live sessions, most recently used first."""
    rows = (await session.execute(_LIVE_FAMILIES, {"user_id": user_id})).mappings().all()
    return [
        {
            "id": row["family_id"],
            "created_at": row["created_at"],
            "last_used_at": row["last_used_at"],
            "user_agent": row["user_agent"],
            "ip": coarse_address(row["ip"]),
            "current": row["family_id"] == current,
        }
        for row in rows
    ]


def session_not_found() -> NotFound:
    return NotFound("No such session.", code="session_not_found")


async def end_session(session: AsyncSession, user_id: uuid.UUID, family_id: uuid.UUID) -> None:
    """End one live session of this user; anyone else's (or an ended one) is a 404."""
    owned = (
        await session.execute(
            text(
                "SELECT 1 FROM refresh_tokens WHERE user_id = :user_id AND family_id = :family "
                "AND revoked_at IS NULL AND expires_at > now() AND family_expires_at > now() "
                "LIMIT 1"
            ),
            {"user_id": user_id, "family": family_id},
        )
    ).first()
    if owned is None:
        raise session_not_found()
    await revoke_family(session, family_id, "ended_by_user")


async def end_other_sessions(
    session: AsyncSession, user_id: uuid.UUID, *, current: uuid.UUID | None
) -> int:
    """End every session but the caller's (console sessions begun earlier end too)."""
    return await end_sessions(session, user_id, "ended_by_user", keep_family=current)


async def forget_devices(session: AsyncSession, user_id: uuid.UUID, email: str) -> None:
    """Account deletion: the user agents and addresses of past sessions are personal data (the
    rows stay, revoked, without them); the throttle counts, mail links, reset requests and
    mails keyed by the email go."""
    await session.execute(
        text("UPDATE refresh_tokens SET user_agent = NULL, ip = NULL WHERE user_id = :user_id"),
        {"user_id": user_id},
    )
    await throttle.forget_email(session, email)
    await email_tokens.forget(session, user_id)
    await recovery.forget_email(session, email)
    await outbox.forget_recipient(session, email)

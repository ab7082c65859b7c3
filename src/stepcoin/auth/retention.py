"""What sign-in lets go (docs/retention.md): refresh tokens of sessions long over."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def prune_refresh_tokens(session: AsyncSession, *, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` refresh tokens that expired before `cutoff` and whose whole family
    (the sign-in) is over: no token of it is still usable, so the session is neither listed
    nor able to rotate, and a replayed old token is refused as expired either way."""
    result = await session.execute(
        text(
            "DELETE FROM refresh_tokens WHERE id IN ("
            " SELECT t.id FROM refresh_tokens t"
            " WHERE t.expires_at < :cutoff"
            "   AND NOT EXISTS (SELECT 1 FROM refresh_tokens a"
            "                   WHERE a.family_id = t.family_id AND a.revoked_at IS NULL"
            "                     AND a.expires_at > now() AND a.family_expires_at > now())"
            " ORDER BY t.expires_at, t.id LIMIT :batch FOR UPDATE SKIP LOCKED)"
        ),
        {"cutoff": cutoff, "batch": batch},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]

"""What sign-in lets go (docs/retention.md): refresh tokens of sessions long over."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# A batch in expiry order along ix_refresh_tokens_expires_at, stopping at the batch (each
# candidate's sign-in probed by family_id), locked, then deleted by place (ctid: a locked row
# keeps it until the commit). As `id IN (...)` ordered by (expires_at, id) every batch sorted
# every expired token and found the batch's rows by a scan of the whole table (the key is
# (user_id, id)): 49 ms a batch at 62,600 tokens and growing with the table, 5.9 ms now
# whatever its size (issue 13; tests/retention/test_retention.py).
PRUNE_SQL = """
    DELETE FROM refresh_tokens WHERE ctid = ANY(ARRAY(
        SELECT t.ctid FROM refresh_tokens t
        WHERE t.expires_at < :cutoff
          AND NOT EXISTS (SELECT 1 FROM refresh_tokens a
                          WHERE a.family_id = t.family_id AND a.revoked_at IS NULL
                            AND a.expires_at > now() AND a.family_expires_at > now())
        ORDER BY t.expires_at LIMIT :batch FOR UPDATE OF t SKIP LOCKED))"""


async def prune_refresh_tokens(session: AsyncSession, *, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` refresh tokens that expired before `cutoff` and whose whole family
    (the sign-in) is over: no token of it is still usable, so the session is neither listed
    nor able to rotate, and a replayed old token is refused as expired either way."""
    result = await session.execute(text(PRUNE_SQL), {"cutoff": cutoff, "batch": batch})
    return int(result.rowcount)  # type: ignore[attr-defined]

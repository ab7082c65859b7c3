"""Background jobs of the console: ended sessions are deleted once nobody needs them."""

from __future__ import annotations

import logging

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.console.sessions import prune_sessions
from stepcoin.db import session_scope

logger = logging.getLogger("stepcoin.console.tasks")
blueprint = procrastinate.Blueprint()


@blueprint.periodic(cron="31 4 * * *", periodic_id="prune-sessions")
@blueprint.task(name="prune_sessions", queueing_lock="prune_sessions")
async def prune_sessions_job(timestamp: int) -> int:
    """Daily: delete console sessions that ended (signed out or expired) over 30 days ago."""
    from stepcoin.jobs import JobRuntime

    session: AsyncSession
    async with session_scope(JobRuntime.require_database()) as session:
        deleted = await prune_sessions(session)
    logger.info("console sessions pruned", extra={"deleted": deleted})
    return deleted

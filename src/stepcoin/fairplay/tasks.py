"""Background jobs of fair play."""

from __future__ import annotations

import logging

import procrastinate

from stepcoin.db import session_scope
from stepcoin.fairplay import links
from stepcoin.queue import JobRuntime

logger = logging.getLogger("stepcoin.fairplay.tasks")
blueprint = procrastinate.Blueprint()


@blueprint.periodic(cron="41 4 * * *", periodic_id="daily")
@blueprint.task(name="refresh_marks", queueing_lock="refresh_marks")
async def refresh_marks(timestamp: int) -> dict[str, int]:
    """Daily: recount the link marks the sync reads (stepcoin.fairplay.links.refresh_marks)."""
    async with session_scope(JobRuntime.require_database()) as session:
        return await links.refresh_marks(session)


@blueprint.periodic(cron="23 * * * *", periodic_id="hourly")
@blueprint.task(name="scan_series", queueing_lock="scan_series")
async def scan_series(timestamp: int) -> dict[str, int]:
    """Hourly: flag the walkers who sent the same daily steps as other walkers
    (stepcoin.fairplay.links.scan_series; the `same_series` rule flags their next days)."""
    async with session_scope(JobRuntime.require_database()) as session:
        found = await links.scan_series(session)
    if found["new_flags"]:
        logger.warning("accounts with the same step series", extra=found)
    return found

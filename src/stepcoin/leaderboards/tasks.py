"""Background jobs of leaderboards: the scheduled rebuild, and a rebuild on demand."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import procrastinate

from stepcoin.db import session_scope
from stepcoin.leaderboards import service
from stepcoin.queue import JobRuntime

logger = logging.getLogger("stepcoin.leaderboards.tasks")
blueprint = procrastinate.Blueprint()


@blueprint.periodic(cron="* * * * *", periodic_id="rebuild")
@blueprint.task(name="rebuild_if_due", queueing_lock="leaderboards_rebuild")
async def rebuild_if_due(timestamp: int) -> dict[str, Any] | None:
    """Every minute: rebuild the boards whose interval has passed, finalize closed periods,
    prune old snapshots."""
    stats = await service.rebuild_if_due(JobRuntime.require_database())
    if stats is not None:
        logger.info("leaderboards rebuilt", extra=asdict(stats))
    return asdict(stats) if stats else None


@blueprint.task(name="rebuild_now", queueing_lock="leaderboards_rebuild_now")
async def rebuild_now() -> dict[str, Any] | None:
    """Rebuild the open boards now, whatever their age."""
    async with session_scope(JobRuntime.require_database()) as session:
        stats = await service.rebuild_open(session)
    return asdict(stats) if stats else None

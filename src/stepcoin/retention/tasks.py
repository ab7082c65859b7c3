"""The retention schedule (docs/retention.md): the nightly pruning and the archive of old
step_records months, as jobs in the PostgreSQL queue."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import procrastinate

from stepcoin.backup import engine
from stepcoin.config import get_settings
from stepcoin.db import session_scope
from stepcoin.queue import JobRuntime
from stepcoin.retention import service
from stepcoin.runtime_settings.service import runtime_settings

logger = logging.getLogger("stepcoin.retention.tasks")
blueprint = procrastinate.Blueprint()


@blueprint.periodic(cron="40 4 * * *", periodic_id="daily")
@blueprint.task(name="prune", queueing_lock="retention_prune")
async def prune(timestamp: int) -> int:
    """Daily at 04:40 UTC: the decisions compaction, handled webhook deliveries, refresh tokens
    of finished sessions (a full pass of the decisions on the first of the month)."""
    now = datetime.now(UTC)
    reports = await service.prune(JobRuntime.require_database(), now=now, from_start=now.day == 1)
    return sum(r.deleted for r in reports)


@blueprint.periodic(cron="10 5 * * *", periodic_id="daily")
@blueprint.task(name="archive_months", queueing_lock="retention_archive_months")
async def archive_months(timestamp: int) -> int:
    """Daily at 05:10 UTC (after the 02:00 full backup): archive every step_records month past
    retention.step_records_months whose rows are all settled, when retention.archive_enabled."""
    database = JobRuntime.require_database()
    async with session_scope(database) as session:
        enabled = bool(await runtime_settings.get(session, "retention.archive_enabled"))
    if not enabled:
        return 0
    try:
        config = engine.for_settings(get_settings(), database.url)
    except engine.BackupError as exc:
        logger.warning("no month archived: %s", exc)
        return 0
    reports = await service.archive_due(database, config.open(), scratch=config.scratch_dir)
    return len(reports)

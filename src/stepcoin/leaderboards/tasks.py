"""Background jobs of leaderboards: the scheduled build and live refresh, a rebuild on demand."""

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


# 8 times a minute, 6-9 seconds apart (croniter's sixth field is the seconds): a sync shows in
# the boards within about 9 seconds plus the refresh's own time, ahead of other waiting jobs
# (the worker takes the highest priority first): a backlog of order submissions must not hold
# the boards still. At seconds 1, 7, 16, 23, 31, 37, 46 and 55: off the achievements batch's
# 3-second grid (at */15 every refresh started with a batch, and the half-load runs' slow
# requests overlapped both at once) and off the minute jobs' seconds (tests/test_jobs.py).
# Every 15 s until 2026-12-07: the same work in half as many, twice as long bursts (~760 ms of
# PostgreSQL at 270 syncs/s), which the half-load syncs' slowest requests sat in; half-load
# sync p99 25-67 -> 11-27 ms in four alternated pairs (BENCHMARKS.md run 22)
REFRESH_PRIORITY = 10


@blueprint.periodic(cron="* * * * * 1,7,16,23,31,37,46,55", periodic_id="rebuild")
@blueprint.task(
    name="rebuild_if_due", queueing_lock="leaderboards_rebuild", priority=REFRESH_PRIORITY
)
async def rebuild_if_due(timestamp: int) -> dict[str, Any] | None:
    """Build the boards that need a full build (new periods, final snapshots, the safety-net
    interval), prune old snapshots, then refresh the live boards from the change log."""
    database = JobRuntime.require_database()
    stats = await service.rebuild_if_due(database)
    if stats is not None:
        logger.info("leaderboards rebuilt", extra=asdict(stats))
    refreshed = await service.refresh_live(database)
    if refreshed.changes:
        logger.info("leaderboards refreshed", extra=asdict(refreshed))
    return {"rebuilt": asdict(stats) if stats else None, "refreshed": asdict(refreshed)}


@blueprint.task(name="rebuild_now", queueing_lock="leaderboards_rebuild_now")
async def rebuild_now() -> dict[str, Any] | None:
    """Rebuild the open boards now, whatever their age."""
    async with session_scope(JobRuntime.require_database()) as session:
        stats = await service.rebuild_open(session)
    return asdict(stats) if stats else None


@blueprint.periodic(cron="* * * * * 14", periodic_id="prizes")
@blueprint.task(name="pay_prizes", queueing_lock=service.PAY_PRIZES_LOCK)
async def pay_prizes(timestamp: int) -> dict[str, int]:
    """Pay the prizes of final boards whose walkers have no day in review (prizes.py): queued
    by the final build, and every minute for the walkers whose review settled since."""
    paid, coins = await service.pay_prizes(JobRuntime.require_database())
    if paid:
        logger.info("leaderboard prizes paid", extra={"prizes": paid, "coins": coins})
    return {"prizes": paid, "coins": coins}

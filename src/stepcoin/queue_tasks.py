"""Housekeeping of the job queue itself, and of the core's rate-limit buckets."""

from __future__ import annotations

import logging

import procrastinate

from stepcoin import ratelimit
from stepcoin.config import get_settings
from stepcoin.queue import JOBS_STATISTICS_STALE, JobRuntime

logger = logging.getLogger("stepcoin.queue")
blueprint = procrastinate.Blueprint()


@blueprint.periodic(cron="* * * * * 25", periodic_id="stalled")
@blueprint.task(name="retry_stalled_jobs", queueing_lock="retry_stalled_jobs", pass_context=True)
async def retry_stalled_jobs(context: procrastinate.JobContext, timestamp: int) -> int:
    """A worker that died mid-job (killed, crashed) leaves its job 'doing' forever; once its
    heartbeat is older than a minute, the job goes back to the queue. Every task is written to
    be safe to run again (Shopify orders are found by tag before being created)."""
    manager = context.app.job_manager
    seconds = get_settings().job_stalled_seconds
    stalled = [
        job
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=seconds)
        if job.id != context.job.id
    ]
    retried = 0
    for job in stalled:
        logger.warning("retrying a stalled job", extra={"job_id": job.id, "task": job.task_name})
        try:
            await manager.retry_job(job)
            retried += 1
        except procrastinate.exceptions.UniqueViolation:
            # a job of its queueing lock waits already (e.g. the next periodic run): that one
            # does the work; the stalled one ends, instead of failing every later retry here
            logger.warning(
                "a stalled job's queueing lock is taken by a waiting job; ending it",
                extra={"job_id": job.id, "task": job.task_name},
            )
            await manager.finish_job(job, status=procrastinate.jobs.Status.FAILED, delete_job=False)
    return retried


# ahead of a backlog of other jobs: fresh statistics are what keeps the fetch cheap at depth
STATISTICS_PRIORITY = 10


@blueprint.periodic(cron="* * * * * 28", periodic_id="statistics")
@blueprint.task(
    name="refresh_statistics",
    queueing_lock="refresh_queue_statistics",
    priority=STATISTICS_PRIORITY,
    pass_context=True,
)
async def refresh_statistics(context: procrastinate.JobContext, timestamp: int) -> bool:
    """ANALYZE procrastinate_jobs when its statistics are stale (queue.JOBS_STATISTICS_STALE):
    the fetch then walks the waiting jobs in priority order and stops at the first it may
    take, instead of checking them all. Autovacuum does the same where it runs; this also
    covers a server without it and the first minutes of a burst. ~ms on a queue of 10k jobs."""
    connector = context.app.connector
    row = await connector.execute_query_one_async(JOBS_STATISTICS_STALE)
    if not row["stale"]:
        return False
    await connector.execute_query_async("ANALYZE procrastinate_jobs")
    return True


SUCCEEDED_KEPT_HOURS = 72
FAILED_KEPT_HOURS = 24 * 30


@blueprint.periodic(cron="23 4 * * *", periodic_id="prune")
@blueprint.task(name="prune_finished_jobs", queueing_lock="prune_finished_jobs", pass_context=True)
async def prune_finished_jobs(context: procrastinate.JobContext, timestamp: int) -> None:
    """Per-minute periodic jobs add ~5,000 rows a day: succeeded jobs go after three days;
    failed ones stay a month, for whoever investigates them."""
    manager = context.app.job_manager
    await manager.delete_old_jobs(nb_hours=SUCCEEDED_KEPT_HOURS)
    await manager.delete_old_jobs(
        nb_hours=FAILED_KEPT_HOURS, include_failed=True, include_cancelled=True
    )


@blueprint.periodic(cron="*/10 * * * * 41", periodic_id="rate_limits")
@blueprint.task(name="prune_rate_limits", queueing_lock="prune_rate_limits")
async def prune_rate_limits(timestamp: int) -> int:
    """Delete the rate-limit buckets that are full again (the same as absent), so keys of
    passing addresses and accounts do not pile up (stepcoin.ratelimit)."""
    pool = await JobRuntime.require_database().fast_pool()
    async with pool.acquire() as driver:
        return await ratelimit.prune(driver)

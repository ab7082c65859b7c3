"""Housekeeping of the job queue itself."""

from __future__ import annotations

import logging

import procrastinate

logger = logging.getLogger("stepcoin.queue")
blueprint = procrastinate.Blueprint()


@blueprint.periodic(cron="* * * * *", periodic_id="stalled")
@blueprint.task(name="retry_stalled_jobs", queueing_lock="retry_stalled_jobs", pass_context=True)
async def retry_stalled_jobs(context: procrastinate.JobContext, timestamp: int) -> int:
    """A worker that died mid-job (killed, crashed) leaves its job 'doing' forever; once its
    heartbeat is older than a minute, the job goes back to the queue. Every task is written to
    be safe to run again (Shopify orders are found by tag before being created)."""
    from stepcoin.config import get_settings

    manager = context.app.job_manager
    seconds = get_settings().job_stalled_seconds
    stalled = [
        job
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=seconds)
        if job.id != context.job.id
    ]
    for job in stalled:
        logger.warning("retrying a stalled job", extra={"job_id": job.id, "task": job.task_name})
        await manager.retry_job(job)
    return len(stalled)

"""Background jobs of campaigns: a campaign's run and a broadcast's, chunk after chunk."""

from __future__ import annotations

import uuid
from typing import Any

import procrastinate

from stepcoin.campaigns import broadcasts, service
from stepcoin.queue import JobRuntime

blueprint = procrastinate.Blueprint()
RETRY = procrastinate.RetryStrategy(max_attempts=10, exponential_wait=2)


@blueprint.task(name="run", retry=RETRY)
async def run(campaign_id: str) -> dict[str, Any]:
    """Pay a running campaign's segment (service.run): deferred by POST .../run with the lock
    `campaign:<id>`; safe to run again (it resumes after the last committed chunk)."""
    return await service.run(JobRuntime.require_database(), uuid.UUID(campaign_id))


@blueprint.task(name="broadcast", retry=RETRY)
async def broadcast(broadcast_id: str) -> dict[str, Any]:
    """Write a running broadcast's notifications, their pushes queued (broadcasts.run):
    deferred by POST .../run with the lock `broadcast:<id>`; safe to run again."""
    return await broadcasts.run(JobRuntime.require_database(), uuid.UUID(broadcast_id))

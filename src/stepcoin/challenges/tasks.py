"""Background jobs of challenges: the lifecycle tick every minute."""

from __future__ import annotations

import procrastinate

from stepcoin.challenges import service
from stepcoin.queue import JobRuntime

blueprint = procrastinate.Blueprint()


@blueprint.periodic(cron="* * * * * 35", periodic_id="tick")
@blueprint.task(name="tick", queueing_lock="challenges_tick")
async def tick(timestamp: int | None = None) -> dict[str, int]:
    """Every minute (and on demand): start, end, re-score, settle and pay the open challenges,
    each step and payout chunk in its own transaction (service.tick); safe to run twice at
    once (each challenge is locked, a busy one skipped) and after a kill."""
    return await service.tick(JobRuntime.require_database())

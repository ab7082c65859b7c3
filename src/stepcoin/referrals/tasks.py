"""Background jobs of referrals: settling open referrals every minute."""

from __future__ import annotations

import procrastinate

from stepcoin.queue import JobRuntime
from stepcoin.referrals import service

blueprint = procrastinate.Blueprint()


@blueprint.periodic(cron="* * * * * 22", periodic_id="settle")
@blueprint.task(name="settle", queueing_lock="referrals_settle")
async def settle(timestamp: int) -> dict[str, int]:
    """Every minute: qualify, expire, review or pay open referrals, batch by batch, each batch
    in its own transaction (service.settle); safe to run twice at once (rows are locked)."""
    return await service.settle(JobRuntime.require_database())

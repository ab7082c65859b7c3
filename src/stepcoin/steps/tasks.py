"""Background jobs of the steps domain."""

from __future__ import annotations

import logging

import procrastinate
from sqlalchemy import text

from stepcoin.db import session_scope
from stepcoin.queue import JobRuntime
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.steps import review, streaks

logger = logging.getLogger("stepcoin.steps.tasks")
blueprint = procrastinate.Blueprint()


async def ensure_partitions(session, months_ahead: int | None = None) -> int:  # type: ignore[no-untyped-def]
    """Create the monthly step_records partitions from the oldest day the sync window admits
    up to `months_ahead` months from now; rows the default partition holds for such a month
    move into it (stepcoin_ensure_step_partitions v2)."""
    if months_ahead is None:
        months_ahead = int(await runtime_settings.get(session, "steps.partition_months_ahead"))
    window = int(await runtime_settings.get(session, "anticheat.sync_window_days"))
    created = (
        await session.execute(
            text(
                "SELECT stepcoin_ensure_step_partitions("
                "current_date - CAST(:window AS integer) - 1, :ahead)"
            ),
            {"window": window, "ahead": months_ahead},
        )
    ).scalar_one()
    return int(created)


@blueprint.periodic(cron="17 * * * *", periodic_id="hourly")
@blueprint.task(
    name="ensure_step_partitions",
    queueing_lock="ensure_step_partitions",
    retry=procrastinate.RetryStrategy(max_attempts=5, exponential_wait=5),
)
async def ensure_step_partitions(timestamp: int) -> int:
    """Keeps the monthly partitions of step_records ready for every day a sync may write: the
    sync window back, `steps.partition_months_ahead` ahead (hourly, and at worker start; a
    raised window reaches its months within the hour, and what a sync wrote to the default
    partition meanwhile moves into them)."""
    async with session_scope(JobRuntime.require_database()) as session:
        created = await ensure_partitions(session)
    logger.info("step partitions ensured", extra={"partitions_created": created})
    return created


@blueprint.periodic(cron="* * * * * 8", periodic_id="budget_holds")
@blueprint.task(name="release_budget_holds", queueing_lock="release_budget_holds")
async def release_budget_holds(timestamp: int) -> int:
    """Every minute: pay the step coins a steps issuance budget held, oldest first, as far as
    the budget has room now (a new period, a higher cap, a removed budget), and log the steps
    budgets' alerts (stepcoin.steps.review.release_budget_holds)."""
    paid = await review.release_budget_holds(JobRuntime.require_database())
    if paid:
        logger.info("held step coins paid", extra={"released": paid})
    return paid


@blueprint.periodic(cron="*/15 * * * * 44", periodic_id="streak_reminders")
@blueprint.task(name="streak_reminders", queueing_lock="streak_reminders")
async def streak_reminders(timestamp: int) -> int:
    """Every 15 minutes: the streak-at-risk reminders of the walkers near their midnight."""
    return await streaks.send_streak_reminders(JobRuntime.require_database())

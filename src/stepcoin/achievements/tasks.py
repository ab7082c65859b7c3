"""Background jobs of achievements: the dirty users in batches (every few seconds), one user
(after an order), a new achievement's backfill in batches, the walkers' closed history
summarised (every 5 minutes)."""

from __future__ import annotations

import logging
import uuid

import procrastinate

from stepcoin.achievements import history, service
from stepcoin.db import Database, session_scope
from stepcoin.queue import ACHIEVEMENTS_BACKFILL, JobRuntime, defer_in_transaction

logger = logging.getLogger("stepcoin.achievements.tasks")
blueprint = procrastinate.Blueprint()
RETRY = procrastinate.RetryStrategy(max_attempts=8, exponential_wait=2)


def _database() -> Database:
    return JobRuntime.require_database()


@blueprint.task(name="evaluate_user", retry=RETRY)
async def evaluate_user(user_id: str) -> list[str]:
    """After an approval or a redemption: unlock what the user now meets, pay each reward once.

    Enqueued with the queueing lock `queue.evaluation_lock(user_id)`, so at most one waits per
    user; running it twice, or concurrently, is harmless anyway.
    """
    async with session_scope(_database()) as session:
        unlocked = await service.evaluate_user(session, uuid.UUID(user_id))
    return [u.code for u in unlocked]


# How many batches one run may take before it leaves the rest to the next tick (the worker's
# other jobs get their turn): 20 x 1,000 users.
DIRTY_MAX_BATCHES = 20
# Ahead of other waiting jobs (the worker takes the highest priority first): a backlog of
# other jobs must not delay the achievements of every walker.
DIRTY_PRIORITY = 10


@blueprint.periodic(cron="* * * * * */3", periodic_id="dirty")
@blueprint.task(
    name="evaluate_dirty", queueing_lock="achievements_evaluate_dirty", priority=DIRTY_PRIORITY
)
async def evaluate_dirty(timestamp: int) -> dict[str, int]:
    """Every 3 s: evaluate the users the step loop marked dirty (stepcoin_apply_sync v4), in
    batches of service.DIRTY_BATCH_SIZE, until none are left (at most DIRTY_MAX_BATCHES).

    Replaces one evaluation job per paid sync (issue 13): an achievement shows within a few
    seconds of the sync. One run waits at a time (its queueing lock); two running at once
    (two workers) claim different marks.
    """
    return await run_dirty_batches()


async def run_dirty_batches(
    *, batch_size: int = service.DIRTY_BATCH_SIZE, max_batches: int = DIRTY_MAX_BATCHES
) -> dict[str, int]:
    users = unlocked = 0
    for _ in range(max_batches):
        batch = await service.evaluate_dirty(_database(), batch_size=batch_size)
        users += batch.users
        unlocked += len(batch.unlocked)
        if batch.users < batch_size:
            break
    if users:
        logger.info(
            "achievements: dirty users evaluated", extra={"users": users, "unlocked": unlocked}
        )
    return {"users": users, "unlocked": unlocked}


@blueprint.task(name="backfill", retry=RETRY)
async def backfill(achievement_id: int, after_user: str | None = None) -> dict[str, object]:
    """Evaluate a new (or changed) achievement for existing users, one batch per job.

    Each batch is its own short transaction, which also queues the next batch (keyset by user
    id), so no lock is held for long and a crash resumes from the last committed batch.
    """
    after = uuid.UUID(after_user) if after_user else None
    async with session_scope(_database()) as session:
        batch = await service.backfill_batch(
            session, achievement_id, after_user=after, batch_size=service.BACKFILL_BATCH_SIZE
        )
        if batch.next_after is not None:
            await defer_in_transaction(
                session,
                ACHIEVEMENTS_BACKFILL,
                {"achievement_id": achievement_id, "after_user": str(batch.next_after)},
                lock=f"achievement-backfill:{achievement_id}",
            )
    logger.info(
        "achievement backfill batch",
        extra={
            "achievement_id": achievement_id,
            "users_checked": batch.users_checked,
            "unlocked": batch.unlocked,
            "done": batch.next_after is None,
        },
    )
    return {
        "users_checked": batch.users_checked,
        "unlocked": batch.unlocked,
        "next_after": str(batch.next_after) if batch.next_after else None,
    }


# How many batches of history.BATCH_SIZE walkers one run may summarise before it leaves the
# rest to the next run (every 5 minutes: 600,000 walkers an hour at most).
HISTORY_MAX_BATCHES = 50


# The full search for walkers to summarise looks at every walker (repository._CANDIDATES_ALL): it
# runs in the first run of each hour, in a worker's first run, and after a full search that
# stopped at HISTORY_MAX_BATCHES until one reaches the last walker; the other runs search only
# the summaries that were dropped or fell behind (by index: nothing to read at rest).
FULL_SEARCH_EVERY_S = 3600


class _Searches:
    """Whether this worker process owes a full search (it has not finished one yet)."""

    full_pending = True


def full_search_due(timestamp: int) -> bool:
    """Whether the run scheduled at `timestamp` (unix seconds; 0: deferred by hand) searches
    every walker."""
    return _Searches.full_pending or timestamp <= 0 or timestamp % FULL_SEARCH_EVERY_S < 5 * 60


@blueprint.periodic(cron="*/5 * * * * 53", periodic_id="history")
@blueprint.task(name="summarise_history", queueing_lock="achievements_summarise_history")
async def summarise_history(timestamp: int) -> dict[str, int]:
    """Every 5 minutes: summarise the closed history of the walkers whose summary is missing,
    dropped or a week behind (`history.build`), so the achievements read and batch fold only
    the open days. Short transactions of 1,000 walkers; a walker changed meanwhile is left for
    the next run (its generation moved). Walkers without a summary yet and summaries without
    a new streak threshold are searched for hourly (full_search_due)."""
    full = full_search_due(timestamp)
    built = await history.build(_database(), max_batches=HISTORY_MAX_BATCHES, full=full)
    if full:
        _Searches.full_pending = not built.complete
    return {"walkers": built.walkers, "skipped": built.skipped, "full": int(full)}

"""The job queue, low level: task names, the process's job runtime, defer inside a transaction.

Domains' tasks.py and services import this module only; it imports no domain. The app-level
`stepcoin.worker` gathers every domain's tasks into the one job app and runs the worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
import procrastinate
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.db import Database

# Task names ("<namespace>:<task>") that code defers by name. The worker registers each
# domain's blueprint under its namespace; tests/test_jobs.py checks every name here is a task.
STEPS_ENSURE_PARTITIONS: Final = "steps:ensure_step_partitions"
QUEUE_RETRY_STALLED: Final = "queue:retry_stalled_jobs"
QUEUE_REFRESH_STATISTICS: Final = "queue:refresh_statistics"
SHOP_SYNC_CATALOGUE: Final = "shop:sync_catalogue"
SHOP_SYNC_CATALOGUE_IF_DUE: Final = "shop:sync_catalogue_if_due"
SHOP_SUBMIT_ORDER: Final = "shop:submit_order"
SHOP_SUBMIT_PENDING: Final = "shop:submit_pending"
SHOP_CANCEL_IN_SHOPIFY: Final = "shop:cancel_in_shopify"
SHOP_HANDLE_WEBHOOK: Final = "shop:handle_webhook"
ACHIEVEMENTS_EVALUATE_USER: Final = "achievements:evaluate_user"
ACHIEVEMENTS_BACKFILL: Final = "achievements:backfill"
AUTH_REVOKE_APPLE_TOKEN: Final = "auth:revoke_apple_token"
MAIL_SEND: Final = "mail:send"
AUTH_PASSWORD_RESET_MAIL: Final = "auth:mail_password_reset"
MAIL_SWEEP: Final = "mail:sweep"
CAMPAIGNS_RUN: Final = "campaigns:run"
CAMPAIGNS_BROADCAST: Final = "campaigns:broadcast"
LEADERBOARDS_PAY_PRIZES: Final = "leaderboards:pay_prizes"
REFERRALS_SETTLE: Final = "referrals:settle"
CHALLENGES_TICK: Final = "challenges:tick"
NOTIFY_SEND: Final = "notify:send"
NOTIFY_SEND_BATCH: Final = "notify:send_batch"
STEPS_STREAK_REMINDERS: Final = "steps:streak_reminders"

TASK_NAMES: Final = (
    STEPS_ENSURE_PARTITIONS,
    QUEUE_RETRY_STALLED,
    QUEUE_REFRESH_STATISTICS,
    SHOP_SYNC_CATALOGUE,
    SHOP_SYNC_CATALOGUE_IF_DUE,
    SHOP_SUBMIT_ORDER,
    SHOP_SUBMIT_PENDING,
    SHOP_CANCEL_IN_SHOPIFY,
    SHOP_HANDLE_WEBHOOK,
    ACHIEVEMENTS_EVALUATE_USER,
    ACHIEVEMENTS_BACKFILL,
    AUTH_REVOKE_APPLE_TOKEN,
    MAIL_SEND,
    MAIL_SWEEP,
    AUTH_PASSWORD_RESET_MAIL,
    CAMPAIGNS_RUN,
    CAMPAIGNS_BROADCAST,
    LEADERBOARDS_PAY_PRIZES,
    REFERRALS_SETTLE,
    CHALLENGES_TICK,
    NOTIFY_SEND,
    NOTIFY_SEND_BATCH,
    STEPS_STREAK_REMINDERS,
)


# procrastinate's fetch is planned from the statistics of procrastinate_jobs: taken while the
# queue was nearly empty, they make it check every waiting job (issue 13). True when the table
# changed by more than 500 rows + 20% since its last ANALYZE (autovacuum's own trigger is
# 50 + 10%, but only where autovacuum runs, and at most once per naptime).
JOBS_STATISTICS_STALE: Final = (
    "SELECT coalesce(bool_or(s.n_mod_since_analyze > 500 + 0.2 * greatest(c.reltuples, 0)), "
    "false) AS stale FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
    "WHERE s.relid = 'procrastinate_jobs'::regclass"
)


def evaluation_lock(user_id: object) -> str:
    """The queueing lock of a user's achievement evaluation: at most one waits per user."""
    return f"achievements:{user_id}"


class JobRuntime:
    """What running tasks need: the database of this process (set when the app opens)."""

    database: Database | None = None

    @classmethod
    def require_database(cls) -> Database:
        if cls.database is None:
            raise RuntimeError("the job runtime has no database; open it with open_jobs()")
        return cls.database


class ReopenableConnector(procrastinate.PsycopgConnector):
    """procrastinate keeps a closed external pool and refuses to take a new one; forgetting it
    on close lets the one job app of the process be opened again (tests, app restarts)."""

    async def close_async(self) -> None:
        await super().close_async()
        self._async_pool = None
        self._pool_externally_set = False


_DEFER = text(
    "SELECT stepcoin_defer_job(:queue, :task, :lock, :queueing_lock, CAST(:args AS jsonb))"
)


async def defer_in_transaction(
    session: AsyncSession,
    task_name: str,
    args: Mapping[str, Any],
    *,
    lock: str | None = None,
    queueing_lock: str | None = None,
    queue: str = "default",
) -> int | None:
    """Enqueue a job inside the caller's transaction (the transactional outbox).

    procrastinate's defer is a SQL function, so calling it on the request's own connection
    makes the job exist exactly when the change that needs it commits: no lost job after a
    crash, no job for a change that rolled back. With a queueing lock, a job of that lock
    already waiting makes this a no-op (None) instead of an error that would end the
    transaction (stepcoin_defer_job catches it, as the step loop's SQL does).
    """
    job_id = (
        await session.execute(
            _DEFER,
            {
                "queue": queue,
                "task": task_name,
                "lock": lock,
                "queueing_lock": queueing_lock,
                "args": orjson.dumps(args).decode(),
            },
        )
    ).scalar_one()
    return None if job_id is None else int(job_id)


_DEFER_MANY = text(
    "SELECT coalesce(procrastinate_defer_jobs_v1(array_agg(ROW(:queue, :task, 0, j.lock, NULL, "
    "j.args, NULL)::procrastinate_job_to_defer_v1 ORDER BY j.n)), '{}') "
    "FROM unnest(CAST(:locks AS text[]), CAST(:args AS jsonb[])) "
    "WITH ORDINALITY AS j(lock, args, n)"
)


async def defer_many_in_transaction(
    session: AsyncSession,
    task_name: str,
    jobs: Sequence[tuple[Mapping[str, Any], str | None]],
    *,
    queue: str = "default",
) -> list[int]:
    """Enqueue many jobs of one task, each (args, lock), in one statement inside the caller's
    transaction (no queueing locks: for jobs about rows that this transaction creates)."""
    if not jobs:
        return []
    ids = (
        await session.execute(
            _DEFER_MANY,
            {
                "queue": queue,
                "task": task_name,
                "locks": [lock for _, lock in jobs],
                "args": [orjson.dumps(args).decode() for args, _ in jobs],
            },
        )
    ).scalar_one()
    return [int(i) for i in ids]

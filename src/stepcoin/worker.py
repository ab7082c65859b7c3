"""The job worker, app level: the one job app with every domain's tasks, and running it.

The queue itself (procrastinate, in PostgreSQL: no second server) is `stepcoin.queue`, which
imports no domain; each domain's tasks.py holds a procrastinate Blueprint with its tasks and
their periodic schedule, and this module gathers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator

import procrastinate
from psycopg_pool import AsyncConnectionPool

from stepcoin.achievements.tasks import blueprint as achievements_tasks
from stepcoin.auth.tasks import blueprint as auth_tasks
from stepcoin.backup.tasks import blueprint as backup_tasks
from stepcoin.campaigns.tasks import blueprint as campaigns_tasks
from stepcoin.challenges.tasks import blueprint as challenges_tasks
from stepcoin.config import get_settings
from stepcoin.console.tasks import blueprint as console_tasks
from stepcoin.db import Database, libpq_url, psycopg_connect_kwargs
from stepcoin.fairplay.tasks import blueprint as fairplay_tasks
from stepcoin.heap import freeze_startup_heap, thaw_heap
from stepcoin.leaderboards.tasks import blueprint as leaderboards_tasks
from stepcoin.mail.tasks import blueprint as mail_tasks
from stepcoin.notify import senders as notify_senders
from stepcoin.notify.tasks import blueprint as notify_tasks
from stepcoin.queue import (
    MAIL_SWEEP,
    QUEUE_REFRESH_STATISTICS,
    QUEUE_RETRY_STALLED,
    SHOP_SYNC_CATALOGUE_IF_DUE,
    STEPS_ENSURE_PARTITIONS,
    JobRuntime,
    ReopenableConnector,
)
from stepcoin.queue_tasks import blueprint as queue_tasks
from stepcoin.referrals.tasks import blueprint as referrals_tasks
from stepcoin.retention.tasks import blueprint as retention_tasks
from stepcoin.shop.tasks import blueprint as shop_tasks
from stepcoin.steps.tasks import blueprint as steps_tasks
from stepcoin.wallet.tasks import blueprint as wallet_tasks

logger = logging.getLogger("stepcoin.worker")

JOBS_APPLICATION_NAME = "stepcoin-jobs"
"""The application_name of the job queue's own sessions (the tasks' queries use the app's)."""


@functools.cache
def build_job_app() -> procrastinate.App:
    """The one job app of the process (procrastinate renames blueprint tasks when they join an
    app, so the blueprints can join only once)."""
    app = procrastinate.App(connector=ReopenableConnector())
    app.add_tasks_from(steps_tasks, namespace="steps")
    app.add_tasks_from(wallet_tasks, namespace="wallet")
    app.add_tasks_from(shop_tasks, namespace="shop")
    app.add_tasks_from(queue_tasks, namespace="queue")
    app.add_tasks_from(achievements_tasks, namespace="achievements")
    app.add_tasks_from(leaderboards_tasks, namespace="leaderboards")
    app.add_tasks_from(backup_tasks, namespace="backup")
    app.add_tasks_from(console_tasks, namespace="console")
    app.add_tasks_from(mail_tasks, namespace="mail")
    app.add_tasks_from(auth_tasks, namespace="auth")
    app.add_tasks_from(campaigns_tasks, namespace="campaigns")
    app.add_tasks_from(referrals_tasks, namespace="referrals")
    app.add_tasks_from(challenges_tasks, namespace="challenges")
    app.add_tasks_from(fairplay_tasks, namespace="fairplay")
    app.add_tasks_from(notify_tasks, namespace="notify")
    app.add_tasks_from(retention_tasks, namespace="retention")
    return app


@contextlib.asynccontextmanager
async def open_jobs(database: Database, *, pool_size: int = 4) -> AsyncIterator[procrastinate.App]:
    """An opened job app on its own small psycopg pool, bound to this process's database."""
    JobRuntime.database = database
    # operations: behind PgBouncer, no prepared statements; a direct URL (if any) for LISTEN.
    url = get_settings().database_direct_url or database.url
    kwargs = psycopg_connect_kwargs(database.pgbouncer and url == database.url)
    kwargs["application_name"] = JOBS_APPLICATION_NAME  # the queue's sessions in pg_stat_activity
    pool = AsyncConnectionPool(
        libpq_url(url), min_size=1, max_size=pool_size, open=False, kwargs=kwargs
    )
    await pool.open(wait=True)
    app = build_job_app()
    try:
        async with app.open_async(pool):
            yield app
    finally:
        await pool.close()
        await notify_senders.close()  # the push services' HTTP connections


async def run_worker(app: procrastinate.App, *, install_signal_handlers: bool) -> None:
    """Run queued and periodic jobs until cancelled.

    At start it ensures the step partitions and puts back jobs that a dead worker left half
    done (their tasks are safe to run again), instead of waiting for the schedule.
    """
    settings = get_settings()
    for task in (
        STEPS_ENSURE_PARTITIONS,
        QUEUE_RETRY_STALLED,
        QUEUE_REFRESH_STATISTICS,  # a backlog left by the last run is fetched with fresh ones
        SHOP_SYNC_CATALOGUE_IF_DUE,
        MAIL_SWEEP,  # mails left unsent by the last run
    ):
        with contextlib.suppress(procrastinate.exceptions.AlreadyEnqueued):
            await app.configure_task(task).defer_async(timestamp=0)
    # operations: LISTEN/NOTIFY needs a session; through PgBouncer without a direct URL, poll.
    polling = settings.database_pgbouncer and not settings.database_direct_url
    freeze_startup_heap()  # a full collection then walks only what the jobs made
    try:
        await app.run_worker_async(
            concurrency=settings.job_concurrency,
            listen_notify=not polling,
            fetch_job_polling_interval=settings.job_poll_seconds if polling else 5.0,
            install_signal_handlers=install_signal_handlers,
            shutdown_graceful_timeout=10,
            update_heartbeat_interval=settings.job_heartbeat_seconds,
            stalled_worker_timeout=settings.job_stalled_seconds,
        )
    finally:
        thaw_heap()


RESTART_FIRST_WAIT_S = 1.0
"""The wait before the job worker starts again after it stopped by itself."""
RESTART_MAX_WAIT_S = 30.0
"""The longest wait between two starts while it keeps stopping (the wait doubles up to this)."""
RESTART_SETTLED_S = 60.0
"""A worker that ran this long before it stopped waits only RESTART_FIRST_WAIT_S again."""


async def supervise_worker(
    app: procrastinate.App,
    *,
    first_wait: float = RESTART_FIRST_WAIT_S,
    max_wait: float = RESTART_MAX_WAIT_S,
) -> None:
    """Run the job worker until cancelled, and start it again whenever it stops by itself.

    procrastinate stops its worker when its listener, heartbeat or periodic deferrer loses the
    database (PostgreSQL restarted or failed over, a backup restored, an operator's
    pg_terminate_backend): `stepcoin serve` then went on answering with no worker behind it
    (no achievements, boards, mails or orders to Shopify until someone restarted it), and
    `stepcoin worker` exited. Nothing else stops it (its own signal handlers are off), so a
    stop that is not a cancellation is a failure: logged as an error and started again after
    `first_wait`, doubling up to `max_wait` while it keeps failing (the database still down).
    A job it was running is put back by queue:retry_stalled_jobs, as after any dead worker.
    Cancelling it (serve's shutdown, the worker command's SIGTERM or Ctrl-C) stops it as
    procrastinate's own signal handling did: running jobs get their graceful timeout.
    """
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    wait = first_wait
    while True:
        started = loop.time()
        error: Exception | None = None
        try:
            await run_worker(app, install_signal_handlers=False)
        except Exception as exc:  # CancelledError is a BaseException: it ends the loop
            error = exc
        if me is not None and me.cancelling():
            # asked to stop while the worker was failing: its shutdown raised the database's
            # error instead of the cancellation (procrastinate awaits its loop after a cancel)
            raise asyncio.CancelledError
        if loop.time() - started >= RESTART_SETTLED_S:
            wait = first_wait
        logger.error(
            "the job worker stopped (%s); starting it again in %.0f s",
            repr(error) if error is not None else "it stopped by itself: the database went away?",
            wait,
            exc_info=error,
            extra={"action": "worker_restart", "wait_s": wait},
        )
        await asyncio.sleep(wait)
        wait = min(wait * 2, max_wait)


def start_worker_task(app: procrastinate.App) -> asyncio.Task[None]:
    return asyncio.create_task(supervise_worker(app), name="job-worker")

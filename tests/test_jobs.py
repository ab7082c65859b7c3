"""The PostgreSQL job queue: tasks are registered, periodic, and really run by a worker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import psycopg
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import queue
from stepcoin.worker import build_job_app, open_jobs, run_worker


def test_tasks_and_schedule_are_registered():
    app = build_job_app()
    assert "steps:ensure_step_partitions" in app.tasks
    assert "wallet:check_ledger" in app.tasks
    periodic = {name for name, _ in app.periodic_registry.periodic_tasks}
    assert {"steps:ensure_step_partitions", "wallet:check_ledger"} <= periodic


def test_every_task_name_constant_names_a_registered_task():
    registered = set(build_job_app().tasks)
    assert set(queue.TASK_NAMES) <= registered, set(queue.TASK_NAMES) - registered


async def test_defer_with_a_queueing_lock_is_a_no_op_while_one_waits(engine):
    user = uuid.uuid4()
    async with AsyncSession(engine) as session, session.begin():
        first = await queue.defer_in_transaction(
            session,
            queue.ACHIEVEMENTS_EVALUATE_USER,
            {"user_id": str(user)},
            queueing_lock=queue.evaluation_lock(user),
        )
        second = await queue.defer_in_transaction(
            session,
            queue.ACHIEVEMENTS_EVALUATE_USER,
            {"user_id": str(user)},
            queueing_lock=queue.evaluation_lock(user),
        )
        unlocked = await queue.defer_in_transaction(
            session, queue.ACHIEVEMENTS_EVALUATE_USER, {"user_id": str(user)}
        )
    assert first is not None
    assert second is None  # the transaction went on: nothing was raised
    assert unlocked is not None and unlocked != first


async def test_worker_runs_the_partition_job(app, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        far = conn.execute(
            "SELECT to_char(current_date + interval '3 months', 'YYYYMM')"
        ).fetchone()[0]
        conn.execute(f"ALTER TABLE step_records DETACH PARTITION step_records_p{far}")
        conn.execute(f"DROP TABLE step_records_p{far}")
    async with open_jobs(app.state.database) as jobs:
        job_id = await jobs.configure_task("steps:ensure_step_partitions").defer_async(timestamp=0)
        await jobs.run_worker_async(wait=False, install_signal_handlers=False)
    with psycopg.connect(database_url) as conn:
        status = conn.execute(
            "SELECT status FROM procrastinate_jobs WHERE id = %s", (job_id,)
        ).fetchone()[0]
        exists = conn.execute("SELECT to_regclass(%s)", (f"step_records_p{far}",)).fetchone()[0]
    assert status == "succeeded"
    assert exists is not None


async def test_finished_jobs_are_pruned_after_their_time(app, database_url):
    async with open_jobs(app.state.database) as jobs:
        old = await jobs.configure_task("wallet:check_ledger").defer_async(timestamp=1)
        await jobs.run_worker_async(wait=False, install_signal_handlers=False, queues=["default"])
        fresh = await jobs.configure_task("wallet:check_ledger").defer_async(timestamp=3)
        await jobs.run_worker_async(wait=False, install_signal_handlers=False, queues=["default"])
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE procrastinate_events SET at = now() - interval '5 days' WHERE job_id = %s",
                (old,),
            )
        await jobs.configure_task("queue:prune_finished_jobs").defer_async(timestamp=2)
        await jobs.run_worker_async(wait=False, install_signal_handlers=False, queues=["default"])
    with psycopg.connect(database_url) as conn:
        ids = {r[0] for r in conn.execute("SELECT id FROM procrastinate_jobs")}
    assert old not in ids  # finished five days ago: pruned
    assert fresh in ids  # finished just now: kept


async def test_a_long_job_does_not_hold_the_others_behind_it(app):
    """The worker runs STEPCOIN_JOB_CONCURRENCY jobs at once (issue 13: one Shopify sweep of a
    few thousand orders held the boards' refresh and the achievements batch for minutes)."""
    started, release, short_done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    async with open_jobs(app.state.database) as jobs:

        @jobs.task(name="test:long", queue="shop")
        async def long_job() -> None:
            started.set()
            await release.wait()

        @jobs.task(name="test:short", priority=10)
        async def short_job() -> None:
            short_done.set()

        await long_job.defer_async()
        worker = asyncio.create_task(run_worker(jobs, install_signal_handlers=False))
        try:
            await asyncio.wait_for(started.wait(), 20)
            await short_job.defer_async()
            await asyncio.wait_for(short_done.wait(), 20)  # while the long one still runs
            assert not release.is_set()
        finally:
            release.set()
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker


def test_the_minute_jobs_start_each_at_its_own_second():
    """Issue 13: ten periodic jobs started at second 0 of every minute, together with the
    achievements batch (every 3 s) and the boards' refresh (then every 15 s); on the
    benchmark's two cores the slow requests at half load lined up with that burst
    (bench/stalls.py). Every job that runs every few minutes or more often starts at a second
    of its own, off the 3-second grid of the achievements batch; so does the boards' refresh
    (8 times a minute; at */15 each one had started with a batch)."""
    from croniter import croniter

    app = build_job_app()
    seconds: dict[int, str] = {}
    for periodic in app.periodic_registry.periodic_tasks.values():
        fields = periodic.cron.split()
        minute, hour = fields[0], fields[1]
        frequent = hour == "*" and (minute == "*" or minute.startswith("*/"))
        if not frequent or (len(fields) == 6 and fields[5].startswith("*/")):
            continue  # hourly or daily jobs; the 3 s batch itself
        assert len(fields) == 6, f"{periodic.task.name} starts at second 0: {periodic.cron}"
        for second in map(int, fields[5].split(",")):
            assert second % 3, f"{periodic.task.name} starts with the achievements batch"
            assert second not in seconds, (
                f"{periodic.task.name} and {seconds[second]} start together"
            )
            seconds[second] = periodic.task.name
        assert croniter.is_valid(periodic.cron, second_at_beginning=False)
    assert len(seconds) >= 14
    refresh = [1, 7, 16, 23, 31, 37, 46, 55]
    assert sorted(s for s, name in seconds.items() if name.endswith("rebuild_if_due")) == refresh

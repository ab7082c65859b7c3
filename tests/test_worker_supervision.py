"""The job worker outlives its database connections (worker.supervise_worker): procrastinate
stops its worker when the listener, heartbeat or deferrer loses the database (PostgreSQL
restarted or failed over, a backup restored, pg_terminate_backend). `stepcoin serve`'s worker
and `stepcoin worker` start it again; a signal still stops `stepcoin worker` cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from stepcoin.worker import (
    JOBS_APPLICATION_NAME,
    RESTART_FIRST_WAIT_S,
    open_jobs,
    start_worker_task,
)
from tests.fixtures.database import server_database

QUEUE_COUNT = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid()"
)
QUEUE_SESSIONS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid()"
)


def _last_worker(url: str) -> int:
    """The newest worker procrastinate registered (each start registers a new one)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM procrastinate_workers").fetchone()
    return int(row[0]) if row else 0


async def _cut(url: str) -> None:
    """What a restart does to the worker: every session of the queue ends under it (the
    listener alone procrastinate opens again by itself; its deferrer and heartbeat stop it).
    Waits (without blocking the loop the worker may run on) until the worker holds more than
    its listening session."""
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            (sessions,) = conn.execute(QUEUE_COUNT, (JOBS_APPLICATION_NAME,)).fetchone() or (0,)
            if sessions >= 2:
                break
            await asyncio.sleep(0.05)
        cut = conn.execute(QUEUE_SESSIONS, (JOBS_APPLICATION_NAME,)).fetchall()
    assert len(cut) >= 2, cut


def _collect_failed_jobs() -> None:
    """Collect now the job tasks the cut failed (procrastinate never retrieves their error):
    collected later, by a collection inside pytest's parsing of a module, their "Task exception
    was never retrieved" traceback parsed source inside that parse, which CPython 3.11 answers
    with "SystemError: AST constructor recursion depth mismatch"."""
    gc.collect()


async def _started_after(url: str, last: int, timeout: float = 30.0) -> int:
    """Wait until a worker newer than `last` has registered; its id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        newest = _last_worker(url)  # not in a thread: a test process parses modules meanwhile
        if newest > last:
            return newest
        await asyncio.sleep(0.1)
    raise AssertionError(f"no worker started again within {timeout} s")


async def test_serves_worker_comes_back_after_its_connections_are_cut(app, database_url):
    ran = asyncio.Event()
    async with open_jobs(app.state.database) as jobs:

        @jobs.task(name="test:after_the_cut")
        async def after_the_cut() -> None:
            ran.set()

        before = _last_worker(database_url)
        worker = start_worker_task(jobs)  # as `stepcoin serve` starts it
        try:
            first = await _started_after(database_url, before)
            await _cut(database_url)
            await _started_after(database_url, first)  # started again
            assert not worker.done()
            await after_the_cut.defer_async()
            await asyncio.wait_for(ran.wait(), 20)  # and it runs jobs
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            _collect_failed_jobs()


@pytest.mark.slow
def test_the_worker_command_survives_a_cut_and_stops_on_sigterm(database_url):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["STEPCOIN_LOG_LEVEL"] = "WARNING"
    command = [sys.executable, "-m", "stepcoin.cli"]
    with server_database(database_url) as url:
        env["DATABASE_URL"] = url
        migrated = subprocess.run(
            [*command, "migrate"], env=env, capture_output=True, text=True, timeout=180
        )
        assert migrated.returncode == 0, migrated.stderr
        worker = subprocess.Popen(
            [*command, "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            first = asyncio.run(_started_after(url, 0, timeout=60))
            asyncio.run(_cut(url))
            asyncio.run(_started_after(url, first))
            assert worker.poll() is None  # the former command exited 1 here
            worker.send_signal(signal.SIGTERM)
            out, err = worker.communicate(timeout=60)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
        assert worker.returncode == 0, err.decode(errors="replace")[-3000:]
        assert b"starting it again" in out + err  # logged as an error


async def test_a_stop_while_the_worker_fails_is_a_stop(app, database_url):
    """Cancelled while it meets the cut (procrastinate's shutdown then raises the database's
    error, not the cancellation): it stops, and no worker starts again."""
    async with open_jobs(app.state.database) as jobs:
        before = _last_worker(database_url)
        worker = start_worker_task(jobs)
        try:
            first = await _started_after(database_url, before)
            await _cut(database_url)
            await asyncio.sleep(0.05)
            worker.cancel()  # as SIGTERM does
            done, _ = await asyncio.wait({worker}, timeout=30)
            assert worker in done and worker.cancelled()
            await asyncio.sleep(2 * RESTART_FIRST_WAIT_S)
            assert _last_worker(database_url) <= first  # none registered since
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            _collect_failed_jobs()

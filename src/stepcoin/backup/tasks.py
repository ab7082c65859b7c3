"""The backup schedule as jobs in the PostgreSQL queue.

One periodic tick a minute asks schedule.due_activities() what is due (times and retention in
the runtime settings `backup.*`) and does it in order: the daily full or the hourly
incremental backup, the weekly cold copy, the monthly copy to the second region, retention.
Every attempt is recorded in the catalogue; a failure is logged, fails the job (so it shows in
the queue's failure metrics) and is tried again after `backup.retry_minutes`. A failure never
deletes anything: retention only runs as its own step and always keeps the last good backup.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import procrastinate

from stepcoin.backup import engine
from stepcoin.backup.catalogue import RetentionPolicy, load_catalogue, save_catalogue, utcnow
from stepcoin.backup.schedule import due_activities
from stepcoin.config import get_settings
from stepcoin.db import session_scope
from stepcoin.queue import JobRuntime
from stepcoin.runtime_settings.service import runtime_settings

logger = logging.getLogger("stepcoin.backup.tasks")
blueprint = procrastinate.Blueprint()


class ScheduledBackupFailed(RuntimeError):
    """At least one scheduled activity failed (each is logged with its reason)."""


async def _runtime_values() -> dict[str, Any]:
    async with session_scope(JobRuntime.require_database()) as session:
        return dict(await runtime_settings.all(session))


def _config() -> engine.BackupConfig:
    return engine.for_settings(get_settings(), JobRuntime.require_database().url)


def run_activity(config: engine.BackupConfig, activity: str, values: dict[str, Any]) -> Any:
    """One scheduled activity, synchronously (called in a worker thread)."""
    if activity in ("full", "incremental"):
        return engine.run_backup(config, "full" if activity == "full" else "incremental").id
    if activity == "cold_copy" and config.cold_repository:
        with engine.operation_lock(config.source_url):
            copied = engine.copy_latest(config, config.cold_repository)
            policy = RetentionPolicy(
                int(values["backup.cold_retention_days"]), int(values["backup.cold_retention_days"])
            )
            engine.prune(config, policy, repository_url=config.cold_repository)
        return copied
    if activity == "region_copy" and config.region_repository:
        with engine.operation_lock(config.source_url):
            copied = engine.copy_latest(config, config.region_repository)
            days = int(values["backup.monthly_retention_days"])
            engine.prune(
                config, RetentionPolicy(days, days), repository_url=config.region_repository
            )
        return copied
    if activity == "prune":
        policy = RetentionPolicy(
            int(values["backup.incremental_retention_days"]),
            int(values["backup.full_retention_days"]),
        )
        with engine.operation_lock(config.source_url):
            return engine.prune(config, policy).deleted
    return None


def _record(config: engine.BackupConfig, activity: str, *, ok: bool, error: str | None) -> None:
    repository = config.open()
    with engine.operation_lock(config.source_url):
        catalogue = load_catalogue(repository)
        catalogue.record_run(activity, ok=ok, error=error)
        save_catalogue(repository, catalogue)


def run_due(config: engine.BackupConfig, values: dict[str, Any]) -> dict[str, Any]:
    """Everything due now, in order; raises after trying all if any failed."""
    repository = config.open()
    catalogue = load_catalogue(repository)
    supported = True
    if config.source_url is not None:
        supported = engine.server_info(config.source_url).version >= engine.INCREMENTAL_MIN_VERSION
    due = due_activities(
        utcnow(),
        values,
        catalogue,
        has_cold=bool(config.cold_repository),
        has_region=bool(config.region_repository),
        incremental_supported=supported,
    )
    done: dict[str, Any] = {}
    failed = []
    for activity in due:
        try:
            done[activity] = run_activity(config, activity, values)
        except Exception as exc:
            logger.exception("scheduled backup activity failed", extra={"activity": activity})
            _record(config, activity, ok=False, error=f"{type(exc).__name__}: {exc}")
            failed.append(activity)
            continue
        _record(config, activity, ok=True, error=None)
    if failed:
        raise ScheduledBackupFailed(f"failed: {', '.join(failed)} (will retry)")
    return done


@blueprint.periodic(cron="* * * * * 4", periodic_id="backup-tick")
@blueprint.task(name="scheduled", queueing_lock="backup_scheduled")
async def scheduled(timestamp: int) -> dict[str, Any]:
    """Runs every minute; does whatever backup work is due (usually nothing)."""
    values = await _runtime_values()
    try:
        config = _config()
    except engine.BackupError as exc:
        logger.info("no scheduled backups: %s", exc)
        return {"skipped": str(exc)}
    return await asyncio.to_thread(run_due, config, values)

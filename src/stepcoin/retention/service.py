"""Retention and archival (docs/retention.md): the pruning runs and the month archive.

Each domain decides what of its own tables may go (`steps.retention`, `shop.retention`,
`auth.retention`); this module runs them in batches, one transaction per batch with the run's
counts and cursor, and moves old step_records months to the backup repository and back.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.auth.retention import prune_refresh_tokens
from stepcoin.backup.repository import Repository
from stepcoin.db import Database, session_scope
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.shop.retention import prune_webhook_events
from stepcoin.steps import retention as steps_retention
from stepcoin.steps.appeals import APPEAL_DAYS

logger = logging.getLogger("stepcoin.retention")

DECISIONS: Final = "decisions"
WEBHOOKS: Final = "webhook_events"
REFRESH_TOKENS: Final = "refresh_tokens"
JOBS: Final = (DECISIONS, WEBHOOKS, REFRESH_TOKENS)
ARCHIVE_PREFIX: Final = "archives/step_records"
ARCHIVE_FORMAT: Final = 1


class RetentionError(Exception):
    """A month that cannot be archived or restored now (the message says why)."""


class Interrupted(RetentionError):
    """Raised by `stop_after` (tests): the archive stops as a crash between two steps would."""


@dataclass
class RunReport:
    job: str
    run_id: int
    cutoff: datetime
    batches: int = 0
    examined: int = 0
    deleted: int = 0
    resumed: bool = False


@dataclass
class ArchiveReport:
    month: date
    state: str
    row_count: int | None = None
    file_key: str | None = None
    file_sha256: str | None = None
    steps_done: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# pruning


async def _cutoff(session: AsyncSession, job: str, now: datetime) -> datetime:
    key = {
        DECISIONS: "retention.decisions_days",
        WEBHOOKS: "retention.webhook_events_days",
        REFRESH_TOKENS: "retention.refresh_tokens_days",
    }[job]
    return now - timedelta(days=int(await runtime_settings.get(session, key)))


async def _open_run(
    database: Database, job: str, now: datetime, from_start: bool
) -> tuple[RunReport, int]:
    """The run to continue (the job's last one if it did not finish) or a new one; and the
    batch size. A new decisions run starts at the first decision the last finished run found
    too young (or after its cursor), or from the first decision with from_start."""
    async with session_scope(database) as session:
        batch = int(await runtime_settings.get(session, "retention.batch_rows"))
        last = (
            await session.execute(
                text(
                    "SELECT id, status, cutoff, cursor, next_start, batches, examined, deleted "
                    "FROM retention_runs WHERE job = :job ORDER BY id DESC LIMIT 1 FOR UPDATE"
                ),
                {"job": job},
            )
        ).first()
        if last is not None and last.status != "done":
            await session.execute(
                text("UPDATE retention_runs SET status = 'running', error = NULL WHERE id = :id"),
                {"id": last.id},
            )
            report = RunReport(
                job, last.id, last.cutoff, last.batches, last.examined, last.deleted, True
            )
            return report, batch
        cutoff = await _cutoff(session, job, now)
        cursor = None
        if not from_start and last is not None:
            cursor = last.next_start - 1 if last.next_start is not None else last.cursor
        run_id = (
            await session.execute(
                text(
                    "INSERT INTO retention_runs (job, cutoff, cursor) "
                    "VALUES (:job, :cutoff, :cursor) RETURNING id"
                ),
                {"job": job, "cutoff": cutoff, "cursor": cursor},
            )
        ).scalar_one()
        return RunReport(job, run_id, cutoff), batch


async def _record_batch(
    session: AsyncSession,
    report: RunReport,
    examined: int,
    deleted: int,
    cursor: int | None,
    young_from: int | None,
) -> None:
    report.batches += 1
    report.examined += examined
    report.deleted += deleted
    await session.execute(
        text(
            "UPDATE retention_runs SET batches = batches + 1, examined = examined + :e, "
            "deleted = deleted + :d, cursor = coalesce(:c, cursor), "
            "next_start = least(next_start, :y) WHERE id = :id"
        ),
        {"e": examined, "d": deleted, "c": cursor, "y": young_from, "id": report.run_id},
    )


async def _one_batch(
    session: AsyncSession, report: RunReport, batch: int
) -> tuple[int, int, int | None, int | None, bool]:
    """(examined, deleted, new cursor, first too young id, finished) of one batch."""
    if report.job == DECISIONS:
        after = (
            await session.execute(
                text("SELECT coalesce(cursor, 0) FROM retention_runs WHERE id = :id"),
                {"id": report.run_id},
            )
        ).scalar_one()
        result = await steps_retention.compact_decisions(
            session, after_id=int(after), cutoff=report.cutoff, batch=batch
        )
        return (
            result.examined,
            result.deleted,
            result.last_id,
            result.young_from,
            result.finished,
        )
    prune: Callable[..., Awaitable[int]] = (
        prune_webhook_events if report.job == WEBHOOKS else prune_refresh_tokens
    )
    deleted = await prune(session, cutoff=report.cutoff, batch=batch)
    return deleted, deleted, None, None, deleted < batch


async def prune(
    database: Database,
    jobs: tuple[str, ...] = JOBS,
    *,
    now: datetime | None = None,
    from_start: bool = False,
    max_batches: int | None = None,
) -> list[RunReport]:
    """Run each pruning job to its end (or for max_batches batches: the run stays `running`
    and the next call resumes it). One transaction per batch holds its deletes and its counts."""
    now = now or datetime.now(UTC)
    reports = []
    for job in jobs:
        if job not in JOBS:
            raise RetentionError(f"unknown job {job!r}: one of {', '.join(JOBS)}")
        report, batch = await _open_run(database, job, now, from_start)
        finished = False
        try:
            while not finished:
                if max_batches is not None and report.batches >= max_batches:
                    break
                async with session_scope(database) as session:
                    examined, deleted, cursor, young, finished = await _one_batch(
                        session, report, batch
                    )
                    await _record_batch(session, report, examined, deleted, cursor, young)
        except Exception as exc:
            async with session_scope(database) as session:
                await session.execute(
                    text("UPDATE retention_runs SET status = 'failed', error = :e WHERE id = :id"),
                    {"e": f"{type(exc).__name__}: {exc}"[:2000], "id": report.run_id},
                )
            raise
        if finished:
            async with session_scope(database) as session:
                await session.execute(
                    text(
                        "UPDATE retention_runs SET status = 'done', finished_at = now() "
                        "WHERE id = :id"
                    ),
                    {"id": report.run_id},
                )
        logger.info(
            "retention run",
            extra={
                "job": job,
                "run_id": report.run_id,
                "finished": finished,
                "batches": report.batches,
                "examined": report.examined,
                "deleted": report.deleted,
            },
        )
        reports.append(report)
    return reports


# ---------------------------------------------------------------------------------------------
# the month archive


def archive_keys(month: date) -> tuple[str, str]:
    """The repository keys of a month's archive file and of its manifest."""
    folder = f"{ARCHIVE_PREFIX}/{month:%Y-%m}"
    return f"{folder}/step_records.csv.gz", f"{folder}/manifest.json"


def decisions_key(month: date) -> str:
    """The repository key of the file of a month's decisions."""
    return f"{ARCHIVE_PREFIX}/{month:%Y-%m}/step_validations.csv.gz"


def parse_month(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise RetentionError(f"not a month: {value!r} (write YYYY-MM)") from None


async def keep_after(session: AsyncSession, today: date) -> date:
    """The first day of the oldest month that stays online: retention.step_records_months
    back from this month, and never inside the sync or appeal windows (the SQL checks again)."""
    months = int(await runtime_settings.get(session, "retention.step_records_months"))
    sync_days = int(await runtime_settings.get(session, "anticheat.sync_window_days"))
    first = today.replace(day=1)
    index = first.year * 12 + first.month - 1 - months
    by_months = date(index // 12, index % 12 + 1, 1)
    by_windows = today - timedelta(days=max(sync_days, APPEAL_DAYS) + 1)
    return min(by_months, by_windows)


async def _raw(session: AsyncSession) -> asyncpg.Connection:
    """The session's asyncpg connection, for COPY, inside the session's transaction (a first
    statement through SQLAlchemy makes the adapter begin it)."""
    await session.execute(text("SELECT 1"))
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    return driver


async def _archive_row(session: AsyncSession, month: date) -> Any:
    return (
        await session.execute(
            text("SELECT * FROM retention_archives WHERE month = :m FOR UPDATE"), {"m": month}
        )
    ).first()


async def _set_state(session: AsyncSession, month: date, state: str, **values: Any) -> None:
    columns = ["state", "updated_at", *values]
    params = {"month": month, "state": state, **values}
    assigns = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
    names = ", ".join(["month", *columns])
    placeholders = ", ".join([":month", ":state", "now()", *(f":{c}" for c in values)])
    if "detail" in values:
        params["detail"] = json.dumps(values["detail"])
        placeholders = placeholders.replace(":detail", "CAST(:detail AS jsonb)")
    await session.execute(
        text(
            f"INSERT INTO retention_archives ({names}) VALUES ({placeholders}) "
            f"ON CONFLICT (month) DO UPDATE SET {assigns}"
        ),
        params,
    )


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _gunzip(source: Path, target: Path) -> str:
    """Decompress source into target; the SHA-256 of the decompressed content."""
    digest = hashlib.sha256()
    with gzip.open(source, "rb") as src, target.open("wb") as out:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


async def _detach(database: Database, month: date, today: date) -> None:
    async with session_scope(database) as session:
        await session.execute(text("SET LOCAL lock_timeout = '10s'"))
        state = await steps_retention.partition_state(session, month)
        if state == "absent":
            raise RetentionError(f"{month:%Y-%m} has no step_records partition")
        if state == "attached":
            name = steps_retention.partition_name(month)
            # no write reaches the month while it is checked and detached
            await session.execute(text(f'LOCK TABLE "{name}" IN EXCLUSIVE MODE'))
            blocker = await steps_retention.month_blocker(
                session, month, await keep_after(session, today)
            )
            if blocker is not None:
                raise RetentionError(f"{month:%Y-%m} stays online: {blocker}")
            await steps_retention.detach_partition(session, month)
        await _set_state(session, month, "detached", archived_at=None, restored_at=None)


async def _copy_to_gzip(
    raw: asyncpg.Connection, query: str, args: tuple[Any, ...], path: Path
) -> str:
    """COPY a query's rows out as CSV into a gzip file; the SHA-256 of the CSV."""
    content = hashlib.sha256()
    with path.open("wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:

        async def write(chunk: bytes) -> None:
            content.update(chunk)
            gz.write(chunk)

        await raw.copy_from_query(query, *args, output=write, format="csv")
    return content.hexdigest()


async def _write(database: Database, repository: Repository, month: date, scratch: Path) -> None:
    file_key, manifest_key = archive_keys(month)
    name = steps_retention.partition_name(month)
    columns = ", ".join(steps_retention.ARCHIVE_COLUMNS)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="stepcoin-archive-") as folder:
        path = Path(folder) / "step_records.csv.gz"
        decisions_path = Path(folder) / "step_validations.csv.gz"
        async with session_scope(database) as session:
            stats = (
                await session.execute(
                    text(f'SELECT count(*) AS n, coalesce(sum(steps), 0) AS steps FROM "{name}"')
                )
            ).one()
            before: datetime = (
                await session.execute(
                    text("SELECT now() - make_interval(days => :d)"),
                    {"d": steps_retention.DECISIONS_KEPT_DAYS},
                )
            ).scalar_one()
            decisions = await steps_retention.count_month_decisions(session, month, before)
            raw = await _raw(session)
            content_sha = await _copy_to_gzip(
                raw,
                f'SELECT {columns} FROM "{name}" ORDER BY {steps_retention.ARCHIVE_ORDER}',
                (),
                path,
            )
            decisions_sha = await _copy_to_gzip(
                raw,
                steps_retention.MONTH_DECISIONS_COPY,
                (month, steps_retention.next_month(month), before),
                decisions_path,
            )
        file_sha = _sha256_file(path)
        manifest = {
            "format": ARCHIVE_FORMAT,
            "table": "step_records",
            "month": f"{month:%Y-%m}",
            "columns": list(steps_retention.ARCHIVE_COLUMNS),
            "order": steps_retention.ARCHIVE_ORDER,
            "encoding": "csv (PostgreSQL COPY), gzip",
            "rows": int(stats.n),
            "steps_total": int(stats.steps),
            "file": file_key.rsplit("/", 1)[-1],
            "file_bytes": path.stat().st_size,
            "file_sha256": file_sha,
            "content_sha256": content_sha,
            "decisions": {
                "table": "step_validations",
                "made_before": before.isoformat(),
                "columns": list(steps_retention.DECISION_COLUMNS),
                "order": "id",
                "rows": decisions,
                "file": decisions_key(month).rsplit("/", 1)[-1],
                "file_bytes": decisions_path.stat().st_size,
                "file_sha256": _sha256_file(decisions_path),
                "content_sha256": decisions_sha,
            },
            "written_at": datetime.now(UTC).isoformat(),
        }
        await asyncio.to_thread(repository.put_file, file_key, path)
        await asyncio.to_thread(repository.put_file, decisions_key(month), decisions_path)
        await asyncio.to_thread(
            repository.put_bytes, manifest_key, json.dumps(manifest, indent=2).encode()
        )
    async with session_scope(database) as session:
        await _set_state(
            session,
            month,
            "written",
            repository=repository.url,
            file_key=file_key,
            manifest_key=manifest_key,
            row_count=manifest["rows"],
            file_bytes=manifest["file_bytes"],
            file_sha256=file_sha,
            content_sha256=content_sha,
            detail={
                "steps_total": manifest["steps_total"],
                "decisions": decisions,
                "decisions_made_before": before.isoformat(),
            },
        )


def _read_manifest(repository: Repository, month: date) -> dict[str, Any]:
    _file_key, manifest_key = archive_keys(month)
    data = repository.get_bytes(manifest_key)
    if data is None:
        raise RetentionError(f"no archive of {month:%Y-%m} in {repository.url}")
    manifest: dict[str, Any] = json.loads(data)
    return manifest


def _fetch_checked(repository: Repository, key: str, part: dict[str, Any], folder: Path) -> Path:
    """A file of the month's archive from the repository, decompressed into folder, both
    checksums checked against its part of the manifest; the path of the CSV."""
    packed = folder / key.rsplit("/", 1)[-1]
    repository.get_file(key, packed)
    if _sha256_file(packed) != part["file_sha256"]:
        raise RetentionError(f"{key}: the file's SHA-256 differs from its manifest")
    plain = folder / packed.name.removesuffix(".gz")
    if _gunzip(packed, plain) != part["content_sha256"]:
        raise RetentionError(f"{key}: the content's SHA-256 differs from its manifest")
    return plain


async def _count_csv(
    database: Database, plain: Path, columns: list[str], table: str = "step_records"
) -> int:
    """Rows of an archive CSV as PostgreSQL parses them (a temporary table, dropped)."""
    async with session_scope(database) as session:
        raw = await _raw(session)
        await raw.execute(f"CREATE TEMP TABLE retention_check (LIKE {table}) ON COMMIT DROP")
        await raw.copy_to_table("retention_check", source=plain, columns=columns, format="csv")
        return int(await raw.fetchval("SELECT count(*) FROM retention_check"))


async def _verify(database: Database, repository: Repository, month: date, scratch: Path) -> None:
    manifest = await asyncio.to_thread(_read_manifest, repository, month)
    async with session_scope(database) as session:
        row = await _archive_row(session, month)
    if row is None or row.file_sha256 != manifest["file_sha256"]:
        raise RetentionError(f"{month:%Y-%m}: the manifest is not the one this run wrote")
    parts = [(archive_keys(month)[0], manifest, "step_records")]
    if "decisions" in manifest:
        parts.append((decisions_key(month), manifest["decisions"], "step_validations"))
    with tempfile.TemporaryDirectory(dir=scratch, prefix="stepcoin-verify-") as folder:
        for key, part, table in parts:
            plain = await asyncio.to_thread(_fetch_checked, repository, key, part, Path(folder))
            rows = await _count_csv(database, plain, part["columns"], table)
            if rows != part["rows"]:
                raise RetentionError(f"{key}: {rows} rows read back, {part['rows']} written")
    async with session_scope(database) as session:
        await _set_state(session, month, "verified")


async def _drop(database: Database, month: date) -> None:
    """The month's decisions that the archive holds go in batches (each its own transaction:
    a stop leaves the rest for the next run), then the detached table."""
    async with session_scope(database) as session:
        row = await _archive_row(session, month)
        batch = int(await runtime_settings.get(session, "retention.batch_rows"))
    detail = json.loads(row.detail) if isinstance(row.detail, str) else (row.detail or {})
    made_before = detail.get("decisions_made_before")
    deleted = 0
    while made_before is not None:
        async with session_scope(database) as session:
            gone = await steps_retention.delete_month_decisions(
                session, month, datetime.fromisoformat(made_before), batch
            )
        deleted += gone
        if gone < batch:
            break
    async with session_scope(database) as session:
        await steps_retention.drop_detached(session, month)
        await _set_state(session, month, "archived", archived_at=datetime.now(UTC))
    logger.info("month archived", extra={"month": f"{month:%Y-%m}", "decisions_deleted": deleted})


async def archive_month(
    database: Database,
    repository: Repository,
    month: date,
    *,
    today: date | None = None,
    scratch: Path | None = None,
    stop_after: str | None = None,
) -> ArchiveReport:
    """Move a month of step_records to the repository: detach, write (gzip + SHA-256 +
    manifest), verify (read back), drop. Each step commits its state, so a run that died
    between two steps is completed by the next one."""
    month = steps_retention.month_start(month)
    today = today or datetime.now(UTC).date()
    scratch = scratch or Path(tempfile.gettempdir())
    async with session_scope(database) as session:
        row = await _archive_row(session, month)
    state = row.state if row is not None else None
    report = ArchiveReport(month, state or "online")
    steps: list[tuple[str | None, str, Callable[[], Awaitable[None]]]] = [
        (None, "detached", lambda: _detach(database, month, today)),
        ("detached", "written", lambda: _write(database, repository, month, scratch)),
        ("written", "verified", lambda: _verify(database, repository, month, scratch)),
        ("verified", "archived", lambda: _drop(database, month)),
    ]
    if state == "restored":
        state = None
    for before, after, run in steps:
        if state != before:
            continue
        await run()
        state = after
        report.steps_done.append(after)
        logger.info("month archive step", extra={"month": f"{month:%Y-%m}", "state": after})
        if stop_after == after:
            raise Interrupted(f"stopped after {after}")
    async with session_scope(database) as session:
        row = await _archive_row(session, month)
    report.state = row.state
    report.row_count = row.row_count
    report.file_key = row.file_key
    report.file_sha256 = row.file_sha256
    return report


async def restore_month(
    database: Database, repository: Repository, month: date, *, scratch: Path | None = None
) -> ArchiveReport:
    """Bring an archived month back into step_records: the file is checked against its
    manifest (SHA-256 of the file and of the content), copied into a staging table, counted,
    and put into a new partition in one transaction (rows of deleted accounts stay gone)."""
    month = steps_retention.month_start(month)
    scratch = scratch or Path(tempfile.gettempdir())
    async with session_scope(database) as session:
        state = await steps_retention.partition_state(session, month)
    if state == "attached":
        raise RetentionError(f"{month:%Y-%m} is online: nothing to restore")
    manifest = await asyncio.to_thread(_read_manifest, repository, month)
    columns = list(manifest["columns"])
    decisions = manifest.get("decisions")
    with tempfile.TemporaryDirectory(dir=scratch, prefix="stepcoin-restore-") as folder:
        plain = await asyncio.to_thread(
            _fetch_checked, repository, archive_keys(month)[0], manifest, Path(folder)
        )
        decisions_plain = None
        if decisions is not None:
            decisions_plain = await asyncio.to_thread(
                _fetch_checked, repository, decisions_key(month), decisions, Path(folder)
            )
        async with session_scope(database) as session:
            await session.execute(text("SET LOCAL lock_timeout = '10s'"))
            if await steps_retention.partition_state(session, month) == "detached":
                # the archive stopped before its drop: the detached table goes, the file is
                # the truth from here (it was verified against the same table)
                await steps_retention.drop_detached(session, month)
            raw = await _raw(session)
            await raw.execute(
                "CREATE TEMP TABLE retention_restore (LIKE step_records) ON COMMIT DROP"
            )
            await raw.copy_to_table(
                "retention_restore", source=plain, columns=columns, format="csv"
            )
            staged = int(await raw.fetchval("SELECT count(*) FROM retention_restore"))
            if staged != manifest["rows"]:
                raise RetentionError(
                    f"{month:%Y-%m}: {staged} rows in the file, {manifest['rows']} in the manifest"
                )
            await steps_retention.create_partition(session, month)
            restored = await steps_retention.fill_from_staging(session, month, "retention_restore")
            decisions_restored = 0
            if decisions is not None and decisions_plain is not None:
                await raw.execute(
                    "CREATE TEMP TABLE retention_restore_decisions (LIKE step_validations) "
                    "ON COMMIT DROP"
                )
                await raw.copy_to_table(
                    "retention_restore_decisions",
                    source=decisions_plain,
                    columns=list(decisions["columns"]),
                    format="csv",
                )
                staged_decisions = int(
                    await raw.fetchval("SELECT count(*) FROM retention_restore_decisions")
                )
                if staged_decisions != decisions["rows"]:
                    raise RetentionError(
                        f"{month:%Y-%m}: {staged_decisions} decisions in the file, "
                        f"{decisions['rows']} in the manifest"
                    )
                decisions_restored = await steps_retention.decisions_from_staging(
                    session, "retention_restore_decisions"
                )
            await _set_state(
                session,
                month,
                "restored",
                restored_at=datetime.now(UTC),
                detail={
                    "rows_restored": restored,
                    "rows_in_archive": staged,
                    "decisions_restored": decisions_restored,
                },
            )
    logger.info(
        "month restored",
        extra={"month": f"{month:%Y-%m}", "rows": restored, "decisions": decisions_restored},
    )
    return ArchiveReport(month, "restored", restored, archive_keys(month)[0])


async def archive_due(
    database: Database,
    repository: Repository,
    *,
    today: date | None = None,
    scratch: Path | None = None,
) -> list[ArchiveReport]:
    """The scheduled archive: every online month older than the window whose rows are all
    settled, oldest first, and any month an earlier run left half done. A restored month is
    left online until `stepcoin retention archive-month` is asked for it."""
    today = today or datetime.now(UTC).date()
    async with session_scope(database) as session:
        limit = await keep_after(session, today)
        online = await steps_retention.attached_months(session)
        pending = (
            await session.execute(
                text(
                    "SELECT month FROM retention_archives "
                    "WHERE state IN ('detached', 'written', 'verified') ORDER BY month"
                )
            )
        ).scalars()
        restored = set(
            (
                await session.execute(
                    text("SELECT month FROM retention_archives WHERE state = 'restored'")
                )
            ).scalars()
        )
        due: list[date] = list(pending)
        for month in online:
            if steps_retention.next_month(month) > limit or month in restored:
                continue
            blocker = await steps_retention.month_blocker(session, month, limit)
            if blocker is None:
                due.append(month)
            else:
                logger.info(
                    "month stays online", extra={"month": f"{month:%Y-%m}", "reason": blocker}
                )
    reports = []
    for month in sorted(set(due)):
        reports.append(
            await archive_month(database, repository, month, today=today, scratch=scratch)
        )
    return reports


# ---------------------------------------------------------------------------------------------
# status


async def status(database: Database) -> dict[str, Any]:
    """What the jobs did: each job's last run and every archived month."""
    async with session_scope(database) as session:
        runs = (
            await session.execute(
                text(
                    "SELECT DISTINCT ON (job) job, id, status, started_at, finished_at, cutoff, "
                    "cursor, batches, examined, deleted, error FROM retention_runs "
                    "ORDER BY job, id DESC"
                )
            )
        ).mappings()
        archives = (
            await session.execute(
                text(
                    "SELECT month, state, row_count, file_bytes, file_key, file_sha256, "
                    "archived_at, restored_at FROM retention_archives ORDER BY month"
                )
            )
        ).mappings()
        return {
            "runs": [dict(r) for r in runs],
            "archives": [dict(a) for a in archives],
            "online_months": [f"{m:%Y-%m}" for m in await steps_retention.attached_months(session)],
        }

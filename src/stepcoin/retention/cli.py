"""`stepcoin retention ...`: status, prune, archive-month, restore-month."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from stepcoin import terminal
from stepcoin.backup import engine
from stepcoin.backup.command_database import database_url

if TYPE_CHECKING:
    from stepcoin.db import Database
    from stepcoin.retention.service import ArchiveReport

# lazy imports: stepcoin.cli loads this module with every command (archive-wal runs per WAL
# segment), so each command imports the service (SQLAlchemy, asyncpg, the domains) itself
JOBS = ("decisions", "webhook_events", "refresh_tokens")  # stepcoin.retention.service.JOBS

retention_app = typer.Typer(
    help="Retention and archival (docs/retention.md): what the pruning jobs did, a pruning run "
    "now, and archiving or restoring a month of step records in the backup repository.",
    no_args_is_help=True,
)
T = TypeVar("T")


def _run(
    work: Callable[[Database, engine.BackupConfig | None], Awaitable[T]],
    *,
    needs_repository: bool,
) -> T:
    # lazy: see the module's comment
    from stepcoin.config import get_settings
    from stepcoin.db import Database
    from stepcoin.retention.service import RetentionError

    with database_url() as url:

        async def main() -> T:
            database = Database(url, pool_size=2)
            try:
                return await work(database, config)
            finally:
                await database.dispose()

        try:
            config = engine.for_settings(get_settings(), url) if needs_repository else None
            return asyncio.run(main())
        except (RetentionError, engine.BackupError) as exc:
            terminal.err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from None


def _month(value: str) -> Any:
    # lazy: see the module's comment
    from stepcoin.retention.service import RetentionError, parse_month

    try:
        return parse_month(value)
    except RetentionError as exc:
        raise typer.BadParameter(str(exc)) from None


@retention_app.command("status")
def status_command(as_json: terminal.JsonOption = False) -> None:
    """Each pruning job's last run and every archived month."""
    # lazy: see the module's comment
    from stepcoin.retention import service

    report: dict[str, Any] = _run(lambda db, _c: service.status(db), needs_repository=False)
    if as_json:
        terminal.print_json(terminal.to_jsonable(report))
        return
    for run in report["runs"]:
        started = run["started_at"].strftime("%Y-%m-%d %H:%M")
        error = f" error {run['error']}" if run["error"] else ""
        typer.echo(
            f"{run['job']}: run {run['id']} {run['status']} started {started} "
            f"batches {run['batches']} examined {run['examined']} deleted {run['deleted']}{error}"
        )
    for archive in report["archives"]:
        typer.echo(
            f"{archive['month']:%Y-%m}: {archive['state']} rows {archive['row_count']} "
            f"bytes {archive['file_bytes']} sha256 {archive['file_sha256']}"
        )
    typer.echo("online months: " + (", ".join(report["online_months"]) or "none"))


@retention_app.command("prune")
def prune_command(
    job: Annotated[
        list[str] | None, typer.Option(help=f"Only this job ({', '.join(JOBS)}).")
    ] = None,
    from_start: Annotated[
        bool, typer.Option(help="Examine every decision, not only those after the last run.")
    ] = False,
) -> None:
    """Run the pruning jobs now (a run that died is resumed)."""
    # lazy: see the module's comment
    from stepcoin.retention import service

    jobs = tuple(job) if job else service.JOBS
    reports = _run(
        lambda db, _c: service.prune(db, jobs, from_start=from_start), needs_repository=False
    )
    for r in reports:
        typer.echo(
            f"{r.job}: run {r.run_id}{' (resumed)' if r.resumed else ''} batches {r.batches} "
            f"examined {r.examined} deleted {r.deleted}"
        )


@retention_app.command("archive-month")
def archive_month_command(
    month: Annotated[str, typer.Argument(help="YYYY-MM")],
) -> None:
    """Detach a month of step records, write it to the backup repository (gzip, SHA-256,
    manifest), read it back, then drop it; a run that stopped is completed."""
    # lazy: see the module's comment
    from stepcoin.retention import service

    value = _month(month)

    async def work(db: Database, config: engine.BackupConfig | None) -> ArchiveReport:
        assert config is not None
        return await service.archive_month(db, config.open(), value, scratch=config.scratch_dir)

    report = _run(work, needs_repository=True)
    typer.echo(
        f"{month}: {report.state}, {report.row_count} rows in {report.file_key} "
        f"(sha256 {report.file_sha256})"
    )


@retention_app.command("restore-month")
def restore_month_command(
    month: Annotated[str, typer.Argument(help="YYYY-MM")],
) -> None:
    """Put an archived month back into step_records after checking its checksums."""
    # lazy: see the module's comment
    from stepcoin.retention import service

    value = _month(month)

    async def work(db: Database, config: engine.BackupConfig | None) -> ArchiveReport:
        assert config is not None
        return await service.restore_month(db, config.open(), value, scratch=config.scratch_dir)

    report = _run(work, needs_repository=True)
    typer.echo(f"{month}: restored {report.row_count} rows from {report.file_key}")

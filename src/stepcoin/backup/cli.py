"""`stepcoin backup ...`: run, list, verify, restore, prune, copy and drill backups."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.markup import escape

from stepcoin import terminal
from stepcoin.backup import engine
from stepcoin.backup.catalogue import RetentionPolicy, load_catalogue
from stepcoin.backup.command_database import database_url

backup_app = typer.Typer(
    help=(
        "Physical backups with PostgreSQL's own tools: WAL archiving, pg_basebackup full and "
        "(PostgreSQL 17+) incremental backups, pg_verifybackup, pg_combinebackup restores."
    ),
    no_args_is_help=True,
)
console = terminal.err
out = terminal.out
_progress = terminal.progress
JsonOption = terminal.JsonOption


@contextlib.contextmanager
def _config(*, needs_database: bool) -> Iterator[engine.BackupConfig]:
    # lazy: loaded with every `stepcoin` command; commands import what they use
    from stepcoin.config import get_settings

    if not needs_database:
        yield engine.for_settings(get_settings(), get_settings().database_url)
        return
    with database_url() as url:
        yield engine.for_settings(get_settings(), url)


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(1)


async def _policy_values() -> dict[str, int]:
    # lazy: loaded with every `stepcoin` command; commands import what they use
    from stepcoin.config import get_settings
    from stepcoin.db import Database, session_scope
    from stepcoin.runtime_settings.service import runtime_settings

    url = get_settings().database_url
    assert url
    database = Database(url, pool_size=1, max_overflow=0)
    try:
        async with session_scope(database) as session:
            values = await runtime_settings.all(session)
    finally:
        await database.dispose()
    return {k: int(v) for k, v in values.items() if k.startswith("backup.")}


@backup_app.command("run")
def run_command(
    type_: Annotated[
        str, typer.Option("--type", help="full, or incremental (PostgreSQL 17+).")
    ] = "full",
    as_json: JsonOption = False,
) -> None:
    """Take a backup now, verify it with pg_verifybackup and add it to the catalogue."""
    if type_ not in {"full", "incremental"}:
        raise typer.BadParameter("--type must be full or incremental")
    kind: Literal["full", "incremental"] = "full" if type_ == "full" else "incremental"
    try:
        with _config(needs_database=True) as config, _progress() as progress:
            record = engine.run_backup(config, kind, progress=progress)
    except engine.BackupError as exc:
        raise _fail(exc) from exc
    if as_json:
        terminal.print_json(record)
        return
    parent = f" on top of {record.parent}" if record.parent else ""
    out.print(
        f"backup {record.id} ({record.type}{parent}): {record.size / 1e6:.1f} MB, verified, "
        f"in {record.repository}"
    )


@backup_app.command("list")
def list_command(
    repository: Annotated[
        str | None, typer.Option(help="Another repository (default: the main one).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The catalogue: id, type, parent, started, size, verified, repository (whole values, one
    tab-separated line each, when the output is not a terminal; --json for every field)."""
    with _config(needs_database=False) as config:
        catalogue = load_catalogue(config.open(repository))
    if as_json:
        terminal.print_json(catalogue.backups)
        return
    rows = []
    for record in catalogue.backups:
        verified = {True: "yes", False: "[red]FAILED[/]", None: "no"}[record.verified]
        rows.append(
            [
                escape(record.id),
                record.type,
                escape(record.parent or ""),
                record.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                f"{record.size / 1e6:.1f} MB",
                verified,
                escape(record.repository),
            ]
        )
    terminal.print_table(
        ["id", "type", "parent", "started", "size", "verified", "repository"], rows
    )
    if not catalogue.backups and out.is_terminal:
        out.print("no backups yet")


@backup_app.command("verify")
def verify_command(
    backup_id: Annotated[str | None, typer.Argument(help="One backup; default: all.")] = None,
    repository: Annotated[str | None, typer.Option(help="Another repository.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Check what the repository holds (sha256, then pg_verifybackup); exit 1 on any fault."""
    try:
        with _config(needs_database=False) as config, _progress() as progress:
            results = engine.verify_backups(
                config, backup_id, repository_url=repository, progress=progress
            )
    except (engine.BackupError, KeyError) as exc:
        raise _fail(exc) from exc
    if as_json:
        terminal.print_json(results)
    else:
        for result in results:
            if result.ok:
                out.print(f"{escape(result.id)}: ok")
            else:
                out.print(f"[bold red]{escape(result.id)}: CORRUPT[/]\n{escape(result.message)}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@backup_app.command("restore")
def restore_command(
    target: Annotated[Path, typer.Option(help="New data directory (must be empty).")],
    time: Annotated[
        str | None, typer.Option("--time", help="Recover to this moment (ISO 8601, UTC default).")
    ] = None,
    backup: Annotated[str | None, typer.Option("--backup", help="Restore this backup.")] = None,
    repository: Annotated[str | None, typer.Option(help="Another repository.")] = None,
    owner: Annotated[
        str | None, typer.Option(help="OS user to own the files (root default: stepcoin-pg).")
    ] = None,
) -> None:
    """Rebuild a data directory from the backups and the WAL archive (archiving off in it)."""
    # lazy: loaded with every `stepcoin` command; commands import what they use
    from stepcoin.embedded import SERVER_USER

    if owner is None and os.geteuid() == 0:
        owner = SERVER_USER
    try:
        moment: datetime | None = engine.parse_target_time(time) if time else None
        with _config(needs_database=False) as config, _progress() as progress:
            result = engine.restore(
                config,
                target,
                backup_id=backup,
                target_time=moment,
                repository_url=repository,
                owner=owner,
                progress=progress,
            )
    except (engine.BackupError, KeyError) as exc:
        raise _fail(exc) from exc
    out.print(
        f"restored {' + '.join(result.chain)} into {result.target} with {result.wal_segments} WAL "
        f"files; recovery runs to the {result.recovery_target} when it starts:\n"
        f"  pg_ctl -D {result.target} start   (WAL archiving is off in the restored copy)"
    )


@backup_app.command("prune")
def prune_command(
    dry_run: Annotated[bool, typer.Option(help="Only say what would go.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Apply the retention policy (backup.* runtime settings) to every repository."""
    import asyncio

    try:
        with _config(needs_database=True) as config:
            values = asyncio.run(_policy_values())
            plans = [
                (
                    None,
                    RetentionPolicy(
                        values["backup.incremental_retention_days"],
                        values["backup.full_retention_days"],
                    ),
                ),
                (
                    config.cold_repository,
                    RetentionPolicy(*[values["backup.cold_retention_days"]] * 2),
                ),
                (
                    config.region_repository,
                    RetentionPolicy(*[values["backup.monthly_retention_days"]] * 2),
                ),
            ]
            results = []
            with engine.operation_lock(config.source_url):
                for index, (url, policy) in enumerate(plans):
                    if index and url is None:
                        continue
                    result = engine.prune(config, policy, repository_url=url, dry_run=dry_run)
                    results.append(result)
                    if as_json:
                        continue
                    verb = "would delete" if dry_run else "deleted"
                    out.print(
                        f"{result.repository}: {verb} {len(result.deleted)} backups "
                        f"{result.deleted or ''} and {result.wal_deleted} WAL files; "
                        f"{result.kept} kept"
                    )
    except engine.BackupError as exc:
        raise _fail(exc) from exc
    if as_json:
        terminal.print_json({"dry_run": dry_run, "repositories": results})


@backup_app.command("copy")
def copy_command(
    to: Annotated[str, typer.Option("--to", help="cold, region, or a repository URL.")],
) -> None:
    """Copy the newest verified backup (with its chain) to another repository."""
    try:
        with _config(needs_database=True) as config:
            url = {"cold": config.cold_repository, "region": config.region_repository}.get(to, to)
            if not url:
                raise engine.BackupError(f"no {to} repository configured")
            with engine.operation_lock(config.source_url):
                copied = engine.copy_latest(config, url)
    except engine.BackupError as exc:
        raise _fail(exc) from exc
    out.print(f"copied {copied or 'nothing new'} to {url}")


@backup_app.command("drill")
def drill_command(as_json: JsonOption = False) -> None:
    """Restore the latest backup into a scratch instance and check it (exit 1 on a mismatch)."""
    # lazy: loaded with every `stepcoin` command; commands import what they use
    from stepcoin.backup.drill import run_drill

    try:
        with _config(needs_database=True) as config, _progress() as progress:
            report = run_drill(config, progress=progress)
    except engine.BackupError as exc:
        raise _fail(exc) from exc
    if as_json:
        terminal.print_json({**terminal.to_jsonable(report), "ok": report.ok})
        if not report.ok:
            raise typer.Exit(1)
        return
    rows = []
    for name, (expected, found) in report.counts.items():
        style = "" if expected == found else "[bold red]"
        rows.append([name, str(expected), f"{style}{found}"])
    terminal.print_table(["table", "at restore point", "restored"], rows)
    out.print(
        f"backup {report.backup_id} ({' + '.join(report.chain)}) to {report.restore_point}: "
        f"recovered in {report.recovery_seconds:.1f} s; {report.wallets_checked} wallets checked"
    )
    if report.ok:
        out.print("[bold green]drill passed[/]")
        return
    for problem in report.problems:
        out.print(f"[bold red]MISMATCH[/] {problem}")
    out.print(f"[bold red]DRILL FAILED: {len(report.problems)} problem(s)[/]")
    raise typer.Exit(1)


@backup_app.command("archive-wal", hidden=False)
def archive_wal_command(
    path: Annotated[Path, typer.Argument(help="%p: the WAL file, relative to the data dir.")],
    name: Annotated[str, typer.Argument(help="%f: its file name.")],
) -> None:
    """archive_command for S3 repositories: `stepcoin backup archive-wal %p %f`."""
    try:
        with _config(needs_database=False) as config:
            engine.archive_wal(config.open(), path, name)
    except (engine.BackupError, OSError) as exc:
        raise _fail(exc) from exc

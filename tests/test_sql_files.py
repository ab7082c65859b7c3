"""SQL functions live as versioned .sql files beside their code, and migrations load them."""

from __future__ import annotations

import re
from pathlib import Path

import stepcoin
from stepcoin.sqlfiles import load

SRC = Path(stepcoin.__file__).parent
VERSIONS = SRC / "migrations" / "versions"
LOADS = re.compile(r'load\("(?P<package>[\w.]+)", "(?P<name>[\w.]+\.sql)"\)')


def _loaded() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for migration in VERSIONS.glob("*.py"):
        found |= {(m["package"], m["name"]) for m in LOADS.finditer(migration.read_text())}
    return found


def _files() -> set[tuple[str, str]]:
    files = set()
    for path in SRC.rglob("sql/*.sql"):
        package = ".".join(("stepcoin", *path.parent.parent.relative_to(SRC).parts))
        files.add((package, path.name))
    return files


def test_every_sql_file_is_versioned_and_loaded_by_a_migration():
    files = _files()
    assert files, "no SQL files found"
    assert all(re.fullmatch(r"[a-z_]+\.v\d+\.sql", name) for _, name in files), files
    assert files - _loaded() == set(), "SQL files no migration loads"


def test_every_file_a_migration_loads_exists_and_creates_a_function_or_changes_rows():
    for package, name in _loaded():
        text = load(package, name)
        assert "CREATE OR REPLACE FUNCTION" in text or "UPDATE " in text, (package, name)


def test_no_migration_from_0008_on_carries_a_function_inline():
    for migration in sorted(VERSIONS.glob("*.py")):
        if migration.name[:4] >= "0008":
            assert "CREATE OR REPLACE FUNCTION" not in migration.read_text(), migration.name

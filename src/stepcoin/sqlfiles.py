"""SQL functions kept as versioned .sql files beside their code; migrations load them by name.

A file named `<function>.v<N>.sql` shows one function exactly as it runs from the migration
that loads it. A file is never edited once a migration loads it: a change is a new version
file and a new migration, so an old migration still builds the database it always built.
"""

from __future__ import annotations

from importlib.resources import files


def load(package: str, name: str) -> str:
    """The text of `<package>/sql/<name>`, e.g. load("stepcoin.wallet", "post.v1.sql")."""
    return files(package).joinpath("sql", name).read_text(encoding="utf-8")

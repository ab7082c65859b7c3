"""The database a `stepcoin` command runs against: DATABASE_URL, or else the embedded
PostgreSQL, started for the command's duration with WAL archiving on.

It lives in backup/ because the embedded server's archive_command comes from the backup
engine; `stepcoin.cli` and `stepcoin backup ...` both use it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import typer

from stepcoin.backup.engine import embedded_archive_command


@contextlib.contextmanager
def database_url() -> Iterator[str]:
    """DATABASE_URL if set; otherwise start the embedded PostgreSQL for the block's duration."""
    # lazy: this module loads with every `stepcoin` command (see stepcoin.cli)
    from stepcoin.config import get_settings

    settings = get_settings()
    if settings.database_url:
        yield settings.database_url
        return
    # lazy: the embedded server's module loads only when no DATABASE_URL is set
    from stepcoin.embedded import EmbeddedPostgres, default_data_dir

    data_dir = Path(settings.data_dir) if settings.data_dir else default_data_dir()
    typer.echo(f"No DATABASE_URL: starting the embedded PostgreSQL in {data_dir}", err=True)
    archive = embedded_archive_command(settings, data_dir)  # WAL archiving on out of the box
    server = EmbeddedPostgres(data_dir, database="stepcoin", archive_command=archive)
    server.start()
    try:
        os.environ["DATABASE_URL"] = server.libpq_url
        get_settings.cache_clear()
        yield server.libpq_url
    finally:
        server.stop()

"""A real embedded PostgreSQL 18 with WAL archiving into a local repository, per module."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from stepcoin import migrate
from stepcoin.backup.engine import BackupConfig, archive_command_for
from stepcoin.embedded import SERVER_USER, EmbeddedPostgres


@dataclass
class Cluster:
    root: Path
    server: EmbeddedPostgres
    url: str
    config: BackupConfig

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)


def make_folder(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    folder.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    root = make_folder("stepcoin-backup-test-")
    repository = root / "repo"
    user = SERVER_USER if os.geteuid() == 0 else None
    command = archive_command_for(str(repository), user)
    server = EmbeddedPostgres(root / "db", database="stepcoin", archive_command=command)
    server.start()
    try:
        migrate.upgrade(server.libpq_url)
        scratch = root / "scratch"
        scratch.mkdir(mode=0o755)
        config = BackupConfig(
            source_url=server.libpq_url,
            repository=str(repository),
            scratch_dir=scratch,
            wal_wait_seconds=30,
            embedded_bin_dir=server.bin_dir,
        )
        yield Cluster(root, server, server.libpq_url, config)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def add_walkers(conn: psycopg.Connection, n: int, coins: int = 10, tag: str = "w") -> list[str]:
    """n users, each with a wallet and one ledger row that explains its balance."""
    ids = []
    for i in range(n):
        row = conn.execute(
            "INSERT INTO users (email, full_name) VALUES (%s, 'Walker') RETURNING id::text",
            (f"{tag}-{i}-{os.urandom(4).hex()}@example.com",),
        ).fetchone()
        user_id = row[0]
        conn.execute(
            "INSERT INTO wallets (user_id, available_coins, lifetime_earned) VALUES (%s, %s, %s)",
            (user_id, coins, coins),
        )
        conn.execute(
            "INSERT INTO coin_transactions (user_id, amount, transaction_type, reference_id, "
            "balance_after) VALUES (%s, %s, 'admin_adjustment', %s, %s)",
            (user_id, coins, f"seed:{user_id}", coins),
        )
        ids.append(user_id)
    return ids


def count(conn: psycopg.Connection, table: str = "users") -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

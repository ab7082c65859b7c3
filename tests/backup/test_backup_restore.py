"""Backups, point-in-time restores, verification, the drill and copies, on a real embedded
PostgreSQL 18 with WAL archiving (one cluster for the module: each step builds on the last)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time

import psycopg
import pytest

from stepcoin.backup import engine
from stepcoin.backup.catalogue import load_catalogue
from stepcoin.backup.drill import run_drill, scratch_server
from tests.backup.conftest import Cluster, add_walkers, count, make_folder

pytestmark = pytest.mark.slow


def _restore_and_count(cluster: Cluster, **target: object) -> tuple[int, str, int]:
    """Restore into a fresh scratch folder, start it; (users, archive_mode, wallet mismatches)."""
    root = make_folder("stepcoin-restore-test-")
    try:
        owner = "stepcoin-pg" if os.geteuid() == 0 else None
        engine.restore(cluster.config, root / "pgdata", owner=owner, **target)  # type: ignore[arg-type]
        with scratch_server(cluster.config.embedded_bin_dir, root, "stepcoin") as url:
            from stepcoin.backup.drill import _wait_promoted

            _wait_promoted(url, timeout=60)
            with psycopg.connect(url, autocommit=True) as conn:
                users = count(conn)
                archive_mode = conn.execute("SHOW archive_mode").fetchone()[0]
                bad = conn.execute(
                    "SELECT count(*) FROM wallets w WHERE available_coins <> (SELECT "
                    "coalesce(sum(amount), 0) FROM coin_transactions t WHERE t.user_id = w.user_id)"
                ).fetchone()[0]
        return users, archive_mode, bad
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _server_now(conn: psycopg.Connection) -> str:
    return conn.execute("SELECT clock_timestamp()").fetchone()[0].isoformat()


def test_full_incremental_and_point_in_time_restores(cluster: Cluster) -> None:
    with cluster.connect() as conn:
        add_walkers(conn, 3, tag="a")
        full = engine.run_backup(cluster.config, "full")
        add_walkers(conn, 2, tag="b")
        time.sleep(0.3)
        between = _server_now(conn)
        time.sleep(0.3)
        add_walkers(conn, 1, tag="c")
        incremental = engine.run_backup(cluster.config, "incremental")
        add_walkers(conn, 4, tag="d")  # only in WAL: after the last backup
        assert count(conn) == 10
    assert full.type == "full" and full.verified and full.restore_point is not None
    assert incremental.type == "incremental" and incremental.parent == full.id
    assert incremental.size < full.size
    assert full.restore_point.counts["users"] == 3
    assert incremental.restore_point is not None
    assert incremental.restore_point.counts["users"] == 6
    engine.wait_for_archive(cluster.url, None, 30)  # what a live archive holds by now

    users, archive_mode, bad = _restore_and_count(
        cluster, target_time=engine.parse_target_time(between)
    )
    assert (users, bad) == (5, 0)  # exactly the rows of that moment
    assert archive_mode == "off"  # a restored copy never archives into the live repository

    users, archive_mode, bad = _restore_and_count(cluster)  # the latest: chain + WAL
    assert (users, archive_mode, bad) == (10, "off", 0)

    users, _, _ = _restore_and_count(cluster, backup_id=incremental.id, target_name=None)
    assert users == 10  # the incremental chain (full + incremental) replayed to the end


def test_drill_passes_then_fails_loudly_on_a_tampered_wallet(cluster: Cluster) -> None:
    with cluster.connect() as conn:
        add_walkers(conn, 2, coins=25, tag="drill")
    engine.run_backup(cluster.config, "incremental")
    report = run_drill(cluster.config)
    assert report.ok, report.problems
    assert report.wallets_checked >= 2
    assert report.counts["users"][0] == report.counts["users"][1] > 0
    assert not list(cluster.config.scratch_dir.glob("stepcoin-drill-*"))  # scratch removed

    def tamper(conn: psycopg.Connection) -> None:
        conn.execute(
            "UPDATE wallets SET available_coins = available_coins + 1 "
            "WHERE user_id = (SELECT user_id FROM wallets LIMIT 1)"
        )

    bad = run_drill(cluster.config, tamper=tamper)
    assert not bad.ok
    assert any("ledger sums to" in p for p in bad.problems)


def test_a_corrupted_backup_file_is_found_by_verify(cluster: Cluster) -> None:
    copy = cluster.root / "corrupt-repo"
    shutil.copytree(cluster.config.repository, copy, ignore=shutil.ignore_patterns("wal"))
    catalogue = load_catalogue(cluster.config.open(str(copy)))
    victim = next(b for b in catalogue.backups if b.type == "full")
    tar_path = copy / "backups" / victim.id / "data.tar"
    with tarfile.open(tar_path) as tar:
        member = next(m for m in tar.getmembers() if m.name.startswith("base/") and m.size > 8192)
    with tar_path.open("r+b") as f:  # flip one byte inside a data file, tar structure intact
        f.seek(member.offset_data + 4000)
        byte = f.read(1)
        f.seek(member.offset_data + 4000)
        f.write(bytes([byte[0] ^ 0xFF]))
    results = {r.id: r for r in engine.verify_backups(cluster.config, repository_url=str(copy))}
    assert not results[victim.id].ok
    assert "checksum mismatch" in results[victim.id].message
    assert "sha256" in results[victim.id].message
    assert all(r.ok for i, r in results.items() if i != victim.id)
    assert load_catalogue(cluster.config.open(str(copy))).get(victim.id).verified is False
    with pytest.raises(engine.BackupError, match="corrupt"):
        engine.restore(cluster.config, cluster.root / "never", backup_id=victim.id,
                       repository_url=str(copy))  # fmt: skip


def test_cli_lists_the_catalogue(cluster: Cluster) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(STEPCOIN_BACKUP_REPOSITORY=cluster.config.repository, COLUMNS="200")
    result = subprocess.run(
        [sys.executable, "-m", "stepcoin.cli", "backup", "list"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for column in ("id", "type", "parent", "started", "size", "verified", "repository"):
        assert column in result.stdout
    assert "incremental" in result.stdout and "full" in result.stdout
    # a script reads whole ids from the pipe, or JSON, and verifies what it read
    ids = [line.split("\t")[0] for line in result.stdout.splitlines()[1:]]
    listed = subprocess.run(
        [sys.executable, "-m", "stepcoin.cli", "backup", "list", "--json"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert [b["id"] for b in json.loads(listed.stdout)] == ids
    verified = subprocess.run(
        [sys.executable, "-m", "stepcoin.cli", "backup", "verify", ids[-1], "--json"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout) == [{"id": ids[-1], "ok": True, "message": "ok"}]


@pytest.fixture
def moto_endpoint() -> object:
    pytest.importorskip("moto", reason="moto[server] is not installed (pip install 'moto[server]')")
    boto3 = pytest.importorskip("boto3")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        deadline = time.monotonic() + 20
        while True:
            try:
                client.create_bucket(Bucket="stepcoin-cold")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(10)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_copy_to_s3_compatible_storage_then_verify_and_prune(
    cluster: Cluster, moto_endpoint: str
) -> None:
    url = f"s3://stepcoin-cold/weekly?endpoint_url={moto_endpoint}&region=us-east-1"
    copied = engine.copy_latest(cluster.config, url)
    source = load_catalogue(cluster.config.open())
    latest = source.latest(verified_only=True)
    assert copied == [b.id for b in source.chain(latest.id)]
    assert engine.copy_latest(cluster.config, url) == []  # already there
    remote = load_catalogue(cluster.config.open(url))
    assert [b.id for b in remote.backups] == copied
    assert all(b.copied_from == cluster.config.repository for b in remote.backups)
    results = engine.verify_backups(cluster.config, latest.id, repository_url=url)
    assert [r.ok for r in results] == [True]

"""A year of generated data through the retention jobs: sizes before and after, the ledger
check, and an archived month restored and compared (issue 19, item 2; docs/retention.md).

    python bench/retention_bench.py --server-url postgresql://postgres@127.0.0.1:5432/postgres \
        [--users 2000] [--days 365] [--keep-months 6] [--resyncs 1] [--keep]

Makes a throwaway database (`stepcoin_retention_bench`, dropped at the end unless --keep),
migrates it and fills it with bench/generate.py (`--users` walkers, `--days` days of history).
On top of what the generator writes, the year a running service would have left behind:
`--resyncs` earlier (superseded) decisions per record (a re-sync during the day), a handled
webhook delivery per walker and week, and a finished sign-in (refresh token) per walker and
week. Then, with `retention.step_records_months` set to `--keep-months`, it runs the pruning
(`stepcoin.retention.service.prune`) and the scheduled archive (`archive_due`) into a folder
repository, measures rows and bytes per table before and after, runs the ledger check, and
restores the oldest archived month and compares it with its rows before the archive (an md5 of
every row in key order).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate

NAME = "stepcoin_retention_bench"
TABLES = ("step_records", "step_validations", "webhook_events", "refresh_tokens")


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def make_database(server_url: str, args: argparse.Namespace) -> str:
    from stepcoin import migrate

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {NAME}")
    url = with_database(server_url, NAME)
    migrate.upgrade(url)
    generate.generate(url, args.users, args.days, args.users // 20, 0, args.seed)
    with psycopg.connect(url) as conn:
        # superseded decisions: the generated decision becomes the earlier sync of the day
        # (12:00, 60% of the steps); a copy at 20:00 is the record's final decision
        for k in range(args.resyncs):
            offset = (k + 1) * 1_000_000_000
            conn.execute(
                """
                INSERT INTO step_validations (id, user_id, step_record_id, recorded_date, source,
                    steps, status, rule_hits, risk_score, coins_awarded, coins_pending,
                    created_at)
                SELECT id + %(o)s, user_id, step_record_id, recorded_date, source, steps, status,
                       rule_hits, risk_score, coins_awarded, coins_pending, created_at
                FROM step_validations WHERE id < 1000000000
                """,
                {"o": offset},
            )
            conn.execute(
                "UPDATE step_records SET validation_id = validation_id %% 1000000000 + %(o)s",
                {"o": offset},
            )
        conn.execute(
            "UPDATE step_validations SET created_at = created_at - interval '8 hours', "
            "steps = steps * 6 / 10 WHERE id < 1000000000"
        )
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('step_validations', 'id'), "
            "(SELECT max(id) FROM step_validations))"
        )
        weeks = args.days // 7
        conn.execute(
            """
            INSERT INTO webhook_events (webhook_id, topic, content_key, payload, received_at,
                                        processed_at, outcome)
            SELECT md5(u.id::text || w), 'products/update', md5(u.id::text || w),
                   jsonb_build_object('id', w, 'title', 'Product ' || w),
                   now() - make_interval(days => 7 * w), now() - make_interval(days => 7 * w),
                   'ok'
            FROM users u CROSS JOIN generate_series(1, %(w)s) w WHERE u.role = 'user'
            """,
            {"w": weeks},
        )
        conn.execute(
            """
            INSERT INTO refresh_tokens (user_id, token_hash, family_id, issued_at, expires_at,
                                        family_expires_at, revoked_at, user_agent, ip)
            SELECT u.id, sha256((u.id::text || w)::bytea), gen_random_uuid(),
                   now() - make_interval(days => 7 * w + 30),
                   now() - make_interval(days => 7 * w),
                   now() - make_interval(days => 7 * w),
                   NULL, 'StepCoin/1.0 (bench)', '203.0.113.7'
            FROM users u CROSS JOIN generate_series(1, %(w)s) w WHERE u.role = 'user'
            """,
            {"w": weeks},
        )
        conn.execute(
            "UPDATE settings SET value = to_jsonb(%(m)s::int) "
            "WHERE key = 'retention.step_records_months'",
            {"m": args.keep_months},
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return url


def sizes(url: str) -> dict[str, tuple[int, int]]:
    """Rows and bytes (tables, indexes, TOAST; every partition of step_records)."""
    found = {}
    with psycopg.connect(url) as conn:
        for table in TABLES:
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            size = conn.execute(
                "SELECT greatest(pg_total_relation_size(%s::regclass), "
                "(SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
                "FROM pg_partition_tree(%s::regclass)))",
                (table, table),
            ).fetchone()
            assert rows is not None and size is not None
            found[table] = (int(rows[0]), int(size[0]))
    return found


def month_digest(url: str, month: date) -> tuple[int, str]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), md5(coalesce(string_agg(r::text, '|' ORDER BY user_id, "
            "recorded_date, source), '')) FROM step_records r "
            "WHERE recorded_date >= %s AND recorded_date < %s",
            (month, date(month.year + month.month // 12, month.month % 12 + 1, 1)),
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


async def run_jobs(url: str, repository_dir: Path) -> dict[str, Any]:
    from stepcoin.backup.repository import LocalRepository
    from stepcoin.db import Database, session_scope
    from stepcoin.retention import service
    from stepcoin.wallet.service import check_ledger

    database = Database(url, pool_size=2)
    repository = LocalRepository(repository_dir)
    try:
        started = time.perf_counter()
        runs = await service.prune(database)
        pruned_s = time.perf_counter() - started
        started = time.perf_counter()
        archives = await service.archive_due(database, repository, scratch=repository_dir.parent)
        archived_s = time.perf_counter() - started
        async with session_scope(database) as session:
            ledger = await check_ledger(session)
        return {
            "runs": runs,
            "pruned_s": pruned_s,
            "archives": archives,
            "archived_s": archived_s,
            "ledger_ok": ledger.ok,
            "wallets": ledger.wallets_checked,
        }
    finally:
        await database.dispose()


async def restore(url: str, repository_dir: Path, month: date) -> float:
    from stepcoin.backup.repository import LocalRepository
    from stepcoin.db import Database
    from stepcoin.retention import service

    database = Database(url, pool_size=2)
    try:
        started = time.perf_counter()
        await service.restore_month(
            database, LocalRepository(repository_dir), month, scratch=repository_dir.parent
        )
        return time.perf_counter() - started
    finally:
        await database.dispose()


def mb(value: int) -> str:
    return f"{value / 1_048_576:,.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--keep-months", type=int, default=6)
    parser.add_argument("--resyncs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    if not args.server_url:
        raise SystemExit("--server-url (or DATABASE_URL) is required")

    started = time.perf_counter()
    url = make_database(args.server_url, args)
    print(
        f"data: {args.users:,} walkers x {args.days} days in {time.perf_counter() - started:.0f} s"
    )
    before = sizes(url)
    with psycopg.connect(url) as conn:
        oldest = conn.execute("SELECT min(recorded_date) FROM step_records").fetchone()
    assert oldest is not None and oldest[0] is not None
    first_full = date(oldest[0].year + oldest[0].month // 12, oldest[0].month % 12 + 1, 1)
    if oldest[0].day == 1:
        first_full = oldest[0]
    digest_before = month_digest(url, first_full)

    with tempfile.TemporaryDirectory(prefix="retention-bench-") as folder:
        repository_dir = Path(folder) / "repo"
        result = asyncio.run(run_jobs(url, repository_dir))
        after = sizes(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # what autovacuum does next: the space is reusable
        vacuumed = sizes(url)
        archive_bytes = sum(p.stat().st_size for p in repository_dir.rglob("*") if p.is_file())
        restored_s = asyncio.run(restore(url, repository_dir, first_full))
        digest_after = month_digest(url, first_full)

    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cpus, python {sys.version.split()[0]}"
    )
    print(
        f"run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, retention.step_records_months = "
        f"{args.keep_months}, {args.resyncs} superseded decision(s) per record\n"
    )
    print("| table | rows before | size before | rows after | size after | after VACUUM |")
    print("|---|---:|---:|---:|---:|---:|")
    for table in TABLES:
        (rb, sb), (ra, sa), (_rv, sv) = before[table], after[table], vacuumed[table]
        print(f"| {table} | {rb:,} | {mb(sb)} | {ra:,} | {mb(sa)} | {mb(sv)} |")
    print()
    for run in result["runs"]:
        print(
            f"- prune {run.job}: {run.batches} batches, {run.examined:,} examined, "
            f"{run.deleted:,} deleted"
        )
    print(f"- pruning took {result['pruned_s']:.1f} s")
    months = ", ".join(f"{a.month:%Y-%m} ({a.row_count:,} rows)" for a in result["archives"])
    print(f"- archived {len(result['archives'])} months in {result['archived_s']:.1f} s: {months}")
    print(f"- archive files: {mb(archive_bytes)} in the repository")
    print(
        f"- ledger check: {'OK' if result['ledger_ok'] else 'FAILED'} "
        f"({result['wallets']:,} wallets)"
    )
    same = digest_before == digest_after
    print(
        f"- restore of {first_full:%Y-%m}: {restored_s:.1f} s, {digest_after[0]:,} rows, "
        f"{'identical' if same else 'DIFFERENT'} to the rows before the archive (md5)"
    )
    if not args.keep:
        with psycopg.connect(args.server_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
    if not (result["ledger_ok"] and same):
        raise SystemExit(1)


if __name__ == "__main__":
    main()

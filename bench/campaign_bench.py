"""A campaign to many walkers through the real job: seconds, walkers/s, ledger rows, the check.

    python bench/campaign_bench.py --server-url postgresql://postgres@127.0.0.1:5432/postgres \
        [--walkers 100000] [--chunk 2000] [--coins 10] [--history 10] [--kill-midway] [--keep]

Makes a throwaway database (`stepcoin_campaign_bench`, dropped at the end unless --keep),
migrates it, writes `--walkers` walkers with `--history` ledger rows each (step rewards: the
ledger of a running service, not an empty one whose statistics say "no rows") and two admins
in set-based SQL,
then, as the console or the API would: creates a campaign to every walker, previews it, has
the second admin approve it (the total is above the default threshold) and starts it, which
queues campaigns:run. A real worker (`stepcoin worker`, a subprocess started and idle before
the run) pays it. The time is from the run's commit to the campaign's status `done` (polled
every 0.1 s). With --kill-midway the worker is SIGKILLed once half the walkers are paid and a
second worker, started 2.5 s later, finishes the run (it retries the dead one's job at its
start, the heartbeat being older than the 2 s these workers are given: that wait is in the
time). Then `stepcoin check-ledger` runs on the database, and the ledger
must hold exactly one campaign row per walker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import psycopg

NAME = "stepcoin_campaign_bench"


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def make_database(server_url: str, walkers: int, history: int) -> str:
    from stepcoin import migrate

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {NAME}")
    url = with_database(server_url, NAME)
    migrate.upgrade(url)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute(
            """
            INSERT INTO users (id, email, full_name, auth_method, role, created_at)
            SELECT md5('campaign-bench:' || n)::uuid, 'walker' || n || '@bench.stepcoin.test',
                   'Walker ' || n, 'email', 'user', now() - interval '30 days'
            FROM generate_series(1, %(n)s) AS n
            """,
            {"n": walkers},
        )
        conn.execute(
            """
            INSERT INTO users (id, email, full_name, auth_method, role)
            VALUES (md5('campaign-bench:admin1')::uuid, 'admin1@bench.stepcoin.test',
                    'Bench Admin One', 'email', 'admin'),
                   (md5('campaign-bench:admin2')::uuid, 'admin2@bench.stepcoin.test',
                    'Bench Admin Two', 'email', 'admin')
            """
        )
        # a ledger that is not empty (`history` step rewards of 10 coins per walker), so the
        # ledger's statistics and index are those of a running service, not of a new one
        conn.execute(
            """
            INSERT INTO coin_transactions (user_id, amount, transaction_type, reference_id,
                                           balance_after, created_at)
            SELECT u.id, 10, 'step_reward', 'bench:' || u.id || ':' || k, 10 * k,
                   now() - interval '30 days' + k * interval '1 day'
            FROM users u CROSS JOIN generate_series(1, %(k)s) AS k
            WHERE u.role = 'user'
            """,
            {"k": history},
        )
        conn.execute(
            """
            INSERT INTO wallets (user_id, available_coins, lifetime_earned)
            SELECT id, CASE WHEN role = 'user' THEN 10 * %(k)s ELSE 0 END,
                   CASE WHEN role = 'user' THEN 10 * %(k)s ELSE 0 END
            FROM users
            """,
            {"k": history},
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(
        f"data: {walkers:,} walkers, {walkers * history:,} ledger rows before the campaign, "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return url


def admin_id(n: int) -> uuid.UUID:
    import hashlib

    return uuid.UUID(hashlib.md5(f"campaign-bench:admin{n}".encode()).hexdigest())


def start_worker(url: str, *, quick_retry: bool, log: Any) -> subprocess.Popen[str]:
    """A `stepcoin worker`; quick_retry: a dead worker's jobs are retried after 2 s (the
    default, 60 s, would only add waiting to the --kill-midway figure)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        {
            "DATABASE_URL": url,
            "STEPCOIN_LOG_LEVEL": os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"),
        }
    )
    if quick_retry:
        env.update({"STEPCOIN_JOB_HEARTBEAT_SECONDS": "0.5", "STEPCOIN_JOB_STALLED_SECONDS": "2"})
    return subprocess.Popen(
        [sys.executable, "-m", "stepcoin.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )


def wait_idle_worker(url: str, timeout: float = 60) -> None:
    """The worker has started when it has run its start-up jobs."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
            ).fetchone()
            if row and row[0] >= 2:
                return
            time.sleep(0.2)
    raise SystemExit("the worker did not start")


async def start_campaign(url: str, coins: int, chunk: int) -> tuple[uuid.UUID, dict[str, Any]]:
    from stepcoin.campaigns import service
    from stepcoin.campaigns.schemas import CampaignIn
    from stepcoin.db import Database, session_scope

    database = Database(url, pool_size=2, max_overflow=0)
    try:
        async with session_scope(database) as session:
            from sqlalchemy import text

            await session.execute(
                text(
                    "UPDATE settings SET value = to_jsonb(CAST(:v AS int)) "
                    "WHERE key = 'economy.campaign_chunk_walkers'"
                ),
                {"v": chunk},
            )
        body = CampaignIn.model_validate(
            {
                "name": "Bench campaign",
                "message": "Thanks for walking with us!",
                "coins_per_walker": coins,
                "segment": {"all_walkers": True},
            }
        )
        async with session_scope(database) as session:
            row = await service.create(session, body, admin_id=admin_id(1))
        async with session_scope(database) as session:
            preview = await service.preview(session, row["id"], admin_id=admin_id(1))
        async with session_scope(database) as session:
            await service.approve(session, row["id"], admin_id=admin_id(2))
        async with session_scope(database) as session:
            await service.start(session, row["id"], admin_id=admin_id(1))
        return row["id"], preview
    finally:
        await database.dispose()


def progress(conn: psycopg.Connection[Any], campaign_id: uuid.UUID) -> tuple[str, int]:
    row = conn.execute(
        "SELECT status, walkers_paid FROM campaigns WHERE id = %s", (campaign_id,)
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-url", required=True, help="any database of the server")
    parser.add_argument("--walkers", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=2_000)
    parser.add_argument("--coins", type=int, default=10)
    parser.add_argument(
        "--history", type=int, default=10, help="ledger rows per walker before the campaign"
    )
    parser.add_argument("--kill-midway", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--worker-log", help="a file for the workers' stderr")
    args = parser.parse_args()

    url = make_database(args.server_url, args.walkers, args.history)
    log = open(args.worker_log, "w") if args.worker_log else subprocess.DEVNULL  # noqa: SIM115
    workers = [start_worker(url, quick_retry=args.kill_midway, log=log)]
    try:
        wait_idle_worker(url)
        campaign_id, preview = asyncio.run(start_campaign(url, args.coins, args.chunk))
        print(f"preview: {preview['walkers']:,} walkers, {preview['total_coins']:,} coins")
        started = time.perf_counter()
        killed_at = None
        marks: list[tuple[float, int]] = []
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                status, paid = progress(conn, campaign_id)
                if not marks or paid >= marks[-1][1] + args.walkers // 10:
                    marks.append((time.perf_counter() - started, paid))
                if status == "done":
                    break
                if args.kill_midway and killed_at is None and paid >= args.walkers // 2:
                    workers[0].send_signal(signal.SIGKILL)
                    workers[0].wait(10)
                    killed_at = (time.perf_counter() - started, paid)
                    # a new worker retries the dead one's jobs at its start once their
                    # heartbeat is stale (2 s here), else at the next minute
                    time.sleep(2.5)
                    workers.append(start_worker(url, quick_retry=True, log=log))
                if time.perf_counter() - started > 900:
                    raise SystemExit(f"not done after 900 s ({paid:,} paid)")
                time.sleep(0.1)
        seconds = time.perf_counter() - started
        with psycopg.connect(url) as conn:
            rows, distinct, coins = conn.execute(
                "SELECT count(*), count(DISTINCT user_id), coalesce(sum(amount), 0) "
                "FROM coin_transactions WHERE transaction_type = 'campaign_reward'"
            ).fetchone() or (0, 0, 0)
            _, paid = progress(conn, campaign_id)
        checked = time.perf_counter()
        env = {**os.environ, "DATABASE_URL": url}
        check = subprocess.run(
            [sys.executable, "-m", "stepcoin.cli", "check-ledger"],
            env=env,
            capture_output=True,
            text=True,
        )
        check_seconds = time.perf_counter() - checked
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    worker.kill()
        if not args.keep:
            with psycopg.connect(args.server_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")

    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"chunk: {args.chunk:,} walkers per transaction")
    if killed_at is not None:
        print(f"worker SIGKILLed at {killed_at[0]:.1f} s with {killed_at[1]:,} walkers paid")
    print("progress: " + ", ".join(f"{paid:,} at {at:.1f} s" for at, paid in marks))
    print(f"run: {seconds:.1f} s, {args.walkers / seconds:,.0f} walkers/s")
    print(f"ledger: {rows:,} campaign rows for {distinct:,} walkers, {coins:,} coins")
    print(f"progress: {paid:,} walkers paid (campaign row)")
    print(f"check-ledger: exit {check.returncode} in {check_seconds:.1f} s")
    print(check.stdout.strip())
    ok = check.returncode == 0 and rows == distinct == args.walkers == paid
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

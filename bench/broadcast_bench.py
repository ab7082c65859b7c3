"""A push broadcast to 100,000 devices through the real worker and the push stand-ins over
real HTTP: time to queue, send throughput, CPU.

    python bench/broadcast_bench.py --server-url postgresql://postgres@127.0.0.1:5432/postgres \
        [--walkers 100000] [--concurrency 16] [--workers 1] [--rate 5000] [--keep]

Makes a throwaway database (`stepcoin_broadcast_bench`, dropped at the end unless --keep),
migrates it and writes, in set-based SQL, `--walkers` walkers with one push device each (half
Android: FCM HTTP v1 over HTTP/1.1; half iOS: APNs over TLS + HTTP/2), preferences without
quiet hours (the bench runs at any hour), and two admins. It starts the push stand-ins
(`python -m push_standin`, a process of their own) and `--workers` real `stepcoin worker`
processes pointed at them (`STEPCOIN_JOB_CONCURRENCY=--concurrency`), sets
`notify.pushes_per_second_per_platform` to `--rate`, then, as the API would: creates a
broadcast to every walker, previews it, has the second admin approve it and starts it.

Measured from the start's commit: the time until every notification is written and its push
queued (the broadcast's status `done`), the time until no push is pending, the sends per
second (deliveries `sent` over that time, and per second of the run), and the CPU seconds of
the workers, the stand-ins and the whole machine (`/proc/stat`: the machine is shared, other
sessions' work is in that figure).
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

import psutil
import psycopg

NAME = "stepcoin_broadcast_bench"


def with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def admin_id(n: int) -> uuid.UUID:
    import hashlib

    return uuid.UUID(hashlib.md5(f"broadcast-bench:admin{n}".encode()).hexdigest())


def make_database(server_url: str, walkers: int) -> str:
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
            SELECT md5('broadcast-bench:' || n)::uuid, 'walker' || n || '@bench.stepcoin.test',
                   'Walker ' || n, 'email', 'user', now() - interval '30 days'
            FROM generate_series(1, %(n)s) AS n
            """,
            {"n": walkers},
        )
        conn.execute(
            """
            INSERT INTO users (id, email, full_name, auth_method, role)
            VALUES (%(a1)s, 'admin1@bench.stepcoin.test', 'Bench Admin One', 'email', 'admin'),
                   (%(a2)s, 'admin2@bench.stepcoin.test', 'Bench Admin Two', 'email', 'admin')
            """,
            {"a1": admin_id(1), "a2": admin_id(2)},
        )
        conn.execute("INSERT INTO wallets (user_id) SELECT id FROM users")
        # one device each: odd walkers Android (an FCM-like token), even walkers iOS (hex)
        conn.execute(
            """
            INSERT INTO push_devices (user_id, platform, environment, token, app_version,
                                      timezone)
            SELECT u.id,
                   CASE WHEN n %% 2 = 1 THEN 'android' ELSE 'ios' END, 'production',
                   CASE WHEN n %% 2 = 1 THEN 'bench-' || n || ':' || repeat(md5(n::text), 4)
                        ELSE md5(n::text) || md5('x' || n) END,
                   '3.1.0', 'Europe/Berlin'
            FROM generate_series(1, %(n)s) AS n
            JOIN users u ON u.id = md5('broadcast-bench:' || n)::uuid
            """,
            {"n": walkers},
        )
        conn.execute(
            """
            INSERT INTO notification_preferences (user_id, quiet_start, quiet_end)
            SELECT id, '00:00', '00:00' FROM users WHERE role = 'user'
            """
        )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(
        f"data: {walkers:,} walkers with one push device each "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return url


def start_standins() -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "push_standin"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    env: dict[str, str] = {}
    deadline = time.monotonic() + 60
    while len(env) < 9 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("export "):
            key, _, value = line[len("export ") :].strip().partition("=")
            env[key] = value
    if len(env) < 9:
        raise SystemExit("the push stand-ins did not start")
    return proc, env


def start_worker(
    url: str, push_env: dict[str, str], concurrency: int, log: Any
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(push_env)
    env.update(
        {
            "DATABASE_URL": url,
            "STEPCOIN_JOB_CONCURRENCY": str(concurrency),
            "STEPCOIN_LOG_LEVEL": os.environ.get("BENCH_WORKER_LOG_LEVEL", "ERROR"),
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "stepcoin.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )


def wait_idle_worker(url: str, timeout: float = 60) -> None:
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


async def start_broadcast(url: str, rate: int) -> tuple[uuid.UUID, dict[str, Any]]:
    from sqlalchemy import text

    from stepcoin.campaigns import broadcasts
    from stepcoin.campaigns.schemas import BroadcastIn
    from stepcoin.db import Database, session_scope

    database = Database(url, pool_size=2, max_overflow=0)
    try:
        async with session_scope(database) as session:
            await session.execute(
                text(
                    "UPDATE settings SET value = to_jsonb(CAST(:v AS int)) "
                    "WHERE key = 'notify.pushes_per_second_per_platform'"
                ),
                {"v": rate},
            )
        body = BroadcastIn.model_validate(
            {
                "title": "Winter challenge",
                "body": "Walk 100 km in December and win a jacket.",
                "segment": {"all_walkers": True},
            }
        )
        async with session_scope(database) as session:
            row = await broadcasts.create(session, body, admin_id=admin_id(1))
        async with session_scope(database) as session:
            preview = await broadcasts.preview(session, row["id"], admin_id=admin_id(1))
        async with session_scope(database) as session:
            await broadcasts.approve(session, row["id"], admin_id=admin_id(2))
        async with session_scope(database) as session:
            await broadcasts.start(session, row["id"], admin_id=admin_id(1), expires_hours=24)
        return row["id"], preview
    finally:
        await database.dispose()


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-url", required=True, help="any database of the server")
    parser.add_argument("--walkers", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16, help="jobs per worker at once")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rate", type=int, default=5000, help="pushes/s per platform, process")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--worker-log", help="a file for the workers' stderr")
    args = parser.parse_args()

    url = make_database(args.server_url, args.walkers)
    log = open(args.worker_log, "w") if args.worker_log else subprocess.DEVNULL  # noqa: SIM115
    standins, push_env = start_standins()
    workers = [start_worker(url, push_env, args.concurrency, log) for _ in range(args.workers)]
    key = None
    try:
        wait_idle_worker(url)
        watched = [psutil.Process(w.pid) for w in workers]
        stand_in = psutil.Process(standins.pid)
        worker_cpu0, standin_cpu0 = cpu_seconds(watched), cpu_seconds([stand_in])
        machine0 = psutil.cpu_times()
        broadcast_id, preview = asyncio.run(start_broadcast(url, args.rate))
        key = f"broadcast:{broadcast_id}"
        print(f"preview: {preview['walkers']:,} walkers, devices {preview['devices']}")
        started = time.perf_counter()
        queued_at = None
        marks: list[tuple[float, int]] = []
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT status, walkers_queued FROM broadcasts WHERE id = %s", (broadcast_id,)
                ).fetchone()
                assert row is not None
                if queued_at is None and row[0] == "done":
                    queued_at = time.perf_counter() - started
                pending = conn.execute(
                    "SELECT count(*) FROM notifications WHERE kind = 'broadcast' "
                    "AND dedupe_key = %s AND push_status = 'pending'",
                    (key,),
                ).fetchone()
                done_now = row[1] - (pending[0] if pending else 0)
                if not marks or done_now >= marks[-1][1] + args.walkers // 10:
                    marks.append((time.perf_counter() - started, done_now))
                if queued_at is not None and pending is not None and pending[0] == 0:
                    break
                if time.perf_counter() - started > 1800:
                    raise SystemExit(f"not done after 1800 s ({done_now:,} finished)")
                time.sleep(0.25)
        seconds = time.perf_counter() - started
        worker_cpu = cpu_seconds(watched) - worker_cpu0
        standin_cpu = cpu_seconds([stand_in]) - standin_cpu0
        machine1 = psutil.cpu_times()
        machine_busy = (machine1.user + machine1.system + machine1.nice) - (
            machine0.user + machine0.system + machine0.nice
        )
        with psycopg.connect(url) as conn:
            notes = dict(
                conn.execute(
                    "SELECT push_status, count(*) FROM notifications WHERE dedupe_key = %s "
                    "GROUP BY 1",
                    (key,),
                ).fetchall()
            )
            deliveries = dict(
                conn.execute(
                    "SELECT x.platform || ':' || x.status, count(*) FROM notification_deliveries x "
                    "JOIN notifications n ON n.id = x.notification_id WHERE n.dedupe_key = %s "
                    "GROUP BY 1",
                    (key,),
                ).fetchall()
            )
            per_second = conn.execute(
                "SELECT x.platform, max(c) FROM (SELECT platform, "
                "date_trunc('second', updated_at) AS s, count(*) AS c "
                "FROM notification_deliveries WHERE status = 'sent' GROUP BY 1, 2) x "
                "GROUP BY 1"
            ).fetchall()
    finally:
        for proc in [*workers, standins]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if not args.keep:
            with psycopg.connect(args.server_url, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")

    sent = sum(v for k, v in deliveries.items() if k.endswith(":sent"))
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(
        f"workers: {args.workers} x concurrency {args.concurrency}; "
        f"throttle {args.rate:,} pushes/s per platform and process"
    )
    print(f"queued (every notification written, its push queued): {queued_at:.1f} s")
    print("progress (pushes finished): " + ", ".join(f"{n:,} at {t:.1f} s" for t, n in marks))
    print(f"all sent: {seconds:.1f} s, {sent / seconds:,.0f} pushes/s on average")
    print("busiest second per platform: " + ", ".join(f"{p} {c:,}" for p, c in per_second))
    print(f"notifications: {notes}")
    print(f"deliveries: {deliveries}")
    print(
        f"CPU: workers {worker_cpu:.1f} s ({worker_cpu / seconds * 100:.0f}% of one core), "
        f"stand-ins {standin_cpu:.1f} s ({standin_cpu / seconds * 100:.0f}%), machine "
        f"{machine_busy:.1f} s ({machine_busy / seconds * 100:.0f}% of one core, shared)"
    )
    ok = sent == args.walkers and notes.get("sent") == args.walkers
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

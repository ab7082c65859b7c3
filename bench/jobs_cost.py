"""What each scheduled job costs once, on a database as it is (issue 13): every periodic task of
the worker run by hand, one after the other, each with its wall time and its costliest
statements (pg_stat_statements, reset before each job).

Run it on a database in the state you want to know about: after a load (`bench/run.sh` with
BENCH_KEEP_DB=1: the queues drained, the statistics as the runs left them), or a big generated
one (`bench/generate.py --users 200000`). The hourly and daily jobs never run inside a
measured window of `bench/run.sh`; this is where they are seen (BENCHMARKS.md run 23).

    python bench/jobs_cost.py --database-url postgresql://postgres@127.0.0.1:5432/stepcoin_bench_...
        [--only wallet:check_ledger ...] [--statements 3]

The database needs the pg_stat_statements extension (CREATE EXTENSION pg_stat_statements; the
server loads it with shared_preload_libraries). A job that takes procrastinate's context is
listed and skipped. Jobs write what they would write (held orders released, boards refreshed,
retention applied): use a copy.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
import time

import asyncpg

from stepcoin.db import Database, libpq_url
from stepcoin.queue import JobRuntime
from stepcoin.worker import build_job_app

TOP = """
SELECT calls, round(total_exec_time::numeric, 1) AS ms,
       shared_blks_hit + shared_blks_read AS pages,
       left(regexp_replace(query, '\\s+', ' ', 'g'), 100) AS query
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND query NOT LIKE '%pg_stat_statements%'
ORDER BY total_exec_time DESC LIMIT $1
"""


async def run(url: str, only: list[str], statements: int) -> int:
    database = Database(url, pool_size=2)
    JobRuntime.database = database
    app = build_job_app()
    periodic = sorted(
        {(p.task.name, p.cron) for p in app.periodic_registry.periodic_tasks.values()}
    )
    admin = await asyncpg.connect(libpq_url(url))
    try:
        for name, cron in periodic:
            if only and name not in only:
                continue
            task = app.tasks[name]
            if task.pass_context:
                print(f"{name} ({cron}): takes the job's context, skipped")
                continue
            wanted = inspect.signature(task.func).parameters
            kwargs = {"timestamp": int(time.time())} if "timestamp" in wanted else {}
            await admin.execute("SELECT pg_stat_statements_reset()")
            started = time.perf_counter()
            try:
                result: object = await task.func(**kwargs)
            except Exception as error:  # a job's failure is a finding, not the tool's
                result = f"failed: {error!r}"
            took = (time.perf_counter() - started) * 1000
            print(f"{name} ({cron}): {took:,.0f} ms -> {str(result)[:120]}")
            for row in await admin.fetch(TOP, statements):
                print(
                    f"    {row['calls']:>6} calls {row['ms']:>10} ms {row['pages']:>9} pages  "
                    f"{row['query']}"
                )
    finally:
        await admin.close()
        await database.dispose()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--only", nargs="*", default=[], help="these tasks only (by name)")
    parser.add_argument("--statements", type=int, default=3, help="statements shown per job")
    args = parser.parse_args()
    return asyncio.run(run(args.database_url, args.only, args.statements))


if __name__ == "__main__":
    sys.exit(main())

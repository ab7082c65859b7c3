"""What the rate limits cost a request: the one statement of stepcoin.ratelimit.take, alone.

    python bench/ratelimit_cost.py --database-url postgresql://postgres@127.0.0.1:5432/DB

On a migrated StepCoin database (it writes only rate_limit_buckets, and empties it after):
serial calls (the latency one request adds), then 16 connections at once for a few seconds,
every call counting on one shared address key (the worst case: every walker behind one
address, as in the load benchmark) and on its own account key. Reports calls/s, the
median and p99 latency, and the PostgreSQL backends' CPU per call (psutil, this database's
backends only).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import asyncpg
import psutil

from stepcoin.ratelimit import _Ask, parse_limit, take

LIMIT = parse_limit("1000000/second")


def _asks(account: str) -> list[_Ask]:
    return [
        _Ask("bench:address:127.0.0.1", "bench_per_address", LIMIT),
        _Ask(f"bench:account:{account}", "bench_per_account", LIMIT),
    ]


def _backend_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


async def main_async(url: str, serial: int, seconds: float, concurrency: int) -> None:
    pool = await asyncpg.create_pool(url, min_size=concurrency, max_size=concurrency)
    assert pool is not None
    async with pool.acquire() as conn:
        pids = [
            r[0]
            for r in await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            )
        ]
    accounts = [str(uuid.uuid4()) for _ in range(1000)]
    async with pool.acquire() as driver:
        for i in range(200):  # warm-up: prepared statement, cached plan
            await take(driver, _asks(accounts[i % 1000]))
        samples = []
        cpu0 = _backend_cpu(pids)
        for i in range(serial):
            t0 = time.perf_counter()
            await take(driver, _asks(accounts[i % 1000]))
            samples.append((time.perf_counter() - t0) * 1000)
        cpu = (_backend_cpu(pids) - cpu0) / serial * 1e6
    samples.sort()
    print(
        f"serial: {serial} calls, median {statistics.median(samples):.3f} ms, "
        f"p99 {samples[int(len(samples) * 0.99) - 1]:.3f} ms, PostgreSQL CPU {cpu:.0f} µs/call"
    )

    done = 0
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal done
        async with pool.acquire() as driver:
            i = n
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                await take(driver, _asks(accounts[i % 1000]))
                latencies.append((time.perf_counter() - t0) * 1000)
                done += 1
                i += concurrency

    cpu0 = _backend_cpu(pids)
    t0 = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - t0
    cpu = (_backend_cpu(pids) - cpu0) / max(done, 1) * 1e6
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"c={concurrency}: {done / elapsed:,.0f} calls/s, median "
        f"{statistics.median(latencies):.3f} ms, p99 {p99:.3f} ms, PostgreSQL CPU {cpu:.0f} "
        "µs/call (one hot address key, 1,000 account keys)"
    )
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM rate_limit_buckets WHERE key LIKE 'bench:%'")
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--serial", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main_async(args.database_url, args.serial, args.seconds, args.concurrency))


if __name__ == "__main__":
    main()

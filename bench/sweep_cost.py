"""What the order sweep costs per order, in-process (issue 13): worker CPU, PostgreSQL CPU,
statements and transactions.

Each round places `--per-sweep` orders (stepcoin_place_order, as the API does; bench products
without a Shopify variant, as bench/load.py's `order` scenario, or with `--shopify` products of
an in-process Shopify stand-in, whose own CPU then counts as the worker's) and then runs one sweep
(shop.tasks.submit_pending_orders) on its own, counting the statements and commits its engine
sends, the process CPU it takes and the CPU of this database's backends meanwhile. The
placements are not measured. An A/B of two versions of the code: run it with PYTHONPATH
pointing at the other version's src/ (e.g. a `git archive` of the base commit), alternated.

    python bench/sweep_cost.py --database-url postgresql://postgres@127.0.0.1:5432/DB \
        --rounds 20 --per-sweep 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from typing import Any

import asyncpg
import orjson
import psutil
from sqlalchemy import event

from stepcoin.config import STANDIN_ACCESS_TOKEN, STANDIN_SHOP_DOMAIN
from stepcoin.db import Database
from stepcoin.shop import runtime
from stepcoin.shop.orders import PLACE_ORDER_SQL, new_order_code
from stepcoin.shop.shopify import ShopifyClient
from stepcoin.shop.tasks import submit_pending_orders, sync_catalogue

ADDRESS = {"name": "Ada Walker", "line1": "1 Step Street", "city": "Berlin", "country": "DE"}


async def _products(conn: asyncpg.Connection) -> list[int]:
    found = await conn.fetch(
        "SELECT id FROM reward_products WHERE title LIKE 'Bench product %' ORDER BY id"
    )
    if found:
        return [r["id"] for r in found]
    rows = await conn.fetch(
        "INSERT INTO reward_products (title, coin_price, stock_quantity, category) "
        "SELECT 'Bench product ' || n, 1 + n % 5, 10000000, 'bench' "
        "FROM generate_series(1, 50) n RETURNING id"
    )
    return [r["id"] for r in rows]


async def _standin_products(database: Database) -> list[int]:
    """Fifty products of an in-process stand-in, synced into the catalogue: every job talks to
    the stand-in from now on."""
    # lazy: the stand-in is a development tool, needed only with --shopify
    import httpx

    from shopify_standin import ShopifyStandIn

    shop = ShopifyStandIn(
        access_token=STANDIN_ACCESS_TOKEN,
        shop_domain=STANDIN_SHOP_DOMAIN,
        bucket_size=1e9,  # no query-cost throttling: the sweep's cost, not Shopify's limit
        restore_rate=1e9,
    )
    for n in range(50):
        shop.add_product(title=f"Stand-in product {n}", price="0.05", inventory=10_000_000)
    app = shop.build_app()

    def client() -> ShopifyClient:
        return ShopifyClient(
            shop_domain=STANDIN_SHOP_DOMAIN,
            access_token=STANDIN_ACCESS_TOKEN,
            api_version="2025-01",
            transport=httpx.ASGITransport(app=app),
            base_url=f"http://{STANDIN_SHOP_DOMAIN}/admin/api/2025-01/graphql.json",
        )

    runtime.override_client_factory(client)
    await sync_catalogue(database, trigger="bench")
    async with database.engine.connect() as conn:
        rows = await conn.exec_driver_sql(
            "SELECT id FROM reward_products WHERE title LIKE 'Stand-in product %' "
            "AND is_active ORDER BY id"
        )
        return [r[0] for r in rows]


async def _backend_cpu(conn: asyncpg.Connection, exclude: int) -> float:
    pids = [
        r["pid"]
        for r in await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> $1",
            exclude,
        )
    ]
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


async def main(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    url = args.database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    database = Database(url, pool_size=4)
    counts = {"statements": 0, "commits": 0}

    def on_statement(*_: Any) -> None:
        counts["statements"] += 1

    def on_commit(*_: Any) -> None:
        counts["commits"] += 1

    event.listen(database.engine.sync_engine, "before_cursor_execute", on_statement)
    event.listen(database.engine.sync_engine, "commit", on_commit)
    conn = await asyncpg.connect(args.database_url)
    me = await conn.fetchval("SELECT pg_backend_pid()")
    products = await (_standin_products(database) if args.shopify else _products(conn))
    walkers = [
        r["id"]
        for r in await conn.fetch(
            "SELECT u.id FROM users u JOIN wallets w ON w.user_id = u.id "
            "WHERE w.available_coins > 1000 ORDER BY u.id LIMIT 2000"
        )
    ]

    async def never(order_id: uuid.UUID) -> None:
        raise AssertionError(f"order {order_id} handed to a retry job")

    await submit_pending_orders(database, defer_retry=never)  # warm: the pool, the caches
    totals = {"orders": 0, "worker_s": 0.0, "pg_s": 0.0, "statements": 0, "commits": 0}
    outcomes: dict[str, int] = {}
    for _ in range(args.rounds):
        for _ in range(args.per_sweep):
            picked = rng.sample(products, 2)
            await conn.fetchrow(
                PLACE_ORDER_SQL,
                rng.choice(walkers),
                str(uuid.uuid4()),
                "fp",
                uuid.uuid4(),
                [new_order_code()],
                picked,
                [1, 1],
                orjson.dumps(ADDRESS).decode(),
            )
        await conn.execute(
            "DELETE FROM procrastinate_jobs WHERE task_name = 'shop:submit_pending' "
            "AND status = 'todo'"
        )
        counts.update(statements=0, commits=0)
        pg_before = await _backend_cpu(conn, me)
        cpu_before = time.process_time()
        done = await submit_pending_orders(database, defer_retry=never)
        totals["worker_s"] += time.process_time() - cpu_before
        totals["pg_s"] += await _backend_cpu(conn, me) - pg_before
        totals["statements"] += counts["statements"]
        totals["commits"] += counts["commits"]
        totals["orders"] += sum(done.values())
        for key, value in done.items():
            outcomes[key] = outcomes.get(key, 0) + value
    await conn.close()
    await database.dispose()
    n = max(totals["orders"], 1)
    return {
        "per_sweep": args.per_sweep,
        "shopify": args.shopify,
        "rounds": args.rounds,
        "outcomes": outcomes,
        "worker_cpu_ms_per_order": round(totals["worker_s"] / n * 1e3, 3),
        "pg_cpu_ms_per_order": round(totals["pg_s"] / n * 1e3, 3),
        "statements_per_order": round(totals["statements"] / n, 2),
        "transactions_per_order": round(totals["commits"] / n, 2),
        "statements_per_sweep": round(totals["statements"] / args.rounds, 1),
        "transactions_per_sweep": round(totals["commits"] / args.rounds, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-sweep", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--shopify", action="store_true", help="orders of stand-in products")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))

"""What every database session of the application sets at connect (stepcoin.db.SESSION_SETTINGS).

JIT is off: PostgreSQL compiles a statement whose estimated cost passes jit_above_cost, and a
drained queue's estimate passes it (the boards' refresh with nothing to do spent 25-256 ms
compiling: BENCHMARKS.md run 23). Each test makes every statement a candidate
(`jit_above_cost = 0`, in a transaction of its own) and looks for compiled functions in the
plan, so it fails wherever a session of ours would compile.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from stepcoin.db import Database, libpq_url, psycopg_connect_kwargs

_EXPLAIN = "EXPLAIN (ANALYZE, FORMAT JSON) SELECT sum(x) FROM generate_series(1, 1000) x"


def _compiled(plan: Any) -> int:
    """Functions JIT compiled for a plan in EXPLAIN's JSON (0: none)."""
    document = json.loads(plan) if isinstance(plan, str) else plan
    return int(document[0].get("JIT", {}).get("Functions", 0))


@pytest.fixture
async def jit_available(engine: Any) -> None:
    async with engine.begin() as conn:
        await conn.exec_driver_sql("SET LOCAL jit = on")  # pg_jit_available() is false while off
        if not (await conn.exec_driver_sql("SELECT pg_jit_available()")).scalar_one():
            pytest.skip("this PostgreSQL server has no JIT provider: nothing to turn off")


async def test_the_orm_sessions_compile_nothing(app: Any, jit_available: None) -> None:
    database: Database = app.state.database
    async with database.engine.begin() as conn:
        assert (await conn.exec_driver_sql("SHOW jit")).scalar_one() == "off"
        await conn.exec_driver_sql("SET LOCAL jit_above_cost = 0")
        assert _compiled((await conn.exec_driver_sql(_EXPLAIN)).scalar_one()) == 0


async def test_the_fast_pool_compiles_nothing(app: Any, jit_available: None) -> None:
    pool = await app.state.database.fast_pool()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL jit_above_cost = 0")
        assert _compiled(await conn.fetchval(_EXPLAIN)) == 0


async def test_the_job_queues_sessions_compile_nothing(
    database_url: str, jit_available: None
) -> None:
    """The queue's psycopg sessions (stepcoin.worker.open_jobs connects with these kwargs)."""
    async with await psycopg.AsyncConnection.connect(
        libpq_url(database_url), **psycopg_connect_kwargs(False)
    ) as conn:
        await conn.execute("SET LOCAL jit_above_cost = 0")
        row = await (await conn.execute(_EXPLAIN)).fetchone()
        assert row is not None and _compiled(row[0]) == 0


async def test_a_session_with_jit_on_would_compile(database_url: str, jit_available: None) -> None:
    """The control: the same statement compiles in a session with PostgreSQL's default
    (jit = on), else the tests above could not fail."""
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as conn:
        await conn.execute("SET LOCAL jit = on")
        await conn.execute("SET LOCAL jit_above_cost = 0")
        row = await (await conn.execute(_EXPLAIN)).fetchone()
        assert row is not None and _compiled(row[0]) > 0

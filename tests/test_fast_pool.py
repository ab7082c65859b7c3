"""The read pool (issue 13): hot reads on bare asyncpg connections released without a reset.

Skipping asyncpg's reset query is only safe while no session state is ever left on those
connections; these tests run the routes that use the pool and then look at every connection
for exactly what the reset would have undone.
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from stepcoin.db import Database, SessionDriver
from tests.conftest import bearer, register
from tests.notify.conftest import android_token
from tests.notify.helpers import add_device
from tests.steps.helpers import make_admin
from tests.steps.test_review import flagged_walker, queue

_LEFTOVERS = """
SELECT
  (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
  (SELECT count(*) FROM pg_listening_channels()),
  (SELECT count(*) FROM pg_cursors WHERE name <> ''),  -- '' is this query's own portal
  -- a session value equal to what RESET restores is no state: asyncpg's type introspection
  -- turns jit off and sets it back to its old value at session level
  (SELECT count(*) FROM pg_settings
     WHERE source = 'session' AND setting IS DISTINCT FROM reset_val),
  (SELECT count(*) FROM pg_stat_activity
     WHERE pid = pg_backend_pid() AND application_name = 'stepcoin'),
  pg_current_xact_id_if_assigned() IS NULL
"""


async def assert_no_leftovers(app) -> None:
    """Every connection of the fast pool holds none of the state a reset would undo."""
    pool = await app.state.database.fast_pool()
    held = [await pool.acquire() for _ in range(pool.get_size())]
    try:
        for conn in held:
            assert tuple(await conn.fetchrow(_LEFTOVERS)) == (0, 0, 0, 0, 1, True)
    finally:
        for conn in held:
            await pool.release(conn)


async def test_hot_reads_leave_no_session_state_on_the_fast_pool(app, client):
    accounts = [await register(client) for _ in range(3)]
    paths = ("/v1/me", "/v1/wallet", "/v1/me/sessions")
    answers = await asyncio.gather(
        *(
            client.get(path, headers=bearer(account["access_token"]))
            for account in accounts
            for path in paths
            for _ in range(3)
        )
    )
    assert {answer.status_code for answer in answers} == {200}
    database: Database = app.state.database
    pool = await database.fast_pool()
    assert 1 <= pool.get_size() <= database.fast_pool_size
    held = [await pool.acquire() for _ in range(pool.get_size())]
    try:
        for conn in held:
            row = await conn.fetchrow(_LEFTOVERS)
            session_set = await conn.fetch(
                "SELECT name, setting, reset_val FROM pg_settings WHERE source = 'session'"
            )
            assert tuple(row) == (0, 0, 0, 0, 1, True), [tuple(r) for r in session_set]
    finally:
        for conn in held:
            await pool.release(conn)


async def test_review_decisions_leave_no_session_state_on_the_fast_pool(app, client, engine):
    """A review's decision runs its two statements on the fast pool (steps.hot.HotReview): the
    decision, the ledger, the notification and its push job (a NOTIFY) leave nothing behind."""
    admin = await make_admin(client, engine)
    decided = []
    for n in range(3):
        walker = await flagged_walker(client)
        who = {"headers": bearer(walker["access_token"])}
        await add_device(client, who, "android", android_token(90 + n))
        items = (await queue(client, admin))["items"]
        [mine] = [i for i in items if i["user"]["id"] == walker["user"]["id"]]
        decided.append(
            client.post(f"/v1/admin/validations/{mine['id']}/approve", headers=bearer(admin))
        )
    answers = await asyncio.gather(*decided)
    assert {answer.status_code for answer in answers} == {200}
    await assert_no_leftovers(app)


async def test_a_session_driver_runs_in_the_sessions_transaction(app):
    """db.SessionDriver (review.decide in a caller's transaction): its statements see the
    session's uncommitted rows and are rolled back with it."""
    async with app.state.database.sessionmaker() as session:
        driver = SessionDriver(session)
        await session.execute(text("CREATE TEMPORARY TABLE t_driver (n int) ON COMMIT DROP"))
        await session.execute(text("INSERT INTO t_driver VALUES (1), (2)"))
        assert await driver.fetchval("SELECT sum(n) FROM t_driver WHERE n >= $1", 1) == 3
        rows = await driver.fetch("SELECT n, n * $1 FROM t_driver ORDER BY n", 10)
        assert [(r[0], r[1]) for r in rows] == [(1, 10), (2, 20)]
        await driver.fetchval("SELECT 1 FROM (SELECT set_config('stepcoin.t', 'x', true)) s")
        assert await driver.fetchval("SELECT current_setting('stepcoin.t', true)") == "x"
        await session.rollback()
        assert await driver.fetchval("SELECT to_regclass('t_driver') IS NULL") is True


async def test_a_fast_pool_connection_is_not_reset_on_release(app):
    """The hook really replaces the reset: a marker set on a connection survives a release
    (which is why nothing may ever set one outside this test)."""
    database: Database = app.state.database
    pool = await database.fast_pool()
    conn = await pool.acquire()
    pid = conn.get_server_pid()
    await conn.execute("SELECT set_config('application_name', 'stepcoin-marker', false)")
    await pool.release(conn)
    held = [await pool.acquire() for _ in range(pool.get_size())]
    try:
        same = [c for c in held if c.get_server_pid() == pid]
        assert same, "the connection was replaced"
        assert await same[0].fetchval("SHOW application_name") == "stepcoin-marker"
        await same[0].execute("RESET application_name")  # put it back for the other tests
        assert await same[0].fetchval("SHOW application_name") == "stepcoin"
    finally:
        for c in held:
            await pool.release(c)


async def test_the_fast_pool_is_closed_with_the_database(database_url):
    database = Database(database_url, pool_size=2)
    pool = await database.fast_pool()
    assert await database.fast_pool() is pool  # opened once
    assert await pool.fetchval("SELECT 1") == 1
    await database.dispose()
    assert pool._closed
    reopened = await database.fast_pool()
    assert reopened is not pool
    await database.dispose()


async def test_a_deactivated_account_is_refused_on_the_pooled_check(app, client):
    account = await register(client)
    headers = bearer(account["access_token"])
    assert (await client.get("/v1/me/sessions", headers=headers)).status_code == 200
    async with app.state.database.engine.begin() as conn:
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute(
            "UPDATE users SET is_active = false WHERE id = $1", uuid.UUID(account["user"]["id"])
        )
    answer = await client.get("/v1/me/sessions", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid_token"


async def test_the_engine_keeps_its_whole_budget_open(database_url):
    """pool_size + max_overflow connections at most, as before, but none is closed on return:
    a process busier than pool_size no longer opens a PostgreSQL session every few requests."""
    database = Database(database_url, pool_size=2, max_overflow=3)
    try:
        connections = [await database.engine.connect() for _ in range(5)]
        pids = set()
        for conn in connections:
            raw = await conn.get_raw_connection()
            pids.add(raw.driver_connection.get_server_pid())
        for conn in connections:
            await conn.close()
        pool = database.engine.pool
        assert pool.checkedin() == 5  # type: ignore[attr-defined]
        again = [await database.engine.connect() for _ in range(5)]
        for conn in again:
            raw = await conn.get_raw_connection()
            assert raw.driver_connection.get_server_pid() in pids
        for conn in again:
            await conn.close()
    finally:
        await database.dispose()

"""The API behind PgBouncer 1.18 in transaction pooling mode, under concurrent requests.

Transaction pooling hands each transaction to any server connection, so server-side prepared
statements and session state do not survive: STEPCOIN_DATABASE_PGBOUNCER=true turns asyncpg's
statement caches off (and psycopg's automatic prepares). This test starts a real PgBouncer in
front of the test database and runs register, concurrent step syncs and profile reads through it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from stepcoin.config import Settings, get_settings
from stepcoin.db import libpq_url
from stepcoin.main import create_app
from tests.conftest import AddressedTransport, bearer, register
from tests.fixtures.ports import free_port as _free_port
from tests.steps.helpers import ledger_ok, rec

pytestmark = pytest.mark.slow
PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
)


@pytest.fixture(scope="module")
def bouncer_url(database_url: str) -> Iterator[str]:
    if PGBOUNCER is None:
        pytest.skip(
            "pgbouncer is not installed (apt-get install -y pgbouncer); .ci/run installs it"
        )
    target = conninfo_to_dict(libpq_url(database_url))
    host, port = target.get("host") or "127.0.0.1", target.get("port") or "5432"
    dbname, user = target["dbname"], target.get("user") or "postgres"
    folder = Path(tempfile.mkdtemp(prefix="stepcoin-pgbouncer-", dir="/tmp"))
    folder.chmod(0o755)
    listen = _free_port()
    (folder / "userlist.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
{dbname} = host={host} port={port} dbname={dbname} user={user} connect_query='SET jit = off'

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/userlist.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 200
ignore_startup_parameters = extra_float_digits
"""
    )
    for f in folder.iterdir():
        f.chmod(0o644)
    args = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses root; the embedded server's socket is its user's
        from stepcoin.embedded import SERVER_USER, _ensure_server_user

        _ensure_server_user()
        args[1:1] = ["-u", SERVER_USER]
    log = (folder / "pgbouncer.log").open("wb")  # its log goes to stderr: ours to keep
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
    url = f"postgresql://{user}@127.0.0.1:{listen}/{dbname}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with psycopg.connect(url, prepare_threshold=None, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"pgbouncer did not start: {(folder / 'pgbouncer.log').read_text()}"
                    )
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def bouncer_app(settings: Settings, bouncer_url: str) -> AsyncIterator[Any]:
    saved = os.environ.get("STEPCOIN_DATABASE_PGBOUNCER")
    os.environ["STEPCOIN_DATABASE_PGBOUNCER"] = (
        "true"  # Database() reads it (main.py passes no flag)
    )
    get_settings.cache_clear()
    bounced = settings.model_copy(update={"database_url": bouncer_url, "database_pgbouncer": True})
    application = create_app(bounced, run_worker=False)
    try:
        async with application.router.lifespan_context(application):
            assert application.state.database.pgbouncer
            yield application
    finally:
        if saved is None:
            os.environ.pop("STEPCOIN_DATABASE_PGBOUNCER", None)
        else:
            os.environ["STEPCOIN_DATABASE_PGBOUNCER"] = saved
        get_settings.cache_clear()


@pytest.fixture
async def bouncer_client(bouncer_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    # walkers sign up from addresses of their own (tests.conftest.register)
    transport = AddressedTransport(app=bouncer_app, client=("203.0.113.9", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://stepcoin.test") as c:
        yield c


async def test_api_answers_through_pgbouncer_in_transaction_mode(
    bouncer_client: httpx.AsyncClient, engine: Any
) -> None:
    client = bouncer_client
    walkers = await asyncio.gather(*(register(client) for _ in range(8)))
    tokens = [w["access_token"] for w in walkers]

    async def sync(token: str, offset: int, steps: int) -> None:
        body = {"records": [rec(offset, steps), rec(offset + 1, steps // 2, "google_fit")]}
        response = await client.post("/v1/steps", json=body, headers=bearer(token))
        assert response.status_code == 200, response.text

    async def profile(token: str) -> int:
        response = await client.get("/v1/me", headers=bearer(token))
        assert response.status_code == 200, response.text
        return int(response.json()["wallet"]["available_coins"])

    for round_ in range(3):  # each user syncs twice at once, while profiles are read
        await asyncio.gather(
            *(sync(t, round_, 4000 + 1000 * round_) for t in tokens),
            *(sync(t, round_, 4500 + 1000 * round_) for t in tokens),
            *(profile(t) for t in tokens),
        )
    balances = await asyncio.gather(*(profile(t) for t in tokens))
    assert all(b > 0 for b in balances)
    await ledger_ok(engine)  # wallet = ledger, read directly (not through the bouncer)


async def test_sessions_through_pgbouncer_run_without_jit(bouncer_app: Any) -> None:
    """Behind PgBouncer the startup packet carries no setting but application_name: the
    documented pgbouncer.ini's connect_query turns JIT off on every server connection, for the
    ORM's sessions and the fast pool's connections alike (stepcoin.db.SESSION_SETTINGS)."""
    database = bouncer_app.state.database
    async with database.engine.connect() as conn:
        assert (await conn.exec_driver_sql("SHOW jit")).scalar_one() == "off"
    pool = await database.fast_pool()
    assert await pool.fetchval("SHOW jit") == "off"

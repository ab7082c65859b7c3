"""Read replicas against a real streaming standby (pg_basebackup -R of a primary of our own,
with the test server's binaries): routing, read-your-writes, lag fallback, a standby dying
under load (docs/replicas.md).

How a test knows who answered: the standby's replay is paused, then a row is changed on the
primary behind the API's back (plain SQL: no marker, nothing remembered). A read that returns
the old value came from the standby; the new value, from the primary. The standby's own table
statistics (`pg_stat_user_tables`, kept per server) count the reads it served.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stepcoin import migrate
from stepcoin.config import Settings
from stepcoin.main import create_app
from stepcoin.replicas import READ_AFTER_HEADER
from tests.conftest import TEST_RUN, AddressedTransport, bearer, register
from tests.fixtures.database import TestRun
from tests.fixtures.replication import Replication, replication, server_bin_dir
from tests.steps.helpers import rec

pytestmark = pytest.mark.slow


def _test_run(config: pytest.Config) -> TestRun:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return config.stash[TEST_RUN]
    return TestRun.from_json(workerinput["stepcoin_test_run"])


@pytest.fixture(scope="module")
def pair(pytestconfig: pytest.Config, settings: Settings) -> Iterator[Replication]:
    run = _test_run(pytestconfig)
    embedded_bin: Path | None = None
    if not run.server_url:
        embedded_bin = run._embedded().bin_dir  # started by the `settings` fixture's database
    bin_dir, why = server_bin_dir(run.server_url, embedded_bin)
    if bin_dir is None:
        pytest.skip(f"no streaming standby can be started: {why}")
    with replication(bin_dir, migrate.upgrade) as made:
        yield made


@contextlib.asynccontextmanager
async def api(
    settings: Settings, pair: Replication, **replica_settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """One API process on the pair's primary with its standby as a replica."""
    configured = settings.model_copy(
        update={
            "database_url": pair.primary.url(),
            "database_replica_urls": [pair.standby.url()],
            "replica_max_lag_ms": 60_000,
            "replica_check_ms": 50,
            **replica_settings,
        }
    )
    application = create_app(configured, run_worker=False)
    async with application.router.lifespan_context(application):
        transport = AddressedTransport(app=application, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://stepcoin.test") as c:
            yield c


@pytest.fixture
def resumed(pair: Replication) -> Iterator[Replication]:
    """The pair with the standby running and replaying, before and after the test."""
    if not pair.standby.running():
        pair.standby.start()
    pair.resume()
    yield pair
    if not pair.standby.running():
        pair.standby.start()
    pair.resume()


def rename_behind_the_api(pair: Replication, user_id: str, name: str) -> None:
    pair.primary.sql("UPDATE users SET full_name = %s WHERE id = %s", (name, user_id))


def standby_scans(pair: Replication, table: str) -> int:
    value = pair.standby.sql(
        "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
        "WHERE relname = %s",
        (table,),
    )
    return int(value or 0)


async def wait_for(predicate: Any, timeout: float = 15, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def name_of(client: httpx.AsyncClient, token: str, **headers: str) -> str:
    response = await client.get("/v1/me", headers={**bearer(token), **headers})
    assert response.status_code == 200, response.text
    return str(response.json()["full_name"])


async def replica_state(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    (state,) = response.json()["replicas"]
    return dict(state)


def add_product(pair: Replication, title: str) -> int:
    return int(
        pair.primary.sql(
            "INSERT INTO reward_products (shopify_product_id, shopify_variant_id, title, "
            "coin_price, stock_quantity, category, is_active) "
            "VALUES (%s, %s, %s, 100, 5, 'test', true) RETURNING id",
            (f"gid://p/{uuid.uuid4().hex}", f"gid://v/{uuid.uuid4().hex}", title),
        )
    )


async def test_hot_reads_are_served_by_the_standby(
    settings: Settings, resumed: Replication
) -> None:
    pair = resumed
    async with api(settings, pair) as client:
        walker = await register(client, verified=False)
        token, user_id = walker["access_token"], walker["user"]["id"]
        product = add_product(pair, "Water bottle")
        pair.wait_replayed()
        assert (await replica_state(client))["state"] == "ok"

        pair.pause()
        rename_behind_the_api(pair, user_id, "Changed on the primary")
        pair.primary.sql("UPDATE reward_products SET title = 'New title' WHERE id = %s", (product,))

        # the standby (paused, within the 60 s bound) answers: the old values
        assert await name_of(client, token) == "Test Walker"
        listed = await client.get("/v1/products")
        assert listed.status_code == 200, listed.text
        assert [p["title"] for p in listed.json()["items"] if p["id"] == product] == [
            "Water bottle"
        ]
        one = await client.get(f"/v1/products/{product}")
        assert one.json()["title"] == "Water bottle"
        assert (await client.get("/v1/wallet", headers=bearer(token))).status_code == 200
        assert (
            await client.get("/v1/leaderboards/daily", headers=bearer(token))
        ).status_code == 200
        board = await client.get(
            "/v1/leaderboards/daily", params={"scope": "friends"}, headers=bearer(token)
        )
        assert board.status_code == 200, board.text

        before = standby_scans(pair, "wallets")
        for _ in range(20):
            assert (await client.get("/v1/wallet", headers=bearer(token))).status_code == 200

        async def counted() -> bool:
            return standby_scans(pair, "wallets") >= before + 20

        await wait_for(counted, what="the standby's statistics to count the wallet reads")

        pair.resume()
        pair.wait_replayed()
        await asyncio.sleep(0.2)  # a check of the app sees the new position
        assert await name_of(client, token) == "Changed on the primary"
        assert (await client.get(f"/v1/products/{product}")).json()["title"] == "New title"


async def test_a_walker_reads_their_own_writes(settings: Settings, resumed: Replication) -> None:
    pair = resumed
    async with api(settings, pair) as client, api(settings, pair) as other_process:
        walker = await register(client, verified=False)
        token = walker["access_token"]
        pair.wait_replayed()
        await asyncio.sleep(0.2)
        pair.pause()  # from here on the standby knows nothing new

        changed = await client.patch(
            "/v1/me", json={"full_name": "Renamed by the walker"}, headers=bearer(token)
        )
        assert changed.status_code == 200, changed.text
        marker = changed.headers[READ_AFTER_HEADER]
        # the same process remembers the write: the primary answers
        assert await name_of(client, token) == "Renamed by the walker"
        # another process: with the marker sent back, the primary; without it, the standby
        assert (
            await name_of(other_process, token, **{READ_AFTER_HEADER: marker})
            == "Renamed by the walker"
        )
        assert await name_of(other_process, token) == "Test Walker"

        synced = await client.post(
            "/v1/steps", json={"records": [rec(0, 8000)]}, headers=bearer(token)
        )
        assert synced.status_code == 200, synced.text
        assert READ_AFTER_HEADER in synced.headers
        wallet = await client.get("/v1/wallet", headers=bearer(token))
        assert wallet.status_code == 200
        ledger = await client.get("/v1/wallet/transactions", headers=bearer(token))
        paid = wallet.json()["available_coins"] + wallet.json()["pending_coins"]
        assert paid > 0, wallet.text
        assert ledger.json()["items"] or wallet.json()["pending_coins"] > 0
        elsewhere = await other_process.get(
            "/v1/wallet",
            headers={**bearer(token), READ_AFTER_HEADER: synced.headers[READ_AFTER_HEADER]},
        )
        assert elsewhere.json() == wallet.json()


async def test_a_lagging_standby_is_skipped_and_comes_back(
    settings: Settings, resumed: Replication
) -> None:
    pair = resumed
    async with api(settings, pair, replica_max_lag_ms=300) as client:
        walker = await register(client, verified=False)
        token, user_id = walker["access_token"], walker["user"]["id"]
        pair.wait_replayed()

        async def in_rotation() -> bool:
            return bool((await replica_state(client))["in_rotation"])

        await wait_for(in_rotation, what="the standby in rotation")

        pair.pause()
        rename_behind_the_api(pair, user_id, "Fresh on the primary")

        async def skipped() -> bool:
            return (await replica_state(client))["state"] == "paused"

        await wait_for(skipped, what="readiness to say the standby is paused")
        state = await replica_state(client)
        assert state["in_rotation"] is False
        # the report rounds to whole milliseconds: a lag of 300.4 ms is beyond 300 and shows 300
        assert state["lag_ms"] >= 300
        # readiness itself stays ready: the primary serves every read
        assert (await client.get("/readyz")).json()["status"] == "ready"
        assert await name_of(client, token) == "Fresh on the primary"

        pair.resume()
        await wait_for(in_rotation, what="the standby back in rotation")
        assert (await replica_state(client))["state"] == "ok"
        before = standby_scans(pair, "wallets")
        for _ in range(10):
            assert (await client.get("/v1/wallet", headers=bearer(token))).status_code == 200

        async def served_again() -> bool:
            return standby_scans(pair, "wallets") >= before + 10

        await wait_for(served_again, what="the standby serving reads again")


async def test_a_standby_dying_under_load_fails_no_request(
    settings: Settings, resumed: Replication
) -> None:
    pair = resumed
    async with api(settings, pair, replica_max_lag_ms=5000) as client:
        walkers = [await register(client, verified=False) for _ in range(4)]
        product = add_product(pair, "Socks")
        pair.wait_replayed()
        await asyncio.sleep(0.2)
        paths = [
            "/v1/me",
            "/v1/wallet",
            "/v1/wallet/transactions",
            "/v1/achievements",
            "/v1/leaderboards/weekly",
            "/v1/leaderboards/weekly?scope=friends",
            "/v1/products",
            f"/v1/products/{product}",
        ]
        failures: list[str] = []
        served = 0
        stop = asyncio.Event()

        async def reader(walker: dict[str, Any]) -> None:
            nonlocal served
            headers = bearer(walker["access_token"])
            while not stop.is_set():
                for path in paths:
                    response = await client.get(path, headers=headers)
                    served += 1
                    if response.status_code != 200:
                        failures.append(f"{path}: {response.status_code} {response.text[:200]}")

        scans_before = standby_scans(pair, "wallets")
        readers = [asyncio.create_task(reader(w)) for w in walkers]

        async def serving() -> bool:
            # a reader's answer counted too: the standby's scan shows before its answer does
            return served > 0 and standby_scans(pair, "wallets") > scans_before

        await wait_for(serving, what="the standby serving the load")  # before it dies
        died_at = served
        await asyncio.to_thread(pair.standby.stop, "immediate")  # a crash: every link cut

        async def down() -> bool:
            return (await replica_state(client))["state"] == "down"

        await wait_for(down, what="readiness to say the standby is down")
        await asyncio.sleep(0.5)
        await asyncio.to_thread(pair.standby.start)

        async def back() -> bool:
            return bool((await replica_state(client))["in_rotation"])

        await wait_for(back, timeout=30, what="the standby back in rotation")
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*readers)

        assert failures == []
        assert died_at > 0 and served > died_at

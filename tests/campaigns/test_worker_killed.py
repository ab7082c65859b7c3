"""A campaign whose worker is SIGKILLed midway: a second worker finishes it, every walker is
paid exactly once, the progress adds up and check-ledger passes."""

from __future__ import annotations

import signal
import time

import psycopg
import pytest

from tests.admin.helpers import ledger_report, make_staff
from tests.campaigns.helpers import campaign_rows, create, many_walkers, set_setting
from tests.shop.test_worker_crash import start_worker, wait_for

WALKERS = 600
CHUNK = 100


def progress(database_url: str, campaign_id: str) -> tuple[str, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT status, walkers_paid FROM campaigns WHERE id = %s", (campaign_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


@pytest.mark.slow
async def test_a_worker_killed_midway_pays_nobody_twice(client, engine, database_url):
    await set_setting(engine, "economy.campaign_chunk_walkers", CHUNK)
    admin = await make_staff(client, engine)
    walkers = await many_walkers(engine, WALKERS)
    campaign = (await create(client, admin, {"all_walkers": True}, coins=3)).json()
    # the fourth chunk waits on a wallet this test holds locked: the worker dies inside it
    blocker = psycopg.connect(database_url)
    blocker.execute(
        "SELECT 1 FROM wallets WHERE user_id = %s FOR UPDATE", (walkers[3 * CHUNK + 50],)
    )
    first = start_worker(database_url, "http://127.0.0.1:9/unused")
    try:
        started = await client.post(
            f"/v1/admin/campaigns/{campaign['id']}/run", headers=admin["headers"]
        )
        assert started.status_code == 202, started.text
        wait_for(lambda: progress(database_url, campaign["id"])[1] == 3 * CHUNK, 60, "three chunks")
        time.sleep(1)  # the worker is inside the fourth chunk, waiting for the lock
        assert progress(database_url, campaign["id"]) == ("running", 3 * CHUNK)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        blocker.rollback()
        blocker.close()
    time.sleep(3)  # the dead worker's heartbeat goes stale (STEPCOIN_JOB_STALLED_SECONDS=2)

    second = start_worker(database_url, "http://127.0.0.1:9/unused")
    try:
        wait_for(
            lambda: progress(database_url, campaign["id"])[0] == "done", 90, "the campaign done"
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    rows = await campaign_rows(engine, campaign["id"])
    assert len(rows) == WALKERS
    assert sorted(str(r.user_id) for r in rows) == walkers
    assert progress(database_url, campaign["id"]) == ("done", WALKERS)
    assert (await ledger_report(engine)).ok

"""A worker killed midway through a settlement: a second worker finishes it, every winner is
paid exactly once, the pool adds up, the escrow is empty and check-ledger passes."""

from __future__ import annotations

import signal
import time

import psycopg
import pytest

from tests.admin.helpers import ledger_report
from tests.challenges.helpers import act, create, make_staff, rich_walker, shift, spec
from tests.shop.test_worker_crash import start_worker, wait_for
from tests.social.helpers import set_setting
from tests.steps.helpers import rec, sync

WALKERS = 7
CHUNK = 2
FEE = 10


def state(database_url: str, challenge_id: str) -> tuple[str, int, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT c.status, c.escrow_coins, (SELECT count(*) FROM challenge_participants p "
            "WHERE p.challenge_id = c.id AND p.paid_at IS NOT NULL) FROM challenges c "
            "WHERE c.id = %s",
            (challenge_id,),
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def defer_tick(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "SELECT stepcoin_defer_job('default', 'challenges:tick', NULL, NULL, '{}'::jsonb)"
        )


@pytest.mark.slow
async def test_a_worker_killed_midway_through_a_settlement_pays_nobody_twice(
    client, engine, database_url
):
    await set_setting(engine, "challenges.payout_chunk_walkers", CHUNK)
    admin = await make_staff(client, engine)
    cid = (
        await create(
            client,
            admin,
            spec("group_goal", params={"target_total": 1000}, entry_fee_coins=FEE),
        )
    )["id"]
    walkers = [await rich_walker(client, admin, 100, name=f"W{i} Walker") for i in range(WALKERS)]
    for w in walkers:
        await act(client, w, cid, "join")
        await sync(client, w["access_token"], rec(4, 2000))
    await shift(engine, cid, 6)  # days today-5 .. today-3: the grace period is over
    ids = sorted(w["id"] for w in walkers)
    # the third chunk waits on a wallet this test holds locked: the worker dies inside it
    blocker = psycopg.connect(database_url)
    blocker.execute("SELECT 1 FROM wallets WHERE user_id = %s FOR UPDATE", (ids[2 * CHUNK],))
    first = start_worker(database_url, "http://127.0.0.1:9/unused")
    try:
        defer_tick(database_url)
        wait_for(lambda: state(database_url, cid)[2] == 2 * CHUNK, 60, "two chunks paid")
        time.sleep(1)  # the worker is inside the third chunk, waiting for the lock
        assert state(database_url, cid) == ("settling", WALKERS * FEE - 2 * CHUNK * FEE, 2 * CHUNK)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        blocker.rollback()
        blocker.close()
    time.sleep(3)  # the dead worker's heartbeat goes stale (STEPCOIN_JOB_STALLED_SECONDS=2)

    second = start_worker(database_url, "http://127.0.0.1:9/unused")
    try:
        defer_tick(database_url)
        wait_for(lambda: state(database_url, cid)[0] == "settled", 90, "the challenge settled")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert state(database_url, cid) == ("settled", 0, WALKERS)
    with psycopg.connect(database_url) as conn:
        prizes = conn.execute(
            "SELECT CAST(user_id AS text), count(*), sum(amount) FROM coin_transactions "
            "WHERE transaction_type = 'challenge_prize' AND reference_id LIKE %s "
            "GROUP BY user_id ORDER BY 1",
            (f"challenge:{cid}:%",),
        ).fetchall()
    assert [p[0] for p in prizes] == ids
    assert {p[1] for p in prizes} == {1}  # once each
    assert sum(p[2] for p in prizes) == WALKERS * FEE  # the pool, no coin made or lost
    assert (await ledger_report(engine)).ok

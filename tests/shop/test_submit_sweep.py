"""The Shopify outbox sweep (issue 13): pending orders reach Shopify without a job per order.

stepcoin_place_order v2 wakes shop:submit_pending (one waits at most); the sweep makes the first
attempt of every pending order that has no job of its own and hands an order Shopify could not
take to its own submit_order job, which retries with the backoff and limit of before.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from procrastinate.jobs import Job
from sqlalchemy import make_url, text

from stepcoin.db import libpq_url, session_scope
from stepcoin.queue import SHOP_SUBMIT_ORDER, SHOP_SUBMIT_PENDING, defer_in_transaction
from stepcoin.shop import tasks
from stepcoin.shop.orders import PLACE_ORDER_SQL, new_order_code
from stepcoin.shop.tasks import submit_pending_orders, sync_catalogue
from tests.shop.conftest import run_jobs
from tests.shop.helpers import ADDRESS, order, walker_with_coins
from tests.shop.test_shopify_flow import order_row, products, vgid
from tests.steps.helpers import ledger_ok


async def _shop(client, app, engine, standin, *, walkers: int = 1) -> tuple[list[Any], int]:
    bottle = standin.add_product(title="Bottle", price="12.50", inventory=100)
    await sync_catalogue(app.state.database, trigger="test")
    product_id = (await products(engine))[vgid(bottle.variants[0])]["id"]
    people = [await walker_with_coins(client, engine, 5000) for _ in range(walkers)]
    return people, product_id


async def _place(client, walker, product_id) -> dict[str, Any]:
    placed = await order(client, walker["access_token"], [(product_id, 1)])
    assert placed.status_code == 201, placed.text
    return placed.json()


async def _jobs(engine, task: str) -> list[Any]:
    async with engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    text(
                        "SELECT status, lock, args, attempts, scheduled_at FROM procrastinate_jobs "
                        "WHERE task_name = :t ORDER BY id"
                    ),
                    {"t": task},
                )
            ).all()
        )


async def _never_deferred(order_id: uuid.UUID) -> None:
    raise AssertionError(f"order {order_id} was handed to a retry job")


async def test_one_sweep_submits_every_order_placed_once(client, app, engine, standin):
    people, product_id = await _shop(client, app, engine, standin, walkers=3)
    placed = [await _place(client, w, product_id) for w in people for _ in range(2)]
    assert [j.status for j in await _jobs(engine, SHOP_SUBMIT_PENDING)] == ["todo"]
    assert await _jobs(engine, SHOP_SUBMIT_ORDER) == []
    await run_jobs(app)
    for p in placed:
        row = await order_row(engine, p["id"])
        assert row["status"] == "submitted" and row["shopify_order_id"]
        assert len(standin.orders_with_tag(f"stepcoin-{p['order_code']}")) == 1
    # a second sweep (the periodic one) finds nothing to do and creates nothing twice
    assert await submit_pending_orders(app.state.database, defer_retry=_never_deferred) == {}
    assert sum(len(standin.orders_with_tag(f"stepcoin-{p['order_code']}")) for p in placed) == 6
    await ledger_ok(engine)


async def test_an_order_with_its_own_job_is_left_to_that_job(client, app, engine, standin):
    people, product_id = await _shop(client, app, engine, standin)
    placed = await _place(client, people[0], product_id)
    async with session_scope(app.state.database) as session:  # placed before the sweep
        await defer_in_transaction(
            session,
            SHOP_SUBMIT_ORDER,
            {"order_id": placed["id"]},
            lock=f"order:{placed['id']}",
            queue="shop",
        )
    assert await submit_pending_orders(app.state.database, defer_retry=_never_deferred) == {}
    assert (await order_row(engine, placed["id"]))["status"] == "pending"
    await run_jobs(app)  # its own job submits it, once
    assert (await order_row(engine, placed["id"]))["status"] == "submitted"
    assert len(standin.orders_with_tag(f"stepcoin-{placed['order_code']}")) == 1


async def test_shopify_down_hands_the_order_to_its_own_retrying_job(client, app, engine, standin):
    people, product_id = await _shop(client, app, engine, standin)
    placed = await _place(client, people[0], product_id)
    standin.fail_next(5, status=503)  # every try of the first attempt (the client's own)
    handed: list[uuid.UUID] = []

    async def defer_retry(order_id: uuid.UUID) -> None:
        handed.append(order_id)
        async with session_scope(app.state.database) as session:
            await defer_in_transaction(
                session,
                SHOP_SUBMIT_ORDER,
                {"order_id": str(order_id), "first_attempt": 1},
                lock=f"order:{order_id}",
                queue="shop",
            )

    outcomes = await submit_pending_orders(app.state.database, defer_retry=defer_retry)
    assert outcomes == {"retrying": 1} and handed == [uuid.UUID(placed["id"])]
    assert (await order_row(engine, placed["id"]))["status"] == "pending"
    # the next sweep leaves it to its job
    assert await submit_pending_orders(app.state.database, defer_retry=_never_deferred) == {}
    await run_jobs(app)
    assert (await order_row(engine, placed["id"]))["status"] == "submitted"
    assert len(standin.orders_with_tag(f"stepcoin-{placed['order_code']}")) == 1


def test_the_retry_counts_from_the_orders_first_attempt():
    """A job the sweep handed over (first_attempt=1) waits and stops as the order's own job did
    before the sweep: after attempt n the wait is 2 ** (n + 1) s, attempt 50 is the last."""
    strategy = tasks.submit_order_job.retry_strategy
    assert strategy is not None

    def wait(attempts: int, first_attempt: int) -> float | None:
        job = Job(
            id=1,
            queue="shop",
            lock=None,
            queueing_lock=None,
            task_name=SHOP_SUBMIT_ORDER,
            task_kwargs={"order_id": "x", "first_attempt": first_attempt},
            attempts=attempts,
        )
        decision = strategy.get_retry_decision(exception=RuntimeError(), job=job)
        if decision is None:
            return None
        assert decision.retry_at is not None
        return round((decision.retry_at - datetime.now(UTC)).total_seconds())

    assert [wait(n, 0) for n in (0, 1, 2, 9)] == [2, 4, 8, 1024]
    assert [wait(n - 1, 1) for n in (1, 2, 9)] == [4, 8, 1024]
    assert wait(49, 0) is not None and wait(50, 0) is None
    assert wait(48, 1) is not None and wait(49, 1) is None


async def test_the_sweep_waits_for_a_placement_that_saw_its_job_waiting(
    client, app, engine, standin
):
    """The lost wake-up: a placement that saw a sweep's job still waiting deferred none, and
    that sweep may already run; it waits for the placement's commit before it reads."""
    people, product_id = await _shop(client, app, engine, standin)
    first = await _place(client, people[0], product_id)  # wakes the sweep: its job waits
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        placing = driver.transaction()
        await placing.start()
        row = await driver.fetchrow(
            PLACE_ORDER_SQL,
            uuid.UUID(people[0]["user"]["id"]),
            "late",
            "fp",
            uuid.uuid4(),
            [new_order_code()],
            [product_id],
            [1],
            orjson.dumps(ADDRESS).decode(),
        )
        assert row["outcome"] == "created"
        assert [j.status for j in await _jobs(engine, SHOP_SUBMIT_PENDING)] == ["todo"]
        polls = 0
        real = tasks._placements_deciding

        async def counted(conn: Any) -> set[str]:
            nonlocal polls
            polls += 1
            return await real(conn)

        tasks._placements_deciding = counted  # type: ignore[assignment]
        try:
            sweep = asyncio.create_task(  # the woken sweep starts before the placement commits
                submit_pending_orders(app.state.database, defer_retry=_never_deferred)
            )
            while polls < 3:  # the sweep saw the placement deciding, and waits for it
                assert not sweep.done(), sweep.result()
                await asyncio.sleep(0.01)
        finally:
            tasks._placements_deciding = real  # type: ignore[assignment]
        await placing.commit()
    assert await sweep == {"submitted": 2}
    for order_id in (first["id"], str(row["id"])):
        assert (await order_row(engine, order_id))["status"] == "submitted"


async def test_while_a_sweep_runs_one_waits_and_the_others_leave(client, app, engine, standin):
    """Sweeps woken during a run do not pile up on the lock (each held a worker's slot)."""
    people, product_id = await _shop(client, app, engine, standin, walkers=2)
    async with engine.connect() as other:  # a sweep that runs now
        await other.execute(
            text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": tasks.SWEEP_RUNNING_ADVISORY}
        )
        await other.commit()
        waiting = asyncio.create_task(
            submit_pending_orders(app.state.database, defer_retry=_never_deferred)
        )
        for _ in range(200):  # the waiting one holds its place in line
            async with engine.connect() as conn:
                held = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                            "AND granted AND objid = hashtext(:k)::oid AND database = "
                            "(SELECT oid FROM pg_database WHERE datname = current_database())"
                        ),
                        {"k": tasks.SWEEP_NEXT_ADVISORY},
                    )
                ).scalar_one()
            if held:
                break
            await asyncio.sleep(0.01)
        assert held == 1 and not waiting.done()
        # woken now: another waits already, so these leave at once, doing nothing
        for _ in range(3):
            left = await asyncio.wait_for(
                submit_pending_orders(app.state.database, defer_retry=_never_deferred), 5
            )
            assert left == {}
        # orders placed meanwhile are the waiting sweep's: it reads after the run ends
        placed = [await _place(client, w, product_id) for w in people]
        await other.execute(
            text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": tasks.SWEEP_RUNNING_ADVISORY}
        )
        await other.commit()
        assert await asyncio.wait_for(waiting, 30) == {"submitted": 2}
    for p in placed:
        assert (await order_row(engine, p["id"]))["status"] == "submitted"
        assert len(standin.orders_with_tag(f"stepcoin-{p['order_code']}")) == 1


async def test_a_placement_in_another_database_is_not_waited_for(engine, database_url):
    """Advisory locks belong to one database: the sweep waits only for this database's
    placements, not for those of another installation (or test database) on the server."""
    other_url = make_url(libpq_url(database_url)).set(database="postgres")
    other = await asyncpg.connect(other_url.render_as_string(hide_password=False))
    try:
        async with other.transaction():
            await other.execute("SELECT pg_advisory_xact_lock_shared(5301, 1)")
            async with engine.connect() as conn:
                assert await tasks._placements_deciding(conn) == set()
                # the same mark taken in this database is seen
                await conn.execute(text("SELECT pg_advisory_xact_lock_shared(5301, 1)"))
                assert len(await tasks._placements_deciding(conn)) == 1
                await conn.rollback()
    finally:
        await other.close()


async def _gather_ms(engine, value: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE settings SET value = to_jsonb(CAST(:v AS integer)) WHERE key = :k"),
            {"k": "shop.submit_gather_ms", "v": value},
        )


async def _due_in(engine) -> list[float]:
    """Seconds from now until each waiting sweep is due."""
    async with engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    text(
                        "SELECT extract(epoch FROM scheduled_at - now()) FROM procrastinate_jobs "
                        "WHERE task_name = :t AND status = 'todo' ORDER BY id"
                    ),
                    {"t": SHOP_SUBMIT_PENDING},
                )
            ).scalars()
        )


async def test_the_orders_of_a_gathering_time_ride_on_one_sweep(client, app, engine, standin):
    """Issue 13: a sweep costs about as much for one order as for ten, and under a stream of
    orders one was queued every few orders. The placement that wakes the sweep queues it due
    shop.submit_gather_ms later; the orders placed meanwhile find it waiting; 0 wakes it at
    once, as before."""
    people, product_id = await _shop(client, app, engine, standin, walkers=2)
    await _gather_ms(engine, 5000)  # the next test starts from the default again (conftest)
    placed = [await _place(client, w, product_id) for w in people for _ in range(2)]
    (due,) = await _due_in(engine)  # one sweep for the four orders
    assert 3.0 < due <= 5.0
    await run_jobs(app)  # its time taken as passed: all four in one sweep
    assert await _due_in(engine) == []
    for p in placed:
        assert (await order_row(engine, p["id"]))["status"] == "submitted"
    await _gather_ms(engine, 0)
    await _place(client, people[0], product_id)
    (due,) = await _due_in(engine)
    assert due <= 0  # due at once
    await run_jobs(app)
    await ledger_ok(engine)

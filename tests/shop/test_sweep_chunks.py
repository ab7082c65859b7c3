"""The sweep settles the outbox a chunk at a time (issue 13): one transaction reads a chunk of
pending orders with their lines, checks the walkers' trust for all of it and settles what needs
no Shopify; one UPDATE records what Shopify took. Each order still reaches Shopify once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text

from stepcoin.fairplay import trust
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.shop import orders, runtime, tasks
from stepcoin.shop.tasks import submit_pending_orders
from tests.shop.helpers import product, refunds
from tests.shop.test_shopify_flow import order_row
from tests.shop.test_submit_sweep import _never_deferred, _place, _shop
from tests.shop.test_trust_hold import _farm_walker
from tests.steps.helpers import ledger_ok, wallet


@contextmanager
def _counted(database: Any) -> Iterator[dict[str, int]]:
    """The statements and commits the sweep's engine sends meanwhile, but for its looks at the
    placements deciding (pg_locks): repeated while any placement of the server commits."""
    counts = {"statements": 0, "commits": 0}
    engine = database.engine.sync_engine

    def on_statement(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        counts["statements"] += "pg_locks" not in statement

    def on_commit(*_: Any) -> None:
        counts["commits"] += 1

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "commit", on_commit)


async def _in_shopify_once(standin: Any, placed: list[dict[str, Any]]) -> None:
    for p in placed:
        tag = f"stepcoin-{p['order_code']}"
        assert len(standin.orders_with_tag(tag)) == 1
        assert standin.order_create_calls.get(tag, 0) == 1


async def test_the_sweeps_transactions_do_not_grow_with_its_orders(
    client, app, engine, standin, monkeypatch
):
    people, product_id = await _shop(client, app, engine, standin, walkers=4)
    database = app.state.database
    monkeypatch.setattr(runtime_settings, "ttl_seconds", 3600.0)  # read once, before counting
    standin.configure_webhooks(None, None)  # its stock webhooks would be counted too
    assert await submit_pending_orders(database, defer_retry=_never_deferred) == {}
    costs = []
    for count in (2, 8):
        placed = [await _place(client, people[i % 4], product_id) for i in range(count)]
        with _counted(database) as counts:
            assert await submit_pending_orders(database, defer_retry=_never_deferred) == {
                "submitted": count
            }
        costs.append(dict(counts))
        for p in placed:
            assert (await order_row(engine, p["id"]))["status"] == "submitted"
        await _in_shopify_once(standin, placed)
    # one sweep: its turn (advisory locks), one chunk, one record of what Shopify took
    assert costs[0] == costs[1], costs
    assert costs[1]["commits"] <= 5 and costs[1]["statements"] <= 12, costs
    await ledger_ok(engine)


async def test_one_refused_order_in_a_chunk_fails_alone(client, app, engine, standin):
    people, product_id = await _shop(client, app, engine, standin, walkers=5)
    placed = [await _place(client, w, product_id) for w in people]
    standin.fail_next(1, status=400, when="orderCreate")  # one order, whichever goes first
    outcomes = await submit_pending_orders(app.state.database, defer_retry=_never_deferred)
    assert outcomes == {"submitted": 4, "failed": 1}
    rows = [await order_row(engine, p["id"]) for p in placed]
    failed = [p for p, r in zip(placed, rows, strict=True) if r["status"] == "failed"]
    submitted = [p for p, r in zip(placed, rows, strict=True) if r["status"] == "submitted"]
    assert len(failed) == 1 and len(submitted) == 4
    assert all(r["shopify_order_id"] for r in rows if r["status"] == "submitted")
    await _in_shopify_once(standin, submitted)
    assert standin.orders_with_tag(f"stepcoin-{failed[0]['order_code']}") == []
    walker = people[placed.index(failed[0])]
    assert (await wallet(client, walker["access_token"]))["available_coins"] == 5000
    # nothing is left for the next sweep, and nothing is refunded twice
    assert await submit_pending_orders(app.state.database, defer_retry=_never_deferred) == {}
    assert await refunds(engine) == 1
    await ledger_ok(engine)


async def test_a_sweep_that_dies_before_recording_its_chunk_creates_nothing_twice(
    client, app, engine, standin, monkeypatch
):
    """Shopify created the chunk's orders, then the sweep died before writing them down: the
    next sweep finds each by its tag instead of creating it again."""
    people, product_id = await _shop(client, app, engine, standin, walkers=3)
    placed = [await _place(client, w, product_id) for w in people for _ in range(2)]
    real = orders.mark_submitted_many

    async def dies(*args: Any, **kwargs: Any) -> set[uuid.UUID]:
        raise ConnectionError("the worker died")

    monkeypatch.setattr(orders, "mark_submitted_many", dies)
    with pytest.raises(ConnectionError):
        await submit_pending_orders(app.state.database, defer_retry=_never_deferred)
    for p in placed:
        assert (await order_row(engine, p["id"]))["status"] == "pending"
        assert len(standin.orders_with_tag(f"stepcoin-{p['order_code']}")) == 1
    monkeypatch.setattr(orders, "mark_submitted_many", real)
    outcomes = await submit_pending_orders(app.state.database, defer_retry=_never_deferred)
    assert outcomes == {"submitted": 6}
    for p in placed:
        row = await order_row(engine, p["id"])
        assert row["status"] == "submitted" and row["shopify_order_id"]
        in_shopify = standin.orders_with_tag(f"stepcoin-{p['order_code']}")
        assert row["shopify_order_id"] == f"gid://shopify/Order/{in_shopify[0].id}"
        assert standin.order_create_calls[f"stepcoin-{p['order_code']}"] == 1


async def test_one_chunk_holds_a_low_trust_order_and_submits_the_others(
    client, app, engine, standin
):
    people, shopify_product = await _shop(client, app, engine, standin)
    local_product = await product(engine, price=10, stock=5)  # made here: nothing to push
    farm = await _farm_walker(client, engine)
    held = await _place(client, farm, shopify_product)
    honest = await _place(client, people[0], shopify_product)
    local = await _place(client, people[0], local_product)
    outcomes = await submit_pending_orders(app.state.database, defer_retry=_never_deferred)
    assert outcomes == {"held": 1, "submitted": 2}
    assert (await order_row(engine, held["id"]))["status"] == "held"
    assert standin.orders_with_tag(f"stepcoin-{held['order_code']}") == []
    assert (await order_row(engine, honest["id"]))["status"] == "submitted"
    await _in_shopify_once(standin, [honest])
    row = await order_row(engine, local["id"])
    assert row["status"] == "submitted" and row["shopify_order_id"] is None
    assert standin.orders_with_tag(f"stepcoin-{local['order_code']}") == []
    async with engine.connect() as conn:
        audits = (
            await conn.execute(
                text(
                    "SELECT entity_id, changes FROM admin_logs WHERE action = 'order.held' "
                    "ORDER BY id"
                )
            )
        ).all()
        stored = {
            r.user_id: r.score
            for r in await conn.execute(text("SELECT user_id, score FROM trust_scores"))
        }
    assert [a.entity_id for a in audits] == [held["id"]]
    farm_id, honest_id = uuid.UUID(farm["user"]["id"]), uuid.UUID(people[0]["user"]["id"])
    assert audits[0].changes["trust_score"] == stored[farm_id] < 30 <= stored[honest_id]


async def test_trust_scores_of_many_are_each_walkers_own(client, app, engine, standin):
    people, _product_id = await _shop(client, app, engine, standin, walkers=2)
    farm = await _farm_walker(client, engine)
    ids = [uuid.UUID(w["user"]["id"]) for w in [*people, farm]]
    async with app.state.database.sessionmaker() as session:
        one_by_one = {u: await trust.compute(session, u, store=False) for u in ids}
        together = await trust.compute_many(session, [*ids, ids[0], uuid.uuid4()])
        await session.rollback()
    assert together == one_by_one
    assert together[ids[-1]][0] < 30 <= together[ids[0]][0]


async def test_chunks_page_through_the_outbox(client, app, engine, standin):
    people, product_id = await _shop(client, app, engine, standin, walkers=5)
    placed = [await _place(client, w, product_id) for w in people]
    outcomes = await submit_pending_orders(app.state.database, defer_retry=_never_deferred, batch=2)
    assert outcomes == {"submitted": 5}
    await _in_shopify_once(standin, placed)
    assert tasks.SWEEP_RECORD_EVERY >= tasks.SWEEP_CONCURRENCY


async def test_a_shop_switched_off_fails_and_refunds_each_order_of_the_chunk(
    client, app, engine, standin
):
    """As each order's own client did: no shop configured is a refusal, not a retry."""
    people, product_id = await _shop(client, app, engine, standin, walkers=2)
    placed = [await _place(client, w, product_id) for w in people]

    def no_shop() -> Any:
        raise runtime.NoShopConfigured("no Shopify shop is configured")

    runtime.override_client_factory(no_shop)
    outcomes = await submit_pending_orders(app.state.database, defer_retry=_never_deferred)
    assert outcomes == {"failed": 2}
    for p, walker in zip(placed, people, strict=True):
        assert (await order_row(engine, p["id"]))["status"] == "failed"
        assert (await wallet(client, walker["access_token"]))["available_coins"] == 5000
    await ledger_ok(engine)

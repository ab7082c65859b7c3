"""Background jobs of the shop: catalogue sync, pushing orders to Shopify, webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
from sqlalchemy import text

from stepcoin.config import get_settings
from stepcoin.db import Database, session_scope
from stepcoin.fairplay import trust
from stepcoin.queue import SHOP_SUBMIT_ORDER, SHOP_SUBMIT_PENDING, JobRuntime
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.shop import catalogue, orders
from stepcoin.shop.models import POLLED_LAST, POLLED_STATUSES
from stepcoin.shop.runtime import NoShopConfigured, shop_available, shopify_client
from stepcoin.shop.shopify import ShopifyError, ShopifyOrderRef, ShopifyUnavailable

logger = logging.getLogger("stepcoin.shop.tasks")
blueprint = procrastinate.Blueprint()
SUBMIT_RETRY = procrastinate.RetryStrategy(max_attempts=50, exponential_wait=2)


def _database() -> Database:
    return JobRuntime.require_database()


# --- catalogue ------------------------------------------------------------------------------


async def sync_catalogue(database: Database, *, trigger: str) -> dict[str, Any]:
    """Pull every product from Shopify; upsert variants; deactivate what disappeared."""
    async with session_scope(database) as session:
        run_id = (
            await session.execute(
                text("INSERT INTO shop_sync_runs (trigger) VALUES (:t) RETURNING id"),
                {"t": trigger},
            )
        ).scalar_one()
        coins_per_unit = int(await runtime_settings.get(session, "shop.coins_per_currency_unit"))
    counts = {"products_seen": 0, "created": 0, "updated": 0, "deactivated": 0}
    seen: set[str] = set()
    try:
        async with shopify_client(get_settings()) as client:
            async for product in client.iter_products():
                counts["products_seen"] += 1
                active = product.status == "ACTIVE"
                async with session_scope(database) as session:
                    created, updated = await catalogue.upsert_shopify_product(
                        session,
                        product_id=product.id,
                        title=product.title,
                        description=product.description,
                        image_url=product.image_url,
                        category=product.category,
                        active=active,
                        updated_at=product.updated_at,
                        variants=[
                            {
                                "id": v.id,
                                "title": v.title,
                                "price": v.price,
                                "inventory_item_id": v.inventory_item_id,
                                "inventory_quantity": v.inventory_quantity,
                            }
                            for v in product.variants
                        ],
                        coins_per_unit=coins_per_unit,
                    )
                counts["created"] += created
                counts["updated"] += updated
                seen.update(v.id for v in product.variants)
        async with session_scope(database) as session:
            counts["deactivated"] = await catalogue.deactivate_missing(session, seen)
            await session.execute(
                text(
                    "UPDATE shop_sync_runs SET status = 'succeeded', finished_at = now(), "
                    "products_seen = :products_seen, created = :created, updated = :updated, "
                    "deactivated = :deactivated WHERE id = :id"
                ),
                {**counts, "id": run_id},
            )
    except Exception as exc:
        async with session_scope(database) as session:
            await session.execute(
                text(
                    "UPDATE shop_sync_runs SET status = 'failed', finished_at = now(), "
                    "error = :e WHERE id = :id"
                ),
                {"e": f"{type(exc).__name__}: {exc}"[:2000], "id": run_id},
            )
        logger.exception("catalogue sync failed", extra={"sync_run_id": run_id})
        raise
    logger.info("catalogue synced", extra={"sync_run_id": run_id, **counts})
    return {"id": run_id, "status": "succeeded", **counts}


@blueprint.periodic(cron="* * * * * 11", periodic_id="catalogue")
@blueprint.task(name="sync_catalogue_if_due", queueing_lock="sync_catalogue")
async def sync_catalogue_if_due(timestamp: int) -> bool:
    """Runs every minute; syncs when `shop.sync_interval_minutes` have passed since the last
    (never in production without a shop: nothing to sync, and no failed run every interval)."""
    if not shop_available(get_settings()):
        return False
    database = _database()
    async with session_scope(database) as session:
        interval = int(await runtime_settings.get(session, "shop.sync_interval_minutes"))
        due = (
            await session.execute(
                text(
                    "SELECT coalesce(max(started_at) < now() - make_interval(mins => :m), true) "
                    "FROM shop_sync_runs"
                ),
                {"m": interval},
            )
        ).scalar_one()
    if due:
        await sync_catalogue(database, trigger="schedule")
    return bool(due)


@blueprint.task(name="sync_catalogue", queueing_lock="sync_catalogue", queue="shop")
async def sync_catalogue_job(trigger: str = "manual") -> dict[str, Any]:
    return await sync_catalogue(_database(), trigger=trigger)


# --- orders ---------------------------------------------------------------------------------


async def submit_order(database: Database, order_id: uuid.UUID, *, attempt: int) -> str:
    """Create the order in Shopify (idempotent by tag) and mark it submitted.

    A transient failure raises (the queue retries with backoff); after
    `shop.order_submit_max_attempts` attempts, or on a permanent refusal, the order fails and
    is refunded and restocked.
    """
    async with session_scope(database) as session:
        row = (
            (
                await session.execute(
                    text(
                        "SELECT o.id, o.status, o.order_code, o.shipping_address, u.email, "
                        "o.user_id, o.released_at "
                        "FROM orders o JOIN users u ON u.id = o.user_id WHERE o.id = :id"
                    ),
                    {"id": order_id},
                )
            )
            .mappings()
            .first()
        )
        if row is None or row["status"] != "pending":
            return row["status"] if row else "missing"
        if row["released_at"] is None and await _held_by_trust(session, row["user_id"], order_id):
            return "held"
        lines = (
            await session.execute(
                text(
                    "SELECT p.shopify_variant_id, i.quantity FROM order_items i "
                    "JOIN reward_products p ON p.id = i.product_id WHERE i.order_id = :id "
                    "ORDER BY i.product_id"
                ),
                {"id": order_id},
            )
        ).all()
        max_attempts = int(await runtime_settings.get(session, "shop.order_submit_max_attempts"))
    if any(line.shopify_variant_id is None for line in lines):
        # a product that lives only here (admin-made): nothing to push, fulfilled by hand
        async with session_scope(database) as session:
            await orders.advance_status(session, order_id, "submitted")
        return "submitted"
    address = row["shipping_address"]
    try:
        async with shopify_client(get_settings()) as client:
            ref = await client.create_order(
                tag=f"stepcoin-{row['order_code']}",
                email=row["email"],
                lines=[(line.shopify_variant_id, line.quantity) for line in lines],
                shipping_address=address,
            )
    except ShopifyUnavailable:
        if attempt + 1 >= max_attempts:
            await _fail(database, order_id, "Shopify was unavailable for every attempt")
            return "failed"
        raise
    except ShopifyError as exc:
        await _fail(database, order_id, f"Shopify refused the order: {exc}")
        return "failed"
    async with session_scope(database) as session:
        moved = await session.execute(
            text(
                "UPDATE orders SET status = 'submitted', submitted_at = now(), updated_at = now(), "
                "shopify_order_id = :sid, shopify_order_name = :name "
                "WHERE id = :id AND status = 'pending' RETURNING id"
            ),
            {"sid": ref.id, "name": ref.name, "id": order_id},
        )
        if moved.scalar_one_or_none() is None:
            return await _record_after_cancel(session, order_id, ref)
    return "submitted"


async def _record_after_cancel(session: Any, order_id: uuid.UUID, ref: ShopifyOrderRef) -> str:
    """Shopify created an order that was no longer pending here: cancelled (and refunded)
    while Shopify was creating it, so the Shopify order is recorded and cancelled there too."""
    recorded = (
        await session.execute(
            text(
                "UPDATE orders SET shopify_order_id = :sid, shopify_order_name = :name "
                "WHERE id = :id AND shopify_order_id IS NULL AND status = 'cancelled' "
                "RETURNING id"
            ),
            {"sid": ref.id, "name": ref.name, "id": order_id},
        )
    ).scalar_one_or_none()
    if recorded is None:
        return "moved meanwhile"
    await orders.ask_shopify_to_cancel(session, order_id)
    return "cancelled meanwhile"


async def _held_by_trust(session: Any, user_id: uuid.UUID, order_id: uuid.UUID) -> bool:
    """A walker whose trust score is below `fairplay.redemption_hold_below` has the order held
    for a reviewer (stepcoin.fairplay.trust; issue 16) instead of sent to Shopify."""
    hold_below = int(await runtime_settings.get(session, "fairplay.redemption_hold_below"))
    if hold_below <= 0:
        return False
    score = await trust.score_of(session, user_id)
    if score >= hold_below:
        return False
    return await orders.hold_for_review(session, order_id, user_id=user_id, score=score)


async def _fail(database: Database, order_id: uuid.UUID, reason: str) -> None:
    async with session_scope(database) as session:
        await orders.refund_order(
            session, order_id, new_status="failed", reason=reason, allowed_from={"pending"}
        )
    logger.warning("order failed", extra={"order_id": str(order_id), "reason": reason})


class _SubmitRetry(procrastinate.RetryStrategy):
    """SUBMIT_RETRY counted from the order's first attempt: the sweep makes attempt 0 and hands
    a failed order to its own job with first_attempt=1, which then waits and stops as if the
    job had made every attempt."""

    def get_retry_decision(self, *, exception: BaseException, job: Any) -> Any:
        offset = int((job.task_kwargs or {}).get("first_attempt", 0))
        counted = job.evolve(attempts=job.attempts + offset)
        return super().get_retry_decision(exception=exception, job=counted)


@blueprint.task(
    name="submit_order",
    pass_context=True,
    retry=_SubmitRetry(max_attempts=SUBMIT_RETRY.max_attempts, exponential_wait=2),
    queue="shop",
)
async def submit_order_job(
    context: procrastinate.JobContext, order_id: str, first_attempt: int = 0
) -> str:
    """One order's submission, retried with backoff: an order the sweep could not submit, or
    one placed before the sweep existed (a job per order)."""
    attempt = context.job.attempts + first_attempt
    return await submit_order(_database(), uuid.UUID(order_id), attempt=attempt)


# The sweep: every pending order is an entry of the Shopify outbox (place_order.v2.sql wakes
# the sweep instead of queueing a job per order). One sweep job waits at most (its queueing
# lock) and one runs at a time (a session advisory lock, which a killed worker's connection
# gives back; a procrastinate lock would stay held by the dead worker's job, and its retry
# would collide with the sweep waiting meanwhile); the periodic run is the safety net.
SUBMIT_PENDING_LOCK = SHOP_SUBMIT_PENDING
# the advisory lock (two int4 keys) every placement holds shared while it decides on the
# wake-up (place_order.v2.sql); nothing takes it exclusively, so it never blocks a placement
SUBMIT_PENDING_MARK = (5301, 1)
DRAIN_POLL_SECONDS = 0.005
# the key of the advisory lock a running sweep holds for its whole run
SWEEP_RUNNING_ADVISORY = "stepcoin:shop:submit_pending:running"
# the key of the advisory lock the one sweep waiting to run next holds while it waits
SWEEP_NEXT_ADVISORY = "stepcoin:shop:submit_pending:next"
SWEEP_BATCH = 100  # orders read, trust-checked and written per transaction
SWEEP_CONCURRENCY = 4  # orders sent to Shopify at once
# orders created in Shopify before their submitted status is written (one UPDATE): bounds how
# long a created order waits to be recorded (a crash before it is harmless: the next attempt
# finds it by its tag)
SWEEP_RECORD_EVERY = 16

# A chunk of the outbox with all the sweep needs of each order, oldest first: the orders with
# no job of their own (a retry, or placed before the sweep: that job's), their walker's email
# and their lines (Shopify variant, quantity; by product).
_PENDING_CHUNK = text(
    "SELECT o.id, o.created_at, o.order_code, o.shipping_address, o.user_id, o.released_at, "
    "u.email, "
    "ARRAY(SELECT p.shopify_variant_id FROM order_items i "
    "JOIN reward_products p ON p.id = i.product_id WHERE i.order_id = o.id "
    "ORDER BY i.product_id) AS variants, "
    "ARRAY(SELECT i.quantity FROM order_items i WHERE i.order_id = o.id "
    "ORDER BY i.product_id) AS quantities "
    "FROM orders o JOIN users u ON u.id = o.user_id "
    "WHERE o.status = 'pending' "
    "AND (o.created_at, o.id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid)) "
    "AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.lock = 'order:' || o.id::text) "
    "ORDER BY o.created_at, o.id LIMIT :limit"
)


async def submit_pending_orders(
    database: Database, *, defer_retry: Any, batch: int = SWEEP_BATCH
) -> dict[str, int]:
    """Submit every pending order that has no job of its own, oldest first: attempt 0 of each.

    An order Shopify could not take now (unavailable, or anything unexpected) goes to its own
    submit_order job, which retries with the same backoff and limit as before the sweep
    (`defer_retry(order_id)` defers it). Exactly once: one sweep at a time, an order with a job
    is left to the job, submit_order moves only a pending order and Shopify finds an order by
    its tag before creating it.
    """
    async with database.engine.connect() as running:
        if not await _wait_for_turn(running):
            return {}
        try:
            return await _sweep(database, defer_retry=defer_retry, batch=batch)
        finally:
            await running.execute(
                text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": SWEEP_RUNNING_ADVISORY}
            )
            await running.commit()


async def _wait_for_turn(conn: Any) -> bool:
    """Wait until no other sweep runs, unless another already waits for that: then False.

    One sweep runs and one waits at most. Each order placed while none waited woke a sweep, and
    a sweep that finds another waiting has nothing of its own to do: the waiting one reads the
    pending orders after it starts, so it sees every order committed before this job was
    fetched (a placement's wake-up is visible only once its order is). Without this, each
    wake-up during a run parked one more sweep on the lock, holding a slot of the worker's
    `job_concurrency` (2-3 of its 4 under 300 orders/s), and the boards' refresh and the
    achievements batch waited for the slots.
    """
    next_in_line = (
        await conn.execute(
            text("SELECT pg_try_advisory_lock(hashtext(:key))"), {"key": SWEEP_NEXT_ADVISORY}
        )
    ).scalar_one()
    await conn.commit()
    if not next_in_line:
        return False
    try:
        await conn.execute(
            text("SELECT pg_advisory_lock(hashtext(:key))"), {"key": SWEEP_RUNNING_ADVISORY}
        )
    finally:
        await conn.execute(
            text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": SWEEP_NEXT_ADVISORY}
        )
        await conn.commit()
    return True


# advisory locks belong to one database: another database's placements (a second
# installation or test database on the server) are not this one's
_PLACEMENTS_DECIDING = text(
    "SELECT coalesce(array_agg(virtualtransaction), '{}') FROM pg_locks "
    "WHERE locktype = 'advisory' AND granted AND objsubid = 2 "
    "AND classid = CAST(:a AS oid) AND objid = CAST(:b AS oid) "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


async def _placements_deciding(conn: Any) -> set[str]:
    """The transactions of the placements that hold SUBMIT_PENDING_MARK now."""
    a, b = SUBMIT_PENDING_MARK
    return set((await conn.execute(_PLACEMENTS_DECIDING, {"a": a, "b": b})).scalar_one())


async def _wait_for_placements_deciding(database: Database) -> None:
    """Wait until every placement that held the mark when this sweep started has ended.

    Such a placement may have seen this sweep's job still waiting and deferred no other; its
    order is visible once it ends. Placements that start later see the job running and defer
    the next sweep. Only the transactions seen at the start are waited for (their virtual
    transaction ids), so a steady stream of new placements never holds the sweep back, and
    no placement ever waits for the sweep.
    """
    async with database.engine.connect() as conn:
        deciding = await _placements_deciding(conn)
        while deciding:
            await asyncio.sleep(DRAIN_POLL_SECONDS)
            deciding &= await _placements_deciding(conn)


async def _sweep(database: Database, *, defer_retry: Any, batch: int) -> dict[str, int]:
    await _wait_for_placements_deciding(database)
    outcomes: dict[str, int] = {}
    after: tuple[Any, Any] = (datetime(1970, 1, 1, tzinfo=UTC), uuid.UUID(int=0))
    while True:
        chunk = await _settle_chunk(database, after=after, batch=batch)
        settled = list(chunk.outcomes)
        if chunk.for_shopify:
            async with contextlib.AsyncExitStack() as stack:
                client = await _open_client(stack)
                for start in range(0, len(chunk.for_shopify), SWEEP_RECORD_EVERY):
                    settled += await _submit_to_shopify(
                        database,
                        client,
                        chunk.for_shopify[start : start + SWEEP_RECORD_EVERY],
                        defer_retry=defer_retry,
                        max_attempts=chunk.max_attempts,
                    )
        for outcome in settled:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if chunk.read < batch:
            # a short chunk was all there was when it was read: an order placed since then
            # woke another sweep (its placement found no sweep's job waiting, this one runs)
            return outcomes
        after = chunk.last


@dataclass
class _Chunk:
    """A chunk of the outbox once settled here: the orders left for Shopify, the outcomes of
    the others, how many orders were read and the last one's key (created_at, id)."""

    for_shopify: list[Any] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    read: int = 0
    last: tuple[Any, Any] = (None, None)
    max_attempts: int = 1


async def _settle_chunk(database: Database, *, after: tuple[Any, Any], batch: int) -> _Chunk:
    """One transaction for a chunk of the outbox: read it with its lines, check the walkers'
    trust for all of it at once, hold the orders of walkers below the bar and mark the orders
    with nothing to push submitted (one UPDATE each)."""
    chunk = _Chunk()
    async with session_scope(database) as session:
        rows = list(
            (
                await session.execute(
                    _PENDING_CHUNK, {"after_at": after[0], "after_id": after[1], "limit": batch}
                )
            ).all()
        )
        chunk.read = len(rows)
        if not rows:
            return chunk
        chunk.last = (rows[-1].created_at, rows[-1].id)
        chunk.max_attempts = int(
            await runtime_settings.get(session, "shop.order_submit_max_attempts")
        )
        held = await _hold_by_trust(session, rows)
        chunk.outcomes += ["held"] * len(held)
        rows = [row for row in rows if row.id not in held]
        local = {row.id: row.user_id for row in rows if any(v is None for v in row.variants)}
        if local:
            # a product that lives only here (admin-made): nothing to push, fulfilled by hand
            moved = await orders.mark_submitted_many(session, local)
            chunk.outcomes += ["submitted" if i in moved else "moved meanwhile" for i in local]
        chunk.for_shopify = [row for row in rows if row.id not in local]
    return chunk


async def _hold_by_trust(session: Any, rows: list[Any]) -> set[uuid.UUID]:
    """_held_by_trust for a chunk: the scores of its walkers in one go (fairplay.trust)."""
    hold_below = int(await runtime_settings.get(session, "fairplay.redemption_hold_below"))
    unreleased = [row for row in rows if row.released_at is None]
    if hold_below <= 0 or not unreleased:
        return set()
    scored = await trust.compute_many(session, [row.user_id for row in unreleased])
    low = {
        row.id: scored[row.user_id][0]
        for row in unreleased
        if row.user_id in scored and scored[row.user_id][0] < hold_below
    }
    return await orders.hold_many_for_review(
        session, low, {row.id: row.user_id for row in unreleased}
    )


async def _open_client(stack: contextlib.AsyncExitStack) -> Any:
    """One Shopify client for the sweep's chunk (its connections are reused), or the error
    that opening it raised: then every order meets that error, as each order's own client met
    it before (no shop configured: a ShopifyError, the order fails; anything else: retried)."""
    try:
        return await stack.enter_async_context(shopify_client(get_settings()))
    except Exception as exc:
        return exc


async def _submit_to_shopify(
    database: Database, client: Any, rows: list[Any], *, defer_retry: Any, max_attempts: int
) -> list[str]:
    """Attempt 0 of each order in Shopify (SWEEP_CONCURRENCY at once), then one transaction
    records every order Shopify took. A refusal fails (and refunds) its order; an order
    Shopify could not take now goes to its own retrying job."""
    gate = asyncio.Semaphore(SWEEP_CONCURRENCY)

    async def create(row: Any) -> ShopifyOrderRef | BaseException:
        if isinstance(client, BaseException):
            return client
        async with gate:
            try:
                ref: ShopifyOrderRef = await client.create_order(
                    tag=f"stepcoin-{row.order_code}",
                    email=row.email,
                    lines=list(zip(row.variants, row.quantities, strict=True)),
                    shipping_address=row.shipping_address,
                )
            except Exception as exc:
                return exc
            return ref

    results = await asyncio.gather(*(create(row) for row in rows))
    created = {
        row.id: r for row, r in zip(rows, results, strict=True) if isinstance(r, ShopifyOrderRef)
    }
    outcomes: list[str] = []
    if created:
        async with session_scope(database) as session:
            moved = await orders.mark_submitted_many(
                session,
                {row.id: row.user_id for row in rows if row.id in created},
                {i: (r.id, r.name) for i, r in created.items()},
            )
            for order_id in sorted(created):
                if order_id in moved:
                    outcomes.append("submitted")
                else:
                    outcomes.append(
                        await _record_after_cancel(session, order_id, created[order_id])
                    )
    for row, result in zip(rows, results, strict=True):
        if isinstance(result, ShopifyOrderRef):
            continue
        if isinstance(result, ShopifyUnavailable):
            if max_attempts <= 1:
                await _fail(database, row.id, "Shopify was unavailable for every attempt")
                outcomes.append("failed")
                continue
        elif isinstance(result, ShopifyError):
            await _fail(database, row.id, f"Shopify refused the order: {result}")
            outcomes.append("failed")
            continue
        logger.warning(
            "order not submitted; its own job retries it",
            extra={"order_id": str(row.id), "error": repr(result)},
        )
        await defer_retry(row.id)
        outcomes.append("retrying")
    return outcomes


@blueprint.periodic(cron="* * * * * 32", periodic_id="submit-pending")
@blueprint.task(
    name="submit_pending",
    queueing_lock=SUBMIT_PENDING_LOCK,
    pass_context=True,
    queue="shop",
)
async def submit_pending(
    context: procrastinate.JobContext, timestamp: int | None = None
) -> dict[str, int]:
    """Woken by each order placed while none waits (place_order.v2.sql), and every minute."""
    app = context.app

    async def defer_retry(order_id: uuid.UUID) -> None:
        # the wait before the second attempt, as SUBMIT_RETRY's after attempt 0
        await app.configure_task(
            SHOP_SUBMIT_ORDER,
            lock=f"order:{order_id}",
            schedule_in={"seconds": SUBMIT_RETRY.exponential_wait},
        ).defer_async(order_id=str(order_id), first_attempt=1)

    return await submit_pending_orders(_database(), defer_retry=defer_retry)


class ShopSwitchedOff(RuntimeError):
    """No shop is configured: a Shopify call can never succeed, so the job is not retried."""


class _RetryUnlessShopOff(procrastinate.RetryStrategy):
    def get_retry_decision(self, *, exception: BaseException, job: Any) -> Any:
        if isinstance(exception, (ShopSwitchedOff, NoShopConfigured)):
            return None
        return super().get_retry_decision(exception=exception, job=job)


CANCEL_RETRY = _RetryUnlessShopOff(max_attempts=50, exponential_wait=2)


async def cancel_order_in_shopify(database: Database, order_id: uuid.UUID) -> str:
    """Ask Shopify to cancel an order and act on its answer.

    Confirmed (cancelled_at set): a walker's open request is refunded, exactly once (the
    orders/cancelled webhook may confirm first; the refund's ledger reference and the status
    check make the second a no-op). Refused (e.g. already fulfilled): the request is closed
    and the order goes back to its status. Unavailable: raised, the queue retries. With the
    shop switched off: raised as ShopSwitchedOff, logged, never retried.
    """
    async with session_scope(database) as session:
        row = (
            await session.execute(
                text("SELECT status, shopify_order_id FROM orders WHERE id = :id"),
                {"id": order_id},
            )
        ).first()
    if row is None or not row.shopify_order_id:
        return "not in shopify"
    if not shop_available(get_settings()):
        logger.error(
            "cannot cancel the order in Shopify: no shop is configured (the shop is switched "
            "off); the job stops here and an admin settles the order by hand",
            extra={"order_id": str(order_id), "status": row.status},
        )
        raise ShopSwitchedOff(f"no Shopify shop is configured to cancel order {order_id}")
    try:
        async with shopify_client(get_settings()) as client:
            state = await client.cancel_order(row.shopify_order_id)
    except ShopifyUnavailable:
        raise
    except NoShopConfigured:
        raise
    except ShopifyError as exc:
        async with session_scope(database) as session:
            refused = await orders.refuse_cancel(
                session, order_id, reason=f"Shopify refused the cancellation: {exc}"
            )
        logger.warning(
            "shopify refused a cancellation", extra={"order_id": str(order_id), "error": str(exc)}
        )
        return "refused" if refused else "refused (no open request)"
    if state.cancelled_at is None:  # Shopify cancels in a job: the webhook or the poll confirms
        return "requested"
    async with session_scope(database) as session:
        refunded = await orders.confirm_cancel(
            session, order_id, reason="cancelled in Shopify at the customer's request"
        )
    return "cancelled and refunded" if refunded else "cancelled (already refunded)"


@blueprint.task(name="cancel_in_shopify", retry=CANCEL_RETRY, queue="shop")
async def cancel_in_shopify(order_id: str) -> str:
    return await cancel_order_in_shopify(_database(), uuid.UUID(order_id))


POLL_AFTER_MINUTES = 10
POLL_BATCH = 200
POLL_SHIPPED_DAYS = 30
"""An order Shopify still calls fulfilled or shipped this long after it shipped is read back no
more (shopify_poll_ended_at; a webhook still moves it): carriers that never report a delivery
would otherwise keep every order ever sent in the poll's cycle."""
# The orders Shopify holds that have not moved for a while: those that can still move coins
# (submitted, cancel_requested) first, then fulfilled and shipped ones, each oldest first; the
# order of their own partial index (ix_orders_awaiting_shopify, migration 0056), whose
# expression and predicate this repeats
POLLED_ORDERS = (
    "SELECT id, shopify_order_id FROM orders "
    f"WHERE status IN {POLLED_STATUSES} AND shopify_order_id IS NOT NULL "
    "AND shopify_poll_ended_at IS NULL AND updated_at < now() - make_interval(mins => :m) "
    f"ORDER BY {POLLED_LAST}, updated_at LIMIT :limit"
)


@blueprint.periodic(cron="*/10 * * * * 38", periodic_id="poll")
@blueprint.task(name="poll_orders", queueing_lock="poll_orders", queue="shop")
async def poll_orders(timestamp: int) -> int:
    """The safety net under webhooks: orders Shopify has but that have not moved for a while
    are read back from Shopify and moved forward (or refunded if cancelled there); one still
    fulfilled or shipped POLL_SHIPPED_DAYS after it shipped is not read back again."""
    database = _database()
    async with session_scope(database) as session:
        rows = (
            await session.execute(
                text(POLLED_ORDERS), {"m": POLL_AFTER_MINUTES, "limit": POLL_BATCH}
            )
        ).all()
    moved = 0
    if not rows:
        return 0
    async with shopify_client(get_settings()) as client:
        for row in rows:
            state = await client.get_order(row.shopify_order_id)
            if state is None:
                continue
            payload = {
                "admin_graphql_api_id": state.id,
                "id": state.id.rsplit("/", 1)[-1],
                "updated_at": state.updated_at.isoformat(),
                "cancelled_at": state.cancelled_at.isoformat() if state.cancelled_at else None,
                "fulfillment_status": (state.fulfillment_status or "").lower(),
                "fulfillments": [{"tracking_number": t} for t in state.tracking_numbers],
            }
            async with session_scope(database) as session:
                outcome = await _apply_order_webhook(session, "orders/updated", payload)
                await session.execute(
                    text(
                        "UPDATE orders SET updated_at = now(), shopify_poll_ended_at = CASE "
                        "WHEN status IN ('fulfilled', 'shipped') AND coalesce(shipped_at, "
                        "fulfilled_at) < now() - make_interval(days => :days) THEN now() END "
                        "WHERE id = :id"
                    ),
                    {"id": row.id, "days": POLL_SHIPPED_DAYS},
                )
            moved += outcome.startswith(("moved", "cancelled"))
    return moved


# --- webhooks -------------------------------------------------------------------------------


# A webhook's updated_at may run ahead of our clock by this much; beyond it, it is clamped to
# now, so an odd or forged future time cannot make the real sync's updates look older.
FUTURE_SKEW = timedelta(minutes=5)


def _parse_time(value: Any) -> datetime:
    # whole seconds, as Shopify writes its times: a clamped time must not be ahead of a real
    # change made later in the same second (whose updated_at is that second, truncated)
    now = datetime.now(UTC).replace(microsecond=0)
    if not value:
        return now
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed > now + FUTURE_SKEW:
        logger.warning("a webhook's updated_at is in the future: clamped", extra={"at": str(value)})
        return now
    return parsed


def _gid(kind: str, payload: dict[str, Any]) -> str:
    return str(payload.get("admin_graphql_api_id") or f"gid://shopify/{kind}/{payload['id']}")


async def handle_webhook(database: Database, event_id: int) -> str:
    async with session_scope(database) as session:
        event = (
            await session.execute(
                text(
                    "SELECT topic, payload, processed_at FROM webhook_events "
                    "WHERE id = :id FOR UPDATE"
                ),
                {"id": event_id},
            )
        ).first()
        if event is None or event.processed_at is not None:
            return "skipped"
        payload = event.payload
        outcome = await _apply_webhook(session, event.topic, payload)
        await session.execute(
            text("UPDATE webhook_events SET processed_at = now(), outcome = :o WHERE id = :id"),
            {"o": outcome, "id": event_id},
        )
    return outcome


async def _apply_webhook(session: Any, topic: str, payload: dict[str, Any]) -> str:
    if topic in ("products/create", "products/update"):
        coins_per_unit = int(await runtime_settings.get(session, "shop.coins_per_currency_unit"))
        image = payload.get("image") or {}
        created, updated = await catalogue.upsert_shopify_product(
            session,
            product_id=_gid("Product", payload),
            title=payload.get("title") or "",
            description=payload.get("body_html") or payload.get("description"),
            image_url=image.get("src") if isinstance(image, dict) else None,
            category=payload.get("product_type") or None,
            active=str(payload.get("status", "active")).lower() == "active",
            updated_at=_parse_time(payload.get("updated_at")),
            variants=[
                {
                    "id": _gid("ProductVariant", v),
                    "title": v.get("title"),
                    "price": v.get("price") or "0",
                    "inventory_item_id": (
                        f"gid://shopify/InventoryItem/{v['inventory_item_id']}"
                        if v.get("inventory_item_id") is not None
                        and not str(v["inventory_item_id"]).startswith("gid://")
                        else v.get("inventory_item_id")
                    ),
                    "inventory_quantity": v.get("inventory_quantity") or 0,
                }
                for v in payload.get("variants") or []
            ],
            coins_per_unit=coins_per_unit,
        )
        return f"product upserted ({created} new, {updated} updated)"
    if topic == "products/delete":
        count = await catalogue.deactivate_shopify_product(session, _gid("Product", payload))
        return f"{count} deactivated"
    if topic == "inventory_levels/update":
        item = str(payload["inventory_item_id"])
        item_gid = item if item.startswith("gid://") else f"gid://shopify/InventoryItem/{item}"
        count = await catalogue.set_inventory(
            session,
            inventory_item_id=item_gid,
            available=int(payload.get("available") or 0),
            updated_at=_parse_time(payload.get("updated_at")),
        )
        return f"{count} stock updated"
    if topic in ("orders/fulfilled", "orders/updated", "orders/cancelled"):
        return await _apply_order_webhook(session, topic, payload)
    return "ignored"


async def _apply_order_webhook(session: Any, topic: str, payload: dict[str, Any]) -> str:
    shopify_id = _gid("Order", payload)
    tags = str(payload.get("tags") or "")
    code = next((t.strip()[9:] for t in tags.split(",") if t.strip().startswith("stepcoin-")), None)
    row = (
        await session.execute(
            text(
                "SELECT id, status, shopify_updated_at FROM orders "
                "WHERE shopify_order_id = :sid OR order_code = CAST(:code AS varchar) "
                "LIMIT 1"
            ),
            {"sid": shopify_id, "code": code},
        )
    ).first()
    if row is None:
        return "unknown order"
    updated_at = _parse_time(payload.get("updated_at"))
    if row.shopify_updated_at is not None and updated_at < row.shopify_updated_at:
        return "older than what we know: ignored"
    tracking = [
        f.get("tracking_number")
        for f in payload.get("fulfillments") or []
        if isinstance(f, dict) and f.get("tracking_number")
    ]
    await session.execute(
        text(
            "UPDATE orders SET shopify_updated_at = :at, shopify_order_id = :sid, "
            "tracking_numbers = CASE WHEN cardinality(CAST(:tn AS varchar[])) > 0 "
            "THEN CAST(:tn AS varchar[]) ELSE tracking_numbers END WHERE id = :id"
        ),
        {"at": updated_at, "sid": shopify_id, "tn": tracking, "id": row.id},
    )
    if topic == "orders/cancelled" or payload.get("cancelled_at"):
        if await orders.confirm_cancel(session, row.id, reason="cancelled in Shopify"):
            return "cancelled and refunded"
        return f"cancel ignored ({row.status})"
    fulfillment = str(payload.get("fulfillment_status") or "").lower()
    target = "shipped" if tracking else ("fulfilled" if fulfillment == "fulfilled" else None)
    if target and row.status == orders.CANCEL_REQUESTED:
        # Shopify fulfilled it before the cancel: the request is refused by the facts
        await orders.refuse_cancel(
            session, row.id, reason="Shopify fulfilled the order before it could be cancelled"
        )
        row = (
            await session.execute(
                text("SELECT id, status FROM orders WHERE id = :id"), {"id": row.id}
            )
        ).first()
    if (
        target
        and row.status in orders.STATUS_RANK
        and (orders.STATUS_RANK[target] > orders.STATUS_RANK[row.status])
    ):
        await orders.advance_status(session, row.id, target)
        return f"moved to {target}"
    return "no change"


@blueprint.task(
    name="handle_webhook",
    retry=procrastinate.RetryStrategy(max_attempts=10, exponential_wait=2),
    queue="shop",
)
async def handle_webhook_job(event_id: int) -> str:
    return await handle_webhook(_database(), event_id)

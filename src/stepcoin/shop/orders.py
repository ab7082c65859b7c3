"""Orders paid in coins: all or nothing, exactly once, refunded exactly once.

Placing an order is one call of one SQL function, stepcoin_place_order (shop/sql/
place_order.v1.sql), in one round trip and one transaction: the wallet row is locked first (a
concurrent duplicate of the same Idempotency-Key waits there and then finds the first order),
the product rows next, in id order (the same order everywhere, so no deadlock); every short
line and the missing coins are collected into one 409; then stock is taken, the order stored
with frozen prices, the wallet debited through stepcoin_wallet_post (the redemption ledger
row), and the Shopify push job enqueued in the same transaction (procrastinate's defer is SQL).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.db import Database, session_scope
from stepcoin.errors import (
    AppError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    account_gone,
)
from stepcoin.notify import service as notify
from stepcoin.queue import (
    SHOP_CANCEL_IN_SHOPIFY,
    SHOP_SUBMIT_PENDING,
    defer_in_transaction,
)
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.shop.schemas import OrderIn
from stepcoin.wallet import service as wallet

# Order codes are read aloud to support: no 0/O, 1/I/L, 2/Z, 5/S, 8/B.
CODE_ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
CODE_LENGTH = 8
STATUS_RANK = {"pending": 0, "submitted": 1, "fulfilled": 2, "shipped": 3, "delivered": 4}
TERMINAL = {"cancelled", "failed", "delivered"}
HELD = "held"  # waiting for a reviewer (the walker's trust score); never in Shopify
CANCELLABLE = {"pending", "submitted", HELD}
# Shopify's confirmation (the cancel job's answer, an orders/cancelled webhook, the poll) may
# refund an order in these states; a walker's cancel after submission waits in the last one.
CANCEL_REQUESTED = "cancel_requested"
CONFIRMABLE = CANCELLABLE | {CANCEL_REQUESTED}


# A random byte below this maps uniformly onto the alphabet (byte % 25); the rest are skipped.
_CODE_BYTE_LIMIT = 256 - 256 % len(CODE_ALPHABET)


def new_order_codes(count: int) -> list[str]:
    """`count` codes of 8 characters from 25 unambiguous ones (~1.5e11 codes), shown as
    XXXX-XXXX; uniform, from the OS's CSPRNG in one read (secrets.choice per character costs
    a system call each: ~60 µs for three codes, against ~2 µs)."""
    wanted = count * CODE_LENGTH
    chars: list[str] = []
    while len(chars) < wanted:
        chars += [
            CODE_ALPHABET[b % len(CODE_ALPHABET)]
            for b in secrets.token_bytes(wanted + 8)
            if b < _CODE_BYTE_LIMIT
        ]
    return ["".join(chars[i * CODE_LENGTH : (i + 1) * CODE_LENGTH]) for i in range(count)]


def new_order_code() -> str:
    """One order code (see new_order_codes)."""
    return new_order_codes(1)[0]


def fingerprint(body: OrderIn) -> str:
    canonical = orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


class _MovedMeanwhile(Exception):
    """The order changed between a read and its lock; the caller decides again."""


def email_unverified() -> Forbidden:
    return Forbidden(
        "Confirm your email address before ordering: open the link in the mail we sent, or "
        "ask for a new one (POST /v1/auth/verify-email/request).",
        code="email_unverified",
    )


class OrderProblem(AppError):
    status, code, title = 409, "order_not_possible", "The order cannot be placed"


PLACE_ORDER_SQL = "SELECT * FROM stepcoin_place_order($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb)"
# Order codes offered to one placement; all of them taken is a retry (each is ~1e-11 likely).
CODE_CANDIDATES = 3
NO_FREE_CODE_SQLSTATE = "SC003"


def _json(value: Any) -> Any:
    """JSON from the driver: text, or already decoded when a codec is installed."""
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


async def place_order(
    driver: Any, *, user_id: uuid.UUID, idempotency_key: str, body: OrderIn
) -> tuple[dict[str, Any], bool]:
    """Returns (order, created); a retry with the same key and body returns the first order.

    One round trip: stepcoin_place_order (shop/sql/place_order.v1.sql) locks, checks and writes
    everything in one statement on the bare driver connection (autocommit: the statement is
    its own transaction, committed before the answer is built). A refusal writes nothing.
    """
    settings = await runtime_settings.all_raw(driver)
    if len(body.items) > settings["shop.max_items_per_order"]:
        raise InvalidInput(
            f"At most {settings['shop.max_items_per_order']} products per order.",
            code="too_many_items",
        )
    too_many = [
        i.product_id for i in body.items if i.quantity > settings["shop.max_quantity_per_item"]
    ]
    if too_many:
        raise InvalidInput(
            f"At most {settings['shop.max_quantity_per_item']} of one product per order.",
            code="quantity_too_large",
            extra={"product_ids": too_many},
        )
    dumped = body.model_dump(mode="json")
    print_ = hashlib.sha256(orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS)).hexdigest()
    lines = sorted((i.product_id, i.quantity) for i in body.items)
    try:
        row = await driver.fetchrow(
            PLACE_ORDER_SQL,
            user_id,
            idempotency_key,
            print_,
            uuid.uuid4(),
            new_order_codes(CODE_CANDIDATES),
            [product_id for product_id, _ in lines],
            [quantity for _, quantity in lines],
            orjson.dumps(dumped["shipping_address"]).decode(),
        )
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == NO_FREE_CODE_SQLSTATE:
            raise Conflict("Could not allocate an order code; retry.", code="retry") from None
        raise
    outcome = row["outcome"]
    if outcome == "created" or outcome == "replayed":
        order = _order_row(row)
        del order["outcome"], order["available_coins"], order["products"]
        return order, outcome == "created"
    if outcome == "idempotency_key_reused":
        raise InvalidInput(
            "This Idempotency-Key was used for a different order.",
            code="idempotency_key_reused",
        )
    if outcome == "account_gone":
        raise account_gone()
    if outcome == "email_unverified":  # walkers earn unverified; goods ship to proven owners
        raise email_unverified()
    if outcome == "not_possible":
        raise _order_problem(_json(row["products"]), row["available_coins"])
    raise RuntimeError(f"stepcoin_place_order answered {outcome!r}")


def _order_problem(products: list[dict[str, Any]], available: int) -> AppError:
    """The one 409 of a refused order: every short line (in product id order) and the missing
    coins, from the products as the placement saw them under its locks."""
    problems: list[dict[str, Any]] = []
    total = 0
    for product in products:
        product_id, quantity = product["product_id"], product["quantity"]
        if product["coin_price"] is None or not product["is_active"]:
            problems.append({"product_id": product_id, "problem": "not_available"})
            continue
        total += product["coin_price"] * quantity
        if product["stock_quantity"] < quantity:
            problems.append(
                {
                    "product_id": product_id,
                    "problem": "insufficient_stock",
                    "requested": quantity,
                    "available": product["stock_quantity"],
                }
            )
    missing = max(0, total - available)
    if not problems and not missing:  # the function refused; it never does without a reason
        return Conflict("The order could not be placed; retry.", code="retry")
    detail = []
    if problems:
        detail.append(f"{len(problems)} line(s) cannot be filled")
    if missing:
        detail.append(f"{missing} more coins are needed")
    code = "insufficient_stock" if problems else "insufficient_coins"
    if problems and missing:
        code = "insufficient_stock_and_coins"
    return OrderProblem(
        "; ".join(detail) + ".",
        code=code,
        extra={
            "lines": problems,
            "missing_coins": missing,
            "total_coins": total,
            "available_coins": available,
        },
    )


ORDER_SELECT = """
SELECT o.id, o.user_id, o.order_code, o.status, o.total_coins, o.shipping_address,
       o.tracking_numbers, o.created_at, o.updated_at, o.shopify_order_id, o.failure_reason,
       o.cancel_requested_at, o.cancel_refused_reason,
       coalesce((SELECT json_agg(json_build_object(
            'product_id', i.product_id, 'title', p.title, 'quantity', i.quantity,
            'coin_price', i.coin_price_at_purchase) ORDER BY i.product_id)
         FROM order_items i JOIN reward_products p ON p.id = i.product_id
         WHERE i.order_id = o.id), '[]') AS items
FROM orders o
"""


def _order_row(row: Any) -> dict[str, Any]:
    data = dict(row)
    for key in ("items", "shipping_address"):
        if isinstance(data[key], (str, bytes)):
            data[key] = orjson.loads(data[key])
    data["tracking_numbers"] = list(data["tracking_numbers"] or [])
    return data


async def get_order(
    session: AsyncSession, order_id: uuid.UUID, *, user_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """One order; with user_id, only that user's (anyone else's is a 404, never a 403)."""
    params: dict[str, Any] = {"id": order_id}
    where = "WHERE o.id = :id"
    if user_id is not None:
        where += " AND o.user_id = :u"
        params["u"] = user_id
    row = (await session.execute(text(ORDER_SELECT + where), params)).mappings().first()
    if row is None:
        raise NotFound("No such order.", code="order_not_found")
    return _order_row(row)


async def list_orders(
    session: AsyncSession,
    *,
    user_id: uuid.UUID | None,
    status: str | None = None,
    limit: int = 50,
    before: tuple[Any, uuid.UUID] | None = None,
) -> list[dict[str, Any]]:
    """Newest first; for a user, only theirs. Keyset pagination on (created_at, id)."""
    conditions: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if user_id is not None:
        conditions.append("o.user_id = :u")
        params["u"] = user_id
    if status:
        conditions.append("o.status = :status")
        params["status"] = status
    if before:
        conditions.append("(o.created_at, o.id) < (:b_at, :b_id)")
        params["b_at"], params["b_id"] = before
    where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    rows = (
        await session.execute(
            text(ORDER_SELECT + where + " ORDER BY o.created_at DESC, o.id DESC LIMIT :limit"),
            params,
        )
    ).mappings()
    return [_order_row(r) for r in rows]


async def refund_order(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    new_status: str,
    reason: str,
    allowed_from: set[str],
    user_id: uuid.UUID | None = None,
    admin_id: uuid.UUID | None = None,
    require_not_in_shopify: bool = False,
) -> dict[str, Any]:
    """Cancel or fail an order: coins back and stock back, exactly once (the refund's ledger
    reference is unique per order, and the status moves only from an allowed state).
    With require_not_in_shopify, an order that reached Shopify meanwhile raises
    _MovedMeanwhile (before anything is written)."""
    owner = (
        await session.execute(
            text(
                "SELECT user_id FROM orders WHERE id = :id"
                + (" AND user_id = :u" if user_id else "")
            ),
            {"id": order_id, "u": user_id},
        )
    ).scalar_one_or_none()
    if owner is None:
        raise NotFound("No such order.", code="order_not_found")
    await session.execute(text("SELECT 1 FROM wallets WHERE user_id = :u FOR UPDATE"), {"u": owner})
    order = (
        await session.execute(
            text(
                "SELECT status, total_coins, order_code, shopify_order_id FROM orders "
                "WHERE id = :id FOR UPDATE"
            ),
            {"id": order_id},
        )
    ).one()
    if require_not_in_shopify and (
        order.shopify_order_id is not None or order.status not in allowed_from
    ):
        raise _MovedMeanwhile
    if order.status not in allowed_from:
        raise Conflict(
            f"An order that is {order.status} cannot become {new_status}.",
            code="order_not_cancellable",
            extra={"current_status": order.status},
        )
    items = (
        await session.execute(
            text(
                "SELECT product_id, quantity FROM order_items WHERE order_id = :id "
                "ORDER BY product_id"
            ),
            {"id": order_id},
        )
    ).all()
    for item in items:  # product rows in id order, as when the order was placed
        await session.execute(
            text(
                "UPDATE reward_products SET stock_quantity = stock_quantity + :q, "
                "updated_at = now() WHERE id = :id"
            ),
            {"q": item.quantity, "id": item.product_id},
        )
    await wallet.post(
        session,
        owner,
        [
            wallet.Entry(
                order.total_coins,
                wallet.REFUND,
                f"refund:{order_id}",
                f"Order {order.order_code} {new_status}: {reason}"[:500],
            )
        ],
    )
    await session.execute(
        text(
            "UPDATE orders SET status = :st, failure_reason = :reason, updated_at = now(), "
            "cancelled_at = now() WHERE id = :id"
        ),
        {"st": new_status, "reason": reason, "id": order_id},
    )
    if admin_id is not None:
        await audit.record(
            session,
            admin_id=admin_id,
            action=f"order.{new_status}",
            entity_type="order",
            entity_id=str(order_id),
            before={"status": order.status},
            after={"status": new_status, "refunded_coins": order.total_coins},
            extra={"reason": reason},
        )
    if order.status == "submitted":
        await ask_shopify_to_cancel(session, order_id)
    await notify_order(
        session,
        owner,
        order_id,
        new_status,
        f"Order {order.order_code} {new_status}",
        f"{order.total_coins} coins are back in your wallet.",
    )
    return await get_order(session, order_id)


async def notify_order(
    session: AsyncSession,
    user_id: uuid.UUID,
    order_id: uuid.UUID,
    status: str,
    title: str,
    body: str,
) -> None:
    """Tell the walker what happened to an order (orders cannot be turned off)."""
    await notify.notify(
        session,
        user_id,
        "order",
        title,
        body,
        {"order_id": str(order_id), "status": status},
        dedupe_key=f"order:{order_id}:{status}",
        collapse_key=f"order:{order_id}",
    )


async def advance_status(
    session: AsyncSession,
    order_id: uuid.UUID,
    new_status: str,
    *,
    admin_id: uuid.UUID | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Move an order forward along pending → submitted → fulfilled → shipped → delivered; never
    backwards (webhooks may arrive out of order). Cancelling or failing refunds."""
    if new_status in {"cancelled", "failed"}:
        return await refund_order(
            session,
            order_id,
            new_status=new_status,
            reason=note or f"set to {new_status} by an admin",
            allowed_from=set(CONFIRMABLE),
            admin_id=admin_id,
        )
    if new_status == "pending":
        return await release_held(session, order_id, admin_id=admin_id, note=note)
    if new_status not in STATUS_RANK:  # cancel_requested is the walker's, through cancel
        raise InvalidInput(
            f"An order cannot be set to {new_status} by hand.", code="invalid_status_change"
        )
    current = (
        await session.execute(
            text("SELECT status FROM orders WHERE id = :id FOR UPDATE"), {"id": order_id}
        )
    ).scalar_one_or_none()
    if current is None:
        raise NotFound("No such order.", code="order_not_found")
    if current not in STATUS_RANK or STATUS_RANK[new_status] <= STATUS_RANK[current]:
        raise Conflict(
            f"An order that is {current} cannot move to {new_status}.",
            code="invalid_status_change",
            extra={"current_status": current},
        )
    stamp = {
        "fulfilled": "fulfilled_at",
        "shipped": "shipped_at",
        "delivered": "delivered_at",
        "submitted": "submitted_at",
    }[new_status]
    moved = (
        await session.execute(
            text(
                f"UPDATE orders SET status = :st, {stamp} = now(), updated_at = now() "
                "WHERE id = :id RETURNING user_id, order_code"
            ),
            {"st": new_status, "id": order_id},
        )
    ).one()
    if new_status == "shipped":
        await notify_order(
            session,
            moved.user_id,
            order_id,
            "shipped",
            f"Order {moved.order_code} shipped",
            "Your order is on its way.",
        )
    if admin_id is not None:
        await audit.record(
            session,
            admin_id=admin_id,
            action="order.status",
            entity_type="order",
            entity_id=str(order_id),
            before={"status": current},
            after={"status": new_status},
            extra={"note": note} if note else None,
        )
    return await get_order(session, order_id)


async def hold_for_review(
    session: AsyncSession, order_id: uuid.UUID, *, user_id: uuid.UUID, score: int
) -> bool:
    """The submit job found the walker's trust score below `fairplay.redemption_hold_below`:
    the order waits (status held) for a reviewer instead of going to Shopify. Its coins stay
    spent; a reviewer releases it (PATCH status pending) or cancels it (coins back), and the
    walker may cancel it too."""
    return order_id in await hold_many_for_review(session, {order_id: score}, {order_id: user_id})


# The sweep's UPDATEs find each order by its whole primary key (id, user_id): a unique match
# the planner counts as one row whatever the statistics say. By id alone, on an orders table
# that had not been analysed since it grew, the planner estimated ~140 rows an id and ANDed the
# key with ix_orders_status_created's whole 'pending' range (every order ever made pending,
# dead index entries included, until a vacuum): 72 ms for a chunk of 100 orders instead of
# 3 (BENCHMARKS.md, run 16).
_BY_KEY = "unnest(CAST(:ids AS uuid[]), CAST(:users AS uuid[]){more}) AS v(id, user_id{names})"


async def hold_many_for_review(
    session: AsyncSession, scores: dict[uuid.UUID, int], owners: Mapping[uuid.UUID, uuid.UUID]
) -> set[uuid.UUID]:
    """Hold a chunk of the sweep's orders (order id -> the walker's score, order id -> the
    walker; hold_for_review for one): one UPDATE, an audit row for each order it held. The
    orders it held are returned."""
    if not scores:
        return set()
    ids = sorted(scores)
    held = set(
        (
            await session.execute(
                text(
                    "UPDATE orders o SET status = 'held', held_at = now(), updated_at = now() "
                    f"FROM {_BY_KEY.format(more='', names='')} "
                    "WHERE o.id = v.id AND o.user_id = v.user_id AND o.status = 'pending' "
                    "AND o.released_at IS NULL RETURNING o.id"
                ),
                {"ids": ids, "users": [owners[i] for i in ids]},
            )
        ).scalars()
    )
    for order_id in sorted(held):
        await audit.record(
            session,
            admin_id=None,
            action="order.held",
            entity_type="order",
            entity_id=str(order_id),
            before={"status": "pending"},
            after={"status": HELD},
            extra={"trust_score": scores[order_id]},
        )
    return held


async def mark_submitted_many(
    session: AsyncSession,
    owners: Mapping[uuid.UUID, uuid.UUID],
    shopify_refs: dict[uuid.UUID, tuple[str, str]] | None = None,
) -> set[uuid.UUID]:
    """pending -> submitted for many orders (order id -> the walker) in one UPDATE, with the
    Shopify order (id, name) of each that has one; an order that is no longer pending is left
    alone. The orders it moved are returned."""
    if not owners:
        return set()
    refs = shopify_refs or {}
    ids = sorted(owners)
    return set(
        (
            await session.execute(
                text(
                    "UPDATE orders o SET status = 'submitted', submitted_at = now(), "
                    "updated_at = now(), "
                    "shopify_order_id = coalesce(v.sid, o.shopify_order_id), "
                    "shopify_order_name = coalesce(v.name, o.shopify_order_name) "
                    "FROM "
                    + _BY_KEY.format(
                        more=", CAST(:sids AS varchar[]), CAST(:names AS varchar[])",
                        names=", sid, name",
                    )
                    + " WHERE o.id = v.id AND o.user_id = v.user_id AND o.status = 'pending' "
                    "RETURNING o.id"
                ),
                {
                    "ids": ids,
                    "users": [owners[i] for i in ids],
                    "sids": [refs[i][0] if i in refs else None for i in ids],
                    "names": [refs[i][1] if i in refs else None for i in ids],
                },
            )
        ).scalars()
    )


async def release_held(
    session: AsyncSession,
    order_id: uuid.UUID,
    *,
    admin_id: uuid.UUID | None,
    note: str | None,
) -> dict[str, Any]:
    """A reviewer lets a held order go to the shop: back to pending, never held again, and the
    submit sweep woken. Staff never release their own order."""
    row = (
        await session.execute(
            text("SELECT status, user_id FROM orders WHERE id = :id FOR UPDATE"), {"id": order_id}
        )
    ).first()
    if row is None:
        raise NotFound("No such order.", code="order_not_found")
    if row.status != HELD:
        raise Conflict(
            f"An order that is {row.status} cannot move to pending.",
            code="invalid_status_change",
            extra={"current_status": row.status},
        )
    if admin_id is not None and row.user_id == admin_id:
        raise Forbidden("Nobody releases their own order.", code="own_order")
    await session.execute(
        text(
            "UPDATE orders SET status = 'pending', released_at = now(), updated_at = now() "
            "WHERE id = :id"
        ),
        {"id": order_id},
    )
    await audit.record(
        session,
        admin_id=admin_id,
        action="order.released",
        entity_type="order",
        entity_id=str(order_id),
        before={"status": HELD},
        after={"status": "pending"},
        extra={"note": note} if note else None,
    )
    await defer_in_transaction(
        session, SHOP_SUBMIT_PENDING, {}, queueing_lock=SHOP_SUBMIT_PENDING, queue="shop"
    )
    return await get_order(session, order_id)


async def ask_shopify_to_cancel(session: AsyncSession, order_id: uuid.UUID) -> None:
    """Queue the cancellation of an order in Shopify (cancel_in_shopify), in the caller's
    transaction; one job at a time per order (the order's lock)."""
    await defer_in_transaction(
        session,
        SHOP_CANCEL_IN_SHOPIFY,
        {"order_id": str(order_id)},
        lock=f"order:{order_id}",
        queue="shop",
    )


async def cancel_by_walker(
    session: AsyncSession, order_id: uuid.UUID, *, user_id: uuid.UUID
) -> tuple[dict[str, Any], bool]:
    """A walker's cancel: (order, requested).

    Before the order reached Shopify it is cancelled at once, coins and stock back
    (requested=False). Once Shopify has it, the cancel is a REQUEST (status cancel_requested,
    requested=True): the coins come back only when Shopify confirms the cancellation
    (confirm_cancel), and a refusal puts the order back where it was (refuse_cancel). Asking
    again while a request is open answers the same order.
    """
    for _ in range(3):  # the submit job may move the order between our read and our write
        row = (
            await session.execute(
                text("SELECT status, shopify_order_id FROM orders WHERE id = :id AND user_id = :u"),
                {"id": order_id, "u": user_id},
            )
        ).first()
        if row is None:
            raise NotFound("No such order.", code="order_not_found")
        if row.status == CANCEL_REQUESTED:
            return await get_order(session, order_id, user_id=user_id), True
        if row.status in CANCELLABLE and row.shopify_order_id is None:
            try:
                refunded = await refund_order(
                    session,
                    order_id,
                    new_status="cancelled",
                    reason="cancelled by the customer",
                    allowed_from={row.status},
                    user_id=user_id,
                    require_not_in_shopify=True,
                )
            except _MovedMeanwhile:
                continue
            return refunded, False
        if row.status == "submitted":
            moved = (
                await session.execute(
                    text(
                        "UPDATE orders SET status = :req, cancel_previous_status = status, "
                        "cancel_requested_at = now(), cancel_refused_reason = NULL, "
                        "updated_at = now() WHERE id = :id AND status = 'submitted' "
                        "RETURNING id"
                    ),
                    {"req": CANCEL_REQUESTED, "id": order_id},
                )
            ).scalar_one_or_none()
            if moved is None:
                continue
            await ask_shopify_to_cancel(session, order_id)
            return await get_order(session, order_id, user_id=user_id), True
        raise Conflict(
            f"An order that is {row.status} cannot be cancelled.",
            code="order_not_cancellable",
            extra={"current_status": row.status},
        )
    raise Conflict("The order changed while cancelling; retry.", code="retry")


CANCEL_POLL_SECONDS = 0.05


async def cancel_and_wait(
    database: Database, order_id: uuid.UUID, *, user_id: uuid.UUID, wait_seconds: float
) -> tuple[dict[str, Any], bool]:
    """The walker's cancel (cancel_by_walker, committed), then, for a request that went to
    Shopify, up to `wait_seconds` for the cancel job to settle it: a worker usually has
    Shopify's answer within milliseconds, and then the walker gets the outcome at once (200
    `cancelled`, coins back) instead of a pending request. The coins still move only when
    Shopify confirms (the job's confirm_cancel); this only waits to tell the walker."""
    async with session_scope(database) as session:
        order, requested = await cancel_by_walker(session, order_id, user_id=user_id)
    if not requested or wait_seconds <= 0:
        return order, requested
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while loop.time() < deadline:
        await asyncio.sleep(CANCEL_POLL_SECONDS)
        async with session_scope(database) as session:
            order = await get_order(session, order_id, user_id=user_id)
        if order["status"] != CANCEL_REQUESTED:
            return order, order["status"] != "cancelled"
    return order, True


async def confirm_cancel(session: AsyncSession, order_id: uuid.UUID, *, reason: str) -> bool:
    """Shopify confirmed the cancellation (the cancel job's answer or the orders/cancelled
    webhook, whichever comes first): coins and stock back, exactly once. False when the order
    was already cancelled (or cannot be any more)."""
    try:
        await refund_order(
            session, order_id, new_status="cancelled", reason=reason, allowed_from=CONFIRMABLE
        )
    except Conflict:
        return False
    return True


async def refuse_cancel(session: AsyncSession, order_id: uuid.UUID, *, reason: str) -> bool:
    """Shopify refused the cancellation (e.g. already fulfilled): the order goes back to the
    status it had, and GET shows the refusal's reason. False when no request was open."""
    back = (
        await session.execute(
            text(
                "UPDATE orders SET status = coalesce(cancel_previous_status, 'submitted'), "
                "cancel_refused_reason = :reason, updated_at = now() "
                "WHERE id = :id AND status = :req RETURNING id"
            ),
            {"reason": reason[:500], "id": order_id, "req": CANCEL_REQUESTED},
        )
    ).scalar_one_or_none()
    return back is not None

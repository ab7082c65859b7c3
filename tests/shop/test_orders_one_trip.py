"""POST /v1/orders answers byte for byte as before issue 13 (one round trip), for every outcome.

The placement as it was (a dozen statements in a SQLAlchemy transaction, frozen here from
src/stepcoin/shop/orders.py at 09b0605) answers POST /v1/orders in a second app on the same
database; the same requests go to both, and the status, the problem+json bodies and the
headers must be equal (a created order differs only in its id, code and timestamps, which
must have the same form).
"""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
import httpx
import orjson
import pytest
from fastapi import Header, Response, status
from fastapi.routing import APIRoute
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.auth.dependencies import ClaimsDep
from stepcoin.db import SessionDep
from stepcoin.errors import Conflict, InvalidInput, account_gone
from stepcoin.main import create_app
from stepcoin.queue import (
    ACHIEVEMENTS_EVALUATE_USER,
    SHOP_SUBMIT_ORDER,
    SHOP_SUBMIT_PENDING,
    defer_in_transaction,
    evaluation_lock,
)
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.shop.orders import (
    CODE_ALPHABET,
    NO_FREE_CODE_SQLSTATE,
    PLACE_ORDER_SQL,
    OrderProblem,
    _json,
    email_unverified,
    fingerprint,
    get_order,
    new_order_code,
    new_order_codes,
)
from stepcoin.shop.schemas import OrderIn, OrderOut
from stepcoin.wallet import service as wallet
from tests.conftest import bearer
from tests.shop.helpers import ADDRESS, order, product, stock, walker_with_coins
from tests.steps.helpers import ledger_ok
from tests.test_pgbouncer import bouncer_app, bouncer_client, bouncer_url  # noqa: F401 - fixtures


async def reference_place_order(
    session: AsyncSession, *, user_id: uuid.UUID, idempotency_key: str, body: OrderIn
) -> tuple[dict[str, Any], bool]:
    """Returns (order, created); a retry with the same key and body returns the first order."""
    settings = await runtime_settings.all(session)
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
    print_ = fingerprint(body)
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
        {"k": f"order:{user_id}:{idempotency_key}"},
    )
    existing = (
        await session.execute(
            text(
                "SELECT id, request_fingerprint FROM orders "
                "WHERE user_id = :u AND idempotency_key = :k"
            ),
            {"u": user_id, "k": idempotency_key},
        )
    ).first()
    if existing is not None:
        if existing.request_fingerprint != print_:
            raise InvalidInput(
                "This Idempotency-Key was used for a different order.",
                code="idempotency_key_reused",
            )
        return await get_order(session, existing.id, user_id=user_id), False

    account = (
        await session.execute(
            text(
                "SELECT w.available_coins, u.is_active, "
                "u.email_verified_at IS NOT NULL AS email_verified FROM wallets w JOIN users u "
                "ON u.id = w.user_id WHERE w.user_id = :u FOR UPDATE OF w"
            ),
            {"u": user_id},
        )
    ).first()
    if account is None or not account.is_active:
        raise account_gone()
    # Re-read after the wallet lock: an account deleted (or deactivated) while this request
    # waited for the lock was read as active by the statement above (its snapshot is older).
    if not (
        await session.execute(text("SELECT is_active FROM users WHERE id = :u"), {"u": user_id})
    ).scalar_one():
        raise account_gone()
    if not account.email_verified:  # walkers earn unverified; goods ship to proven owners
        raise email_unverified()
    wanted = {item.product_id: item.quantity for item in body.items}
    products = {
        row.id: row
        for row in (
            await session.execute(
                text(
                    "SELECT id, title, coin_price, stock_quantity, is_active FROM reward_products "
                    "WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"
                ),
                {"ids": sorted(wanted)},
            )
        ).all()
    }
    problems: list[dict[str, Any]] = []
    total = 0
    for product_id, quantity in sorted(wanted.items()):
        product = products.get(product_id)
        if product is None or not product.is_active:
            problems.append({"product_id": product_id, "problem": "not_available"})
            continue
        total += product.coin_price * quantity
        if product.stock_quantity < quantity:
            problems.append(
                {
                    "product_id": product_id,
                    "problem": "insufficient_stock",
                    "requested": quantity,
                    "available": product.stock_quantity,
                }
            )
    missing = max(0, total - account.available_coins)
    if problems or missing:
        detail = []
        if problems:
            detail.append(f"{len(problems)} line(s) cannot be filled")
        if missing:
            detail.append(f"{missing} more coins are needed")
        code = "insufficient_stock" if problems else "insufficient_coins"
        if problems and missing:
            code = "insufficient_stock_and_coins"
        raise OrderProblem(
            "; ".join(detail) + ".",
            code=code,
            extra={
                "lines": problems,
                "missing_coins": missing,
                "total_coins": total,
                "available_coins": account.available_coins,
            },
        )

    for product_id, quantity in sorted(wanted.items()):
        await session.execute(
            text(
                "UPDATE reward_products SET stock_quantity = stock_quantity - :q, "
                "updated_at = now() WHERE id = :id AND stock_quantity >= :q"
            ),
            {"q": quantity, "id": product_id},
        )
    order_id = uuid.uuid4()
    order_code = await _insert_order(
        session, order_id, user_id, total, body, idempotency_key, print_
    )
    await session.execute(
        text(
            "INSERT INTO order_items (user_id, order_id, product_id, quantity, "
            "coin_price_at_purchase) SELECT :u, :o, x.product_id, x.quantity, p.coin_price "
            "FROM unnest("
            "CAST(:pids AS bigint[]), CAST(:qtys AS int[])) AS x(product_id, quantity) "
            "JOIN reward_products p ON p.id = x.product_id"
        ),
        {
            "u": user_id,
            "o": order_id,
            "pids": sorted(wanted),
            "qtys": [wanted[p] for p in sorted(wanted)],
        },
    )
    await wallet.post(
        session,
        user_id,
        [wallet.Entry(-total, wallet.REDEMPTION, f"order:{order_id}", f"Order {order_code}")],
    )
    await defer_in_transaction(
        session,
        SHOP_SUBMIT_ORDER,
        {"order_id": str(order_id)},
        lock=f"order:{order_id}",
        queue="shop",
    )
    await defer_in_transaction(  # a first redemption may unlock an achievement
        session,
        ACHIEVEMENTS_EVALUATE_USER,
        {"user_id": str(user_id)},
        queueing_lock=evaluation_lock(user_id),
    )
    return await get_order(session, order_id, user_id=user_id), True


async def _insert_order(
    session: AsyncSession,
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    total: int,
    body: OrderIn,
    idempotency_key: str,
    print_: str,
) -> str:
    for _ in range(5):  # a code collision is ~1e-11 per order; retry a few times, never loop
        code = new_order_code()
        inserted = (
            await session.execute(
                text(
                    "INSERT INTO orders (id, user_id, order_code, total_coins, status, "
                    "shipping_address, idempotency_key, request_fingerprint) VALUES "
                    "(:id, :u, :code, :t, 'pending', CAST(:addr AS jsonb), :k, :fp) "
                    "ON CONFLICT (order_code, user_id) DO NOTHING RETURNING order_code"
                ),
                {
                    "id": order_id,
                    "u": user_id,
                    "code": code,
                    "t": total,
                    "addr": orjson.dumps(body.shipping_address.model_dump()).decode(),
                    "k": idempotency_key,
                    "fp": print_,
                },
            )
        ).scalar_one_or_none()
        if inserted:
            return str(inserted)
    raise Conflict("Could not allocate an order code; retry.", code="retry")


async def reference_create_order(
    body: OrderIn,
    claims: ClaimsDep,
    session: SessionDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="Required; a retry returns the first order."),
    ] = None,
) -> Any:
    """The route as it was (shop/router.py at 09b0605)."""
    if not idempotency_key or not (1 <= len(idempotency_key) <= 200):
        raise InvalidInput(
            "An Idempotency-Key header (1-200 characters) is required.",
            code="idempotency_key_required",
        )
    order, created = await reference_place_order(
        session, user_id=claims.user_id, idempotency_key=idempotency_key, body=body
    )
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return order


def reference_app(settings: Any) -> Any:
    """The app with POST /v1/orders answered by the placement as it was."""
    application = create_app(settings, run_worker=False)
    application.router.routes.insert(
        0,
        APIRoute(
            "/v1/orders",
            reference_create_order,
            methods=["POST"],
            status_code=status.HTTP_201_CREATED,
            response_model=OrderOut,
        ),
    )
    return application


# --- the comparison ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def reference(settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    application = reference_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://stepcoin.test") as c:
            yield c


VARYING = [  # (pattern, placeholder): the values two placements of one body cannot share
    (
        re.compile(
            r'(?<=[{,])"id":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"'
        ),
        '"id":"<uuid>"',
    ),
    (re.compile(r'"order_code":"[34679ACDEFGHJKMNPQRTUVWXY]{8}"'), '"order_code":"<code>"'),
    (
        re.compile(r'"(created_at|updated_at)":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"'),
        r'"\1":"<time>"',
    ),
]
SAME_HEADERS = ("content-type", "content-length", "idempotent-replayed")


def _form(body: bytes) -> str:
    text_ = body.decode()
    for pattern, placeholder in VARYING:
        text_, found = pattern.subn(placeholder, text_)
        assert found, (pattern.pattern, text_)
    return text_


def assert_same_answer(old: httpx.Response, new: httpx.Response, *, created: bool = False) -> None:
    assert new.status_code == old.status_code, (old.text, new.text)
    if created:
        assert _form(new.content) == _form(old.content)
    else:
        assert new.content == old.content
    for name in SAME_HEADERS:
        assert new.headers.get(name) == old.headers.get(name), name


async def both(reference, client, token, items, **kwargs):
    old = await order(reference, token, items, **kwargs)
    new = await order(client, token, items, **kwargs)
    return old, new


async def test_a_created_order_its_replay_and_a_reused_key_answer_as_before(
    client, engine, reference
):
    bottle = await product(engine, price=150, stock=50)
    socks = await product(engine, price=40, stock=30, title="Socks — grün")
    ada = await walker_with_coins(client, engine, 1000)
    bob = await walker_with_coins(client, engine, 1000)
    lines = [(socks, 1), (bottle, 2)]
    address = {**ADDRESS, "line2": "Hinterhaus", "phone": "+49 30 1234567", "country": " de "}
    old = await order(reference, ada["access_token"], lines, key="k", address=address)
    new = await order(client, bob["access_token"], lines, key="k", address=address)
    assert old.status_code == 201
    assert_same_answer(old, new, created=True)

    old_again = await order(reference, ada["access_token"], lines, key="k", address=address)
    new_again = await order(client, bob["access_token"], lines, key="k", address=address)
    assert old_again.headers["idempotent-replayed"] == "true"
    assert_same_answer(old_again, new_again, created=True)
    assert old_again.content == old.content and new_again.content == new.content
    # a key placed through one path replays through the other: the fingerprint did not change
    cross = await order(client, ada["access_token"], lines, key="k", address=address)
    assert cross.content == old.content and cross.headers["idempotent-replayed"] == "true"

    old_other, new_other = (
        await order(reference, ada["access_token"], [(bottle, 1)], key="k"),
        await order(client, bob["access_token"], [(bottle, 1)], key="k"),
    )
    assert old_other.status_code == 422
    assert_same_answer(old_other, new_other)
    assert await stock(engine, bottle) == 46 and await stock(engine, socks) == 28
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT t.amount, t.balance_after, t.note = 'Order ' || o.order_code AS noted, "
                    # the old path queued a job per order (submission, evaluation); the new
                    # one leaves the order pending for the woken sweep and marks the user dirty
                    "o.status = 'pending' AND ("
                    " EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.task_name = :submit "
                    "  AND j.lock = 'order:' || o.id AND j.queue_name = 'shop' "
                    "  AND j.args = jsonb_build_object('order_id', o.id::text)) "
                    " OR EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.task_name = :sweep "
                    "  AND j.status = 'todo' AND j.queue_name = 'shop')) AS submission_due, "
                    "EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.task_name = :evaluate "
                    " AND j.queueing_lock = 'achievements:' || o.user_id) "
                    "OR EXISTS (SELECT 1 FROM achievements_dirty d WHERE d.user_id = o.user_id "
                    " AND d.claimed_at IS NULL) AS evaluation_due "
                    "FROM orders o JOIN coin_transactions t ON t.reference_id = 'order:' || o.id "
                    "AND t.transaction_type = 'redemption' ORDER BY o.created_at"
                ),
                {
                    "submit": SHOP_SUBMIT_ORDER,
                    "sweep": SHOP_SUBMIT_PENDING,
                    "evaluate": ACHIEVEMENTS_EVALUATE_USER,
                },
            )
        ).all()
    assert [tuple(r) for r in rows] == [(-340, 660, True, True, True)] * 2
    await ledger_ok(engine)


async def _nothing_moved(engine, products: dict[int, int], coins: int, user_id: str) -> None:
    for product_id, quantity in products.items():
        assert await stock(engine, product_id) == quantity
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT w.available_coins, (SELECT count(*) FROM orders) AS orders, "
                    "(SELECT count(*) FROM procrastinate_jobs "
                    " WHERE task_name IN (:submit, :evaluate, :sweep)) AS jobs "
                    "FROM wallets w WHERE w.user_id = :u"
                ),
                {
                    "u": user_id,
                    "submit": SHOP_SUBMIT_ORDER,
                    "evaluate": ACHIEVEMENTS_EVALUATE_USER,
                    "sweep": SHOP_SUBMIT_PENDING,
                },
            )
        ).one()
    assert tuple(row) == (coins, 0, 0)


@pytest.mark.parametrize(
    ("stocks", "coins", "wanted", "code"),
    [
        ((1, 0, 10), 150, (2, 1, 1), "insufficient_stock_and_coins"),
        ((5, 5, 5), 250, (1, 1, 1), "insufficient_coins"),
        ((5, 0, 5), 1000, (1, 1, 5), "insufficient_stock"),
        ((5, 5, 5), 2000, (5, 5, 6), "insufficient_stock"),
    ],
)
async def test_each_409_answers_as_before(client, engine, reference, stocks, coins, wanted, code):
    ids = [await product(engine, price=100, stock=s) for s in stocks]
    me = await walker_with_coins(client, engine, coins)
    lines = list(zip(reversed(ids), reversed(wanted), strict=True))  # any order of lines
    old, new = await both(reference, client, me["access_token"], lines, key="k-409")
    assert old.status_code == 409 and old.json()["code"] == code
    assert_same_answer(old, new)
    await _nothing_moved(engine, dict(zip(ids, stocks, strict=True)), coins, me["user"]["id"])


async def test_unknown_and_inactive_products_answer_as_before(client, engine, reference):
    gone = await product(engine, active=False, stock=3)
    fine = await product(engine, price=300, stock=1)
    me = await walker_with_coins(client, engine, 100)
    old, new = await both(
        reference, client, me["access_token"], [(987654, 1), (gone, 1), (fine, 2)]
    )
    assert old.json()["code"] == "insufficient_stock_and_coins"
    assert_same_answer(old, new)
    await _nothing_moved(engine, {gone: 3, fine: 1}, 100, me["user"]["id"])


async def test_an_unverified_walker_is_refused_as_before(client, engine, reference):
    bottle = await product(engine, stock=3)
    me = await walker_with_coins(client, engine, 500, verified=False)
    old, new = await both(reference, client, me["access_token"], [(bottle, 1)])
    assert old.status_code == 403 and old.json()["code"] == "email_unverified"
    assert_same_answer(old, new)
    await _nothing_moved(engine, {bottle: 3}, 500, me["user"]["id"])


async def test_a_deactivated_account_is_refused_as_before(client, engine, reference):
    bottle = await product(engine, stock=3)
    me = await walker_with_coins(client, engine, 500)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET is_active = false WHERE id = :u"), {"u": me["user"]["id"]}
        )
    old, new = await both(reference, client, me["access_token"], [(bottle, 1)])
    assert old.status_code == 401 and old.json()["code"] == "invalid_token"
    assert_same_answer(old, new)
    await _nothing_moved(engine, {bottle: 3}, 500, me["user"]["id"])


@pytest.mark.parametrize(
    ("setting", "items", "code"),
    [
        ("shop.max_items_per_order", [(1, 1), (2, 1), (3, 1)], "too_many_items"),
        ("shop.max_quantity_per_item", [(3, 5), (1, 2), (2, 1)], "quantity_too_large"),
    ],
)
async def test_the_limits_answer_as_before(client, engine, reference, setting, items, code):
    me = await walker_with_coins(client, engine, 500)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO settings (key, value) VALUES (:k, '1') "
                "ON CONFLICT (key) DO UPDATE SET value = '1'"
            ),
            {"k": setting},
        )
    runtime_settings.invalidate()
    old, new = await both(reference, client, me["access_token"], items)
    assert old.status_code == 422 and old.json()["code"] == code
    assert_same_answer(old, new)


async def test_a_missing_key_and_a_bad_body_answer_as_before(client, engine, reference):
    me = await walker_with_coins(client, engine, 500)
    body = {"items": [{"product_id": 1, "quantity": 1}], "shipping_address": ADDRESS}
    bad = {"items": [{"product_id": 1, "quantity": 0}], "shipping_address": ADDRESS}
    for payload, headers in [
        (body, bearer(me["access_token"])),
        (bad, {**bearer(me["access_token"]), "Idempotency-Key": "k"}),
        (body, {"Idempotency-Key": "k"}),
    ]:
        old = await reference.post("/v1/orders", json=payload, headers=headers)
        new = await client.post("/v1/orders", json=payload, headers=headers)
        assert old.status_code in {401, 422}
        assert_same_answer(old, new)


# --- the function itself -----------------------------------------------------------------------


async def _place(engine, user_id, key, lines, *, fp="f1", codes=None, order_id=None):
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        row = await driver.fetchrow(
            PLACE_ORDER_SQL,
            uuid.UUID(str(user_id)),
            key,
            fp,
            order_id or uuid.uuid4(),
            codes or [new_order_code()],
            [p for p, _ in lines],
            [q for _, q in lines],
            orjson.dumps(ADDRESS).decode(),
        )
    return dict(row)


async def _books(engine) -> tuple[Any, ...]:
    async with engine.connect() as conn:
        return tuple(
            (
                await conn.execute(
                    text(
                        "SELECT (SELECT sum(stock_quantity) FROM reward_products), "
                        "(SELECT sum(available_coins) FROM wallets), "
                        "(SELECT count(*) FROM orders), (SELECT count(*) FROM order_items), "
                        "(SELECT count(*) FROM coin_transactions), "
                        "(SELECT count(*) FROM procrastinate_jobs WHERE task_name IN "
                        "(:submit, :evaluate, :sweep))"
                    ),
                    {
                        "submit": SHOP_SUBMIT_ORDER,
                        "evaluate": ACHIEVEMENTS_EVALUATE_USER,
                        "sweep": SHOP_SUBMIT_PENDING,
                    },
                )
            ).one()
        )


async def test_the_function_refuses_each_case_with_its_outcome_and_writes_nothing(client, engine):
    bottle = await product(engine, price=100, stock=2)
    hidden = await product(engine, price=10, stock=9, active=False)
    pin = await product(engine, price=10, stock=5, title="Pin")
    me = (await walker_with_coins(client, engine, 150))["user"]["id"]
    unverified = (await walker_with_coins(client, engine, 150, verified=False))["user"]["id"]
    inactive = (await walker_with_coins(client, engine, 150))["user"]["id"]
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET is_active = false WHERE id = :u"), {"u": inactive}
        )
    placed = await _place(engine, me, "first", [(bottle, 1)])
    assert placed["outcome"] == "created" and placed["total_coins"] == 100
    before = await _books(engine)

    cases = [
        (uuid.uuid4(), "k", [(bottle, 1)], "f1", "account_gone"),
        (inactive, "k", [(bottle, 1)], "f1", "account_gone"),
        (unverified, "k", [(bottle, 1)], "f1", "email_unverified"),
        (me, "k", [(bottle, 2)], "f1", "not_possible"),  # stock 1 left, and 50 coins
        (me, "k", [(hidden, 1)], "f1", "not_possible"),
        (me, "k", [(bottle, 1), (987654, 1)], "f1", "not_possible"),
        (me, "first", [(bottle, 1)], "another body", "idempotency_key_reused"),
    ]
    for user_id, key, lines, fp, outcome in cases:
        answer = await _place(engine, user_id, key, lines, fp=fp)
        assert answer["outcome"] == outcome, (lines, answer)
        assert answer["id"] is None  # no order in a refusal
        assert await _books(engine) == before
    short = await _place(engine, me, "k", [(bottle, 2)])
    assert short["available_coins"] == 50
    assert _json(short["products"]) == [
        {
            "product_id": bottle,
            "quantity": 2,
            "coin_price": 100,
            "stock_quantity": 1,
            "is_active": True,
        }
    ]
    replay = await _place(engine, me, "first", [(bottle, 1)])
    assert replay["outcome"] == "replayed" and replay["id"] == placed["id"]
    assert {k: v for k, v in replay.items() if k != "outcome"} == {
        k: v for k, v in placed.items() if k != "outcome"
    }
    assert await _books(engine) == before

    with pytest.raises(asyncpg.PostgresError) as taken:  # every offered code in use
        await _place(engine, me, "k2", [(pin, 1)], fp="f2", codes=[placed["order_code"]])
    assert taken.value.sqlstate == NO_FREE_CODE_SQLSTATE
    assert await _books(engine) == before  # the stock taken before the code failed is back
    await ledger_ok(engine)


async def test_an_order_code_is_unique_across_walkers(client, engine):
    """Since 0038 orders is unique by (order_code, user_id); v4 claims each code in
    global_keys, so a code another walker's order holds is skipped for the next drawn one."""
    pin = await product(engine, price=10, stock=10, title="Pin")
    ann = (await walker_with_coins(client, engine, 100))["user"]["id"]
    bob = (await walker_with_coins(client, engine, 100))["user"]["id"]
    first = await _place(engine, ann, "a1", [(pin, 1)])
    taken, spare = first["order_code"], new_order_code()
    second = await _place(engine, bob, "b1", [(pin, 1)], codes=[taken, spare])
    assert second["outcome"] == "created" and second["order_code"] == spare
    async with engine.connect() as conn:
        owners = dict(
            (
                await conn.execute(
                    text(
                        "SELECT key, user_id::text FROM global_keys "
                        "WHERE kind = 'order_code' AND key = ANY(:codes)"
                    ),
                    {"codes": [taken, spare]},
                )
            ).all()
        )
    assert owners == {taken: ann, spare: bob}
    with pytest.raises(asyncpg.PostgresError) as refused:  # only taken codes: refused, nothing
        await _place(engine, bob, "b2", [(pin, 1)], codes=[taken, spare])
    assert refused.value.sqlstate == NO_FREE_CODE_SQLSTATE
    await ledger_ok(engine)


# --- concurrency -------------------------------------------------------------------------------


async def test_parallel_orders_for_scarce_stock_and_coins_never_oversell_or_overdraw(
    client, engine
):
    stocks = {"a": 6, "b": 9}
    a = await product(engine, price=100, stock=stocks["a"])
    b = await product(engine, price=30, stock=stocks["b"], title="Socks")
    walkers = [await walker_with_coins(client, engine, 230) for _ in range(8)]
    baskets = [[(a, 1), (b, 1)], [(b, 2), (a, 1)], [(a, 2)], [(b, 3)], [(b, 1), (a, 1)]]
    attempts = []
    for i in range(48):
        walker = walkers[i % len(walkers)]
        key = f"key-{i % 40}"  # some requests repeat another's key (and body, or not)
        attempts.append((walker, baskets[i % len(baskets)], key))
    random.Random(13).shuffle(attempts)
    responses = await asyncio.gather(
        *[order(client, w["access_token"], lines, key=key) for w, lines, key in attempts]
    )
    codes = [r.status_code for r in responses]
    assert set(codes) <= {201, 409, 422}, codes
    assert 201 in codes and 409 in codes
    async with engine.connect() as conn:
        sold = dict(
            (
                await conn.execute(
                    text(
                        "SELECT i.product_id, sum(i.quantity) FROM order_items i "
                        "GROUP BY i.product_id"
                    )
                )
            ).all()
        )
        left = dict(
            (await conn.execute(text("SELECT id, stock_quantity FROM reward_products"))).all()
        )
        totals = (
            await conn.execute(
                text(
                    "SELECT (SELECT sum(total_coins) FROM orders), "
                    "(SELECT -sum(amount) FROM coin_transactions "
                    " WHERE transaction_type = 'redemption'), "
                    "(SELECT min(available_coins) FROM wallets), "
                    "(SELECT count(*) FROM orders)"
                )
            )
        ).one()
    assert left[a] >= 0 and left[b] >= 0
    assert sold.get(a, 0) + left[a] == stocks["a"] and sold.get(b, 0) + left[b] == stocks["b"]
    assert totals[0] == totals[1] and totals[2] >= 0
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == totals[3]  # replays answered an existing order, never a new one
    await ledger_ok(engine)


def test_order_codes_are_uniform_over_the_unambiguous_alphabet():
    codes = new_order_codes(5000)
    assert len(codes) == 5000 and len(set(codes)) == 5000
    assert all(len(c) == 8 and set(c) <= set(CODE_ALPHABET) for c in codes)
    counts = Counter("".join(codes))
    expected = 40_000 / len(CODE_ALPHABET)  # 1600 per character; sd = 39
    assert set(counts) == set(CODE_ALPHABET)
    assert all(abs(n - expected) < 250 for n in counts.values()), counts


async def test_orders_wake_one_sweep_and_mark_the_walker_instead_of_queueing_jobs(client, engine):
    bottle = await product(engine, price=10, stock=10)
    me = await walker_with_coins(client, engine, 100)

    async def queued() -> tuple[int, int, int, int]:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE task_name IN (:submit, :evaluate)), "
                        "count(*) FILTER (WHERE task_name = :sweep AND status = 'todo'), "
                        "(SELECT count(*) FROM achievements_dirty WHERE user_id = :u), "
                        "(SELECT count(*) FROM achievements_dirty WHERE user_id = :u "
                        " AND claimed_at IS NULL) FROM procrastinate_jobs"
                    ),
                    {
                        "submit": SHOP_SUBMIT_ORDER,
                        "evaluate": ACHIEVEMENTS_EVALUATE_USER,
                        "sweep": SHOP_SUBMIT_PENDING,
                        "u": me["user"]["id"],
                    },
                )
            ).one()
        return tuple(row)  # type: ignore[return-value]

    for _ in range(2):
        assert (await order(client, me["access_token"], [(bottle, 1)])).status_code == 201
    assert await queued() == (0, 1, 1, 1)  # no job per order; one sweep waits; one mark
    async with engine.begin() as conn:  # the worker took the sweep, a batch claimed the mark
        await conn.execute(
            text("UPDATE procrastinate_jobs SET status = 'doing' WHERE task_name = :sweep"),
            {"sweep": SHOP_SUBMIT_PENDING},
        )
        await conn.execute(text("UPDATE achievements_dirty SET claimed_at = now()"))
    assert (await order(client, me["access_token"], [(bottle, 1)])).status_code == 201
    # a new sweep waits for the order placed meanwhile; the walker had redeemed before, so the
    # order leaves the batch's claim alone (place_order v7: only a first redemption marks)
    assert await queued() == (0, 1, 1, 0)


async def test_only_a_first_redemption_marks_the_walker_for_the_achievements_batch(client, engine):
    """An order changes one fact of the batch's (`redeemed`: an order not cancelled or failed);
    a walker who redeemed before is not evaluated again for it, and a walker whose orders were
    all cancelled redeems for the first time again."""
    bottle = await product(engine, price=10, stock=10)
    me = await walker_with_coins(client, engine, 100)

    async def marked() -> bool:
        async with engine.begin() as conn:
            found = (
                await conn.execute(
                    text("DELETE FROM achievements_dirty WHERE user_id = :u RETURNING 1"),
                    {"u": me["user"]["id"]},
                )
            ).scalar_one_or_none()  # consumed, as the batch does
        return found is not None

    first = await order(client, me["access_token"], [(bottle, 1)])
    assert first.status_code == 201 and await marked()
    assert (await order(client, me["access_token"], [(bottle, 1)])).status_code == 201
    assert not await marked()
    async with engine.connect() as conn:
        ids = (
            await conn.execute(
                text("SELECT id::text FROM orders WHERE user_id = :u"), {"u": me["user"]["id"]}
            )
        ).scalars()
        mine = list(ids)
    for order_id in mine:
        cancelled = await client.post(
            f"/v1/orders/{order_id}/cancel", headers=bearer(me["access_token"])
        )
        assert cancelled.status_code == 200, cancelled.text
    assert not await marked()  # a cancellation marks nobody
    assert (await order(client, me["access_token"], [(bottle, 1)])).status_code == 201
    assert await marked()  # the only order that counts: a first redemption again
    await ledger_ok(engine)


@pytest.mark.slow  # starts a PgBouncer
async def test_orders_through_pgbouncer_in_transaction_mode(bouncer_client, engine):  # noqa: F811
    """The placement is one statement on the bare driver: it must work where each statement may
    land on another server connection (STEPCOIN_DATABASE_PGBOUNCER, no prepared statements)."""
    bottle = await product(engine, price=10, stock=12)
    walkers = [await walker_with_coins(bouncer_client, engine, 30) for _ in range(4)]
    responses = await asyncio.gather(
        *[
            order(bouncer_client, w["access_token"], [(bottle, 1)], key=f"k{i % 5}")
            for i, w in enumerate(walkers * 5)
        ]
    )
    assert {r.status_code for r in responses} <= {201, 409}
    assert [r.status_code for r in responses].count(201) == 12  # 4 walkers x 3 coins' worth
    assert await stock(engine, bottle) == 0
    await ledger_ok(engine)


async def _waiting_for_a_lock(engine, marker: str) -> None:
    """Until a backend running a statement containing `marker` waits for a lock."""
    for _ in range(200):
        async with engine.connect() as conn:
            waiting = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE '%' || :m || '%' AND pid <> pg_backend_pid()"
                    ),
                    {"m": marker},
                )
            ).scalar_one()
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the placement never waited for the wallet lock")


async def test_a_deactivation_committed_while_the_placement_waited_is_seen(client, engine):
    """The account is read AFTER the wallet lock, by a statement of its own: a placement that
    waited while the account was being deleted refuses instead of placing (issue 12 race)."""
    bottle = await product(engine, price=10, stock=5)
    me = (await walker_with_coins(client, engine, 100))["user"]["id"]
    before = await _books(engine)
    async with engine.connect() as deleting:
        transaction = await deleting.begin()
        await deleting.execute(
            text("SELECT 1 FROM wallets WHERE user_id = :u FOR UPDATE"), {"u": me}
        )
        await deleting.execute(text("UPDATE users SET is_active = false WHERE id = :u"), {"u": me})
        placing = asyncio.create_task(_place(engine, me, "race", [(bottle, 1)]))
        await _waiting_for_a_lock(engine, "stepcoin_place_order")
        await transaction.commit()
    assert (await placing)["outcome"] == "account_gone"
    assert await _books(engine) == before


async def test_a_duplicate_waiting_on_the_first_placement_replays_it(client, engine):
    bottle = await product(engine, price=10, stock=5)
    me = (await walker_with_coins(client, engine, 100))["user"]["id"]
    async with engine.connect() as first:
        transaction = await first.begin()
        await first.execute(text("SELECT 1"))  # the adapter sends BEGIN with its first statement
        driver = (await first.get_raw_connection()).driver_connection
        placed = dict(
            await driver.fetchrow(
                PLACE_ORDER_SQL,
                uuid.UUID(me),
                "twice",
                "f1",
                uuid.uuid4(),
                new_order_codes(1),
                [bottle],
                [1],
                orjson.dumps(ADDRESS).decode(),
            )
        )
        second = asyncio.create_task(_place(engine, me, "twice", [(bottle, 1)]))
        await _waiting_for_a_lock(engine, "stepcoin_place_order")
        await transaction.commit()
    replay = await second
    assert placed["outcome"] == "created" and replay["outcome"] == "replayed"
    assert replay["id"] == placed["id"]
    assert await stock(engine, bottle) == 4
    await ledger_ok(engine)

"""shop.hot.HotOrders (issue 13): POST /v1/orders without FastAPI's request handling answers
exactly what the route answers, and everything but a placed or replayed order reaches the route
with its body intact."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from stepcoin.shop import hot
from tests.conftest import bearer
from tests.shop.helpers import ADDRESS, order, product, walker_with_coins
from tests.steps.helpers import ledger_ok

ID = re.compile(rb'"id":"[0-9a-f-]{36}"')
CODE = re.compile(rb'"order_code":"[A-Z0-9]{8}"')
STAMP = re.compile(rb'"(created_at|updated_at)":"[^"]+"')


@pytest.fixture
def hot_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For every POST /v1/orders that reached HotOrders._answer: answered here or not."""
    calls: list[bool] = []
    real = hot.HotOrders._answer

    async def counting(self: Any, scope: Any, body: bytes) -> Any:
        answer = await real(self, scope, body)
        calls.append(answer is not None)
        return answer

    monkeypatch.setattr(hot.HotOrders, "_answer", counting)
    return calls


def _fall_through(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(self: Any, scope: Any, body: bytes) -> None:
        return None

    monkeypatch.setattr(hot.HotOrders, "_answer", never)


def _same_form(content: bytes) -> bytes:
    """The answer without what two placements of one body cannot share."""
    return STAMP.sub(rb'"\1":"T"', CODE.sub(b'"order_code":"C"', ID.sub(b'"id":"I"', content)))


async def test_hot_answers_are_byte_for_byte_the_routes_answers(
    client, engine, hot_calls, monkeypatch
):
    bottle = await product(engine, price=30, stock=50)
    socks = await product(engine, price=5, stock=50, title="Socken — grün")
    me = await walker_with_coins(client, engine, 1000)
    lines = [(socks, 2), (bottle, 1)]
    address = {**ADDRESS, "line2": "Hinterhaus", "country": " de "}
    fast = await order(client, me["access_token"], lines, key="hot", address=address)
    fast_again = await order(client, me["access_token"], lines, key="hot", address=address)
    assert hot_calls == [True, True]
    _fall_through(monkeypatch)
    routed = await order(client, me["access_token"], lines, key="routed", address=address)
    routed_again = await order(client, me["access_token"], lines, key="hot", address=address)
    assert fast.status_code == routed.status_code == 201
    assert _same_form(fast.content) == _same_form(routed.content)
    assert fast_again.content == fast.content == routed_again.content  # the replay
    for name in ("content-type", "content-length"):
        assert fast.headers[name] == routed.headers[name]
        assert fast_again.headers[name] == routed_again.headers[name]
    assert "idempotent-replayed" not in fast.headers
    assert (
        fast_again.headers["idempotent-replayed"]
        == routed_again.headers["idempotent-replayed"]
        == "true"
    )
    assert len(fast.headers["x-request-id"]) == 32
    await ledger_ok(engine)


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"token": None}, 401, "missing_token"),
        ({"token": "not.a.token"}, 401, "invalid_token"),
        ({"key": None}, 422, "idempotency_key_required"),
        ({"key": "k" * 201}, 422, "idempotency_key_required"),
        ({"body": b'{"items": [}'}, 422, None),
        ({"body": b'{"items": [], "shipping_address": {}}'}, 422, None),
        ({"quantity": 6}, 409, "insufficient_stock_and_coins"),
        ({"content_type": "text/plain"}, 422, None),
    ],
)
async def test_everything_but_a_placed_order_is_the_routes_answer(
    client, engine, hot_calls, change, status, code
):
    bottle = await product(engine, price=30, stock=5)
    me = await walker_with_coins(client, engine, 100)
    body = b'{"items": [{"product_id": %d, "quantity": %d}], "shipping_address": %s}' % (
        bottle,
        change.get("quantity", 1),
        _json(ADDRESS),
    )
    headers = {"Content-Type": change.get("content_type", "application/json")}
    token = change.get("token", me["access_token"])
    if token is not None:
        headers.update(bearer(token))
    key = change.get("key", str(uuid.uuid4()))
    if key is not None:
        headers["Idempotency-Key"] = key
    answer = await client.post("/v1/orders", content=change.get("body", body), headers=headers)
    assert answer.status_code == status, answer.text
    if code is not None:
        assert answer.json()["code"] == code
    assert hot_calls == [False]


async def test_a_deactivated_account_falls_through_and_is_refused(client, engine, hot_calls):
    from sqlalchemy import text

    bottle = await product(engine, price=30, stock=5)
    me = await walker_with_coins(client, engine, 100)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET is_active = false WHERE id = :u"), {"u": me["user"]["id"]}
        )
    answer = await order(client, me["access_token"], [(bottle, 1)])
    assert answer.status_code == 401
    assert hot_calls == [False]


async def test_other_methods_and_paths_are_not_taken(client, hot_calls):
    await client.get("/v1/orders")
    await client.post("/v1/orders/", json={})
    assert hot_calls == []


def _json(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value)

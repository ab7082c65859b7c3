"""POST /v1/orders without FastAPI's routing, dependency solving and body handling (issue 13).

The order is one round trip to the database; FastAPI's request handling around it (routing,
dependencies, body parsing, response validation) was ~20% of the API's CPU per order. This
middleware sits innermost, like main.HotRoutes for the hot GETs, so request ids, the access log,
metrics, the body limit and the input guard apply exactly as to the route.

Only a placed (201) or replayed order is answered here: a JSON body that validates as OrderIn,
a valid bearer token (the cached verification of auth.dependencies.current_claims), an
Idempotency-Key of 1-200 characters, and the very `orders.place_order` the route calls. Anything
else (no or bad token, a body the route must reject, any refusal such as 409 or 403, a database
error) goes, with the body replayed untouched, to the FastAPI route, which answers as it always
did. A refusal writes nothing, so the route deciding again is safe; an error after the order
committed is answered by the route as a replay of the same key.
"""

from __future__ import annotations

import logging

import orjson
from pydantic import TypeAdapter
from starlette.types import ASGIApp, Receive, Scope, Send

from stepcoin.auth.tokens import bearer_claims, first_headers, is_json
from stepcoin.config import Settings
from stepcoin.shop import orders
from stepcoin.shop.schemas import OrderIn, OrderOut
from stepcoin.validation import RouteLabel, read_body, replay, send_json

logger = logging.getLogger("stepcoin.shop.hot")

ORDERS_PATH = "/v1/orders"
_ORDER_OUT = TypeAdapter(OrderOut)


_ROUTE = RouteLabel(ORDERS_PATH)


class HotOrders:
    """POST /v1/orders placed (or replayed) without FastAPI's request handling; see the module."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != ORDERS_PATH
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        body, received = await read_body(receive)
        answer = None
        if received[-1]["type"] == "http.request":  # the client did not go away first
            answer = await self._answer(scope, body)
        if answer is None:
            await self.app(scope, replay(received, receive), send)
            return
        content, created = answer
        scope["route"] = _ROUTE
        replayed = [] if created else [(b"idempotent-replayed", b"true")]
        await send_json(send, content, status=201, headers=replayed)

    async def _answer(self, scope: Scope, body: bytes) -> tuple[bytes, bool] | None:
        headers = first_headers(scope, b"authorization", b"idempotency-key", b"content-type")
        key = headers.get(b"idempotency-key")
        if not key or not (1 <= len(key) <= 200) or not is_json(headers.get(b"content-type")):
            return None
        claims = bearer_claims(self.settings, headers.get(b"authorization"))
        if claims is None:
            return None
        try:
            order_in = OrderIn.model_validate(orjson.loads(body))
        except ValueError:  # pydantic's and orjson's errors are ValueErrors
            return None
        try:
            pool = await scope["app"].state.database.fast_pool()
            async with pool.acquire() as driver:
                order, created = await orders.place_order(
                    driver, user_id=claims.user_id, idempotency_key=key, body=order_in
                )
        except Exception:  # a refusal or an error: the FastAPI route answers (and logs) it
            logger.debug("the order fell through to the route", exc_info=True)
            return None
        return _ORDER_OUT.dump_json(_ORDER_OUT.validate_python(order), by_alias=True), created

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
from dataclasses import dataclass

import orjson
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import TypeAdapter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepcoin.auth.tokens import InvalidToken, decode_access_token
from stepcoin.config import Settings
from stepcoin.shop import orders
from stepcoin.shop.schemas import OrderIn, OrderOut

logger = logging.getLogger("stepcoin.shop.hot")

ORDERS_PATH = "/v1/orders"
_ORDER_OUT = TypeAdapter(OrderOut)


@dataclass(frozen=True, slots=True)
class _Route:
    """What scope["route"] needs for the metrics label: the route's own path template."""

    path: str


_ROUTE = _Route(ORDERS_PATH)


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
        received: list[Message] = []
        body = await _read_body(receive, received)
        answer = None if body is None else await self._answer(scope, body)
        if answer is None:
            await self.app(scope, _replaying(received, receive), send)
            return
        content, created = answer
        headers = [
            (b"content-length", str(len(content)).encode("latin-1")),
            (b"content-type", b"application/json"),
        ]
        if not created:
            headers.append((b"idempotent-replayed", b"true"))
        scope["route"] = _ROUTE
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _answer(self, scope: Scope, body: bytes) -> tuple[bytes, bool] | None:
        authorization = key = content_type = None
        for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"idempotency-key" and key is None:
                key = value.decode("latin-1")
            elif name == b"content-type" and content_type is None:
                content_type = value.decode("latin-1")
        if not authorization or not key or not (1 <= len(key) <= 200):
            return None
        if content_type is None or content_type.split(";")[0].strip().lower() != (
            "application/json"
        ):
            return None
        scheme, token = get_authorization_scheme_param(authorization)
        if not token or scheme.lower() != "bearer":
            return None
        try:
            claims = decode_access_token(self.settings, token)
            order_in = OrderIn.model_validate(orjson.loads(body))
        except (InvalidToken, ValueError):  # pydantic's and orjson's errors are ValueErrors
            return None
        try:
            pool = await scope["app"].state.database.read_pool()
            async with pool.acquire() as driver:
                order, created = await orders.place_order(
                    driver, user_id=claims.user_id, idempotency_key=key, body=order_in
                )
        except Exception:  # a refusal or an error: the FastAPI route answers (and logs) it
            logger.debug("the order fell through to the route", exc_info=True)
            return None
        return _ORDER_OUT.dump_json(_ORDER_OUT.validate_python(order), by_alias=True), created


async def _read_body(receive: Receive, received: list[Message]) -> bytes | None:
    """The whole request body (None if the client went away first); every message is kept
    in `received` so that the route can read them again."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(received: list[Message], receive: Receive) -> Receive:
    """A receive that gives the messages already read again, then the rest from the client."""
    pending = list(received)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay

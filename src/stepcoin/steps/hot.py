"""POST /v1/admin/validations/{id}/approve and .../reject without FastAPI's routing and
dependency solving (issue 13: the coin transaction's half-load p99).

A review's decision is two statements on the fast pool's autocommit connection (review.decide,
steps/sql/review_decide.v2.sql); FastAPI's request handling around them (routing among the many
admin routes, dependency solving, the endpoint wrapper) and the ORM session's BEGIN/COMMIT were
most of the API's CPU per approval. This middleware sits innermost, like shop.hot.HotOrders, so
request ids, the access log, metrics, the body limit, the input guard and the rate limits apply
exactly as to the route.

Only a decision taken is answered here: an empty body, or a JSON body that validates as the
route's ReviewIn; a valid bearer token (the cached verification of
auth.dependencies.current_claims); a caller who is an active member of staff as read with the
decision (review.decide's staff_roles: the account's role and state as the route's Reviewer
dependency reads them); and the very `review.decide` the route calls. Anything else (no or bad
token, a walker, a body the route must reject, any refusal such as 404, 409 or 403, a database
error) goes, with the body replayed untouched, to the FastAPI route, which answers as it always
did. A refusal writes nothing (the decision's one write statement is its last step), so the
route deciding again is safe.
"""

from __future__ import annotations

import logging
import re
from typing import Literal

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from stepcoin.auth.dependencies import STAFF_ROLES
from stepcoin.auth.tokens import bearer_claims, first_headers, is_json
from stepcoin.config import Settings
from stepcoin.steps import review
from stepcoin.steps.router import ReviewIn
from stepcoin.validation import RouteLabel, read_body, replay, send_json

logger = logging.getLogger("stepcoin.steps.hot")

# a positive id of at most 18 digits is always an Int64; anything else is the route's to answer
_PATH = re.compile(r"/v1/admin/validations/([1-9][0-9]{0,17})/(approve|reject)")
_DECISIONS: dict[str, Literal["approved", "rejected"]] = {
    "approve": "approved",
    "reject": "rejected",
}


_ROUTES = {
    verb: RouteLabel(f"/v1/admin/validations/{{validation_id}}/{verb}") for verb in _DECISIONS
}


class HotReview:
    """A review's decision taken without FastAPI's request handling; see the module."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            match = _PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        body, received = await read_body(receive)
        content = None
        if received[-1]["type"] == "http.request":  # the client did not go away first
            content = await self._answer(scope, int(match[1]), _DECISIONS[match[2]], body)
        if content is None:
            await self.app(scope, replay(received, receive), send)
            return
        scope["route"] = _ROUTES[match[2]]
        await send_json(send, content)

    async def _answer(
        self,
        scope: Scope,
        validation_id: int,
        decision: Literal["approved", "rejected"],
        body: bytes,
    ) -> bytes | None:
        headers = first_headers(scope, b"authorization", b"content-type")
        note = None
        if body:
            if not is_json(headers.get(b"content-type")):
                return None
            try:
                note = ReviewIn.model_validate_json(body).note
            except ValueError:  # pydantic's errors are ValueErrors
                return None
        claims = bearer_claims(self.settings, headers.get(b"authorization"))
        if claims is None:
            return None
        try:
            note = review.check_note(note)
            pool = await scope["app"].state.database.fast_pool()
            async with pool.acquire() as driver:
                decided = await review.decide(
                    driver,
                    validation_id=validation_id,
                    reviewer_id=claims.user_id,
                    decision=decision,
                    note=note,
                    staff_roles=STAFF_ROLES,
                )
        except Exception:  # a refusal or an error, nothing written: the route answers it
            logger.debug("the review fell through to the route", exc_info=True)
            return None
        return orjson.dumps(decided)

"""The caller's wallet and ledger."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Response

from stepcoin.auth.dependencies import ClaimsDep
from stepcoin.db import DriverDep
from stepcoin.errors import InvalidInput, account_gone
from stepcoin.pagination import (
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    MAX_LIMIT,
    CursorQuery,
    LimitQuery,
    bigint_id,
    decode_cursor,
    page,
)
from stepcoin.wallet import repository
from stepcoin.wallet.schemas import TransactionPage, WalletOut

router = APIRouter(prefix="/v1/wallet", tags=["wallet"])


def json_bytes(data: Any) -> bytes:
    """The answer as FastAPI would serialise it through the response model, without the model
    (issue 13: the rows are already shaped; tests/wallet/test_fast_json.py compares the bytes).
    `response_model` stays on the routes for the OpenAPI schema."""
    return orjson.dumps(data, option=orjson.OPT_UTC_Z)


def json_response(body: bytes) -> Response:
    return Response(body, media_type="application/json")


async def wallet_answer(driver: Any, user_id: uuid.UUID, query: bytes = b"") -> bytes | None:
    """GET /v1/wallet's 200 body; None for an inactive or missing account."""
    wallet = await repository.fetch_wallet(driver, user_id)
    return None if wallet is None else json_bytes(wallet)


async def transactions_answer(driver: Any, user_id: uuid.UUID, query: bytes) -> bytes | None:
    """GET /v1/wallet/transactions's 200 body for main.HotRoutes; None for anything the route
    itself must answer: an inactive account, or a query that is not a plain `limit` within
    1..200 and/or a well-formed `cursor` (the route's validation then gives the same 422)."""
    limit, after = DEFAULT_LIMIT, None
    if query:
        try:
            pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        except (ValueError, UnicodeDecodeError):
            return None
        params = dict(pairs)
        if len(params) != len(pairs) or not set(params) <= {"limit", "cursor"}:
            return None
        if "limit" in params:
            text = params["limit"]
            if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_LIMIT):
                return None
            limit = int(text)
        if "cursor" in params:
            cursor = params["cursor"]
            if len(cursor) > MAX_CURSOR_LENGTH:
                return None
            try:
                after = decode_cursor(cursor, bigint_id)
            except InvalidInput:
                return None
    rows = await repository.fetch_transactions(driver, user_id, limit=limit + 1, after=after)
    return None if rows is None else json_bytes(page(rows, limit))


@router.get("", response_model=WalletOut)
async def get_wallet(claims: ClaimsDep, driver: DriverDep) -> Any:
    """The caller's balances (one query)."""
    body = await wallet_answer(driver, claims.user_id)
    if body is None:
        raise account_gone()
    return json_response(body)


@router.get("/transactions", response_model=TransactionPage)
async def list_transactions(
    claims: ClaimsDep,
    driver: DriverDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Any:
    """The caller's ledger, newest first, one page at a time (pass `next_cursor` back)."""
    after = decode_cursor(cursor, bigint_id) if cursor else None
    rows = await repository.fetch_transactions(driver, claims.user_id, limit=limit + 1, after=after)
    if rows is None:
        raise account_gone()
    return json_response(json_bytes(page(rows, limit)))

"""The caller's wallet and ledger."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Response

from stepcoin.auth.dependencies import ClaimsDep
from stepcoin.db import DriverDep
from stepcoin.errors import account_gone
from stepcoin.pagination import (
    DEFAULT_LIMIT,
    CursorQuery,
    LimitQuery,
    bigint_id,
    decode_cursor,
    page,
)
from stepcoin.wallet import repository
from stepcoin.wallet.schemas import TransactionPage, WalletOut

router = APIRouter(prefix="/v1/wallet", tags=["wallet"])


def json_response(data: Any) -> Response:
    """The answer as FastAPI would serialise it through the response model, without the model
    (issue 13: the rows are already shaped; tests/wallet/test_fast_json.py compares the bytes).
    `response_model` stays on the route for the OpenAPI schema."""
    return Response(orjson.dumps(data, option=orjson.OPT_UTC_Z), media_type="application/json")


@router.get("", response_model=WalletOut)
async def get_wallet(claims: ClaimsDep, driver: DriverDep) -> Any:
    """The caller's balances (one query)."""
    wallet = await repository.fetch_wallet(driver, claims.user_id)
    if wallet is None:
        raise account_gone()
    return json_response(wallet)


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
    return json_response(page(rows, limit))

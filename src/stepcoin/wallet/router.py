"""The caller's wallet and ledger."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from stepcoin.auth.dependencies import ClaimsDep
from stepcoin.db import DriverDep, ReadSessionDep
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


@router.get("", response_model=WalletOut)
async def get_wallet(claims: ClaimsDep, driver: DriverDep) -> Any:
    """The caller's balances (one query)."""
    wallet = await repository.fetch_wallet(driver, claims.user_id)
    if wallet is None:
        raise account_gone()
    return wallet


@router.get("/transactions", response_model=TransactionPage)
async def list_transactions(
    claims: ClaimsDep,
    session: ReadSessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Any:
    """The caller's ledger, newest first, one page at a time (pass `next_cursor` back)."""
    after = decode_cursor(cursor, bigint_id) if cursor else None
    rows = await repository.list_transactions(session, claims.user_id, limit=limit + 1, after=after)
    if rows is None:
        raise account_gone()
    return page(rows, limit)

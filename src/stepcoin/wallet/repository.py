"""Queries on wallets and the coin ledger; flushes, never commits."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.pagination import MAX_LIMIT

LEDGER_COLUMNS = "id, amount, transaction_type, reference_id, balance_after, created_at, note"

WALLET_SQL = """
SELECT w.available_coins, w.pending_coins, w.lifetime_earned, w.lifetime_spent
FROM users u JOIN wallets w ON w.user_id = u.id
WHERE u.id = $1 AND u.is_active
"""


async def fetch_wallet(driver: Any, user_id: uuid.UUID) -> dict[str, Any] | None:
    """The balances of an active user: one prepared statement on a bare connection."""
    row = await driver.fetchrow(WALLET_SQL, user_id)
    return dict(row) if row else None


_LEDGER_PAGE = f"""
SELECT u.is_active, t.*
FROM users u
LEFT JOIN LATERAL (
    SELECT {LEDGER_COLUMNS} FROM coin_transactions t
    WHERE t.user_id = u.id {{position}}
    ORDER BY t.created_at DESC, t.id DESC
    LIMIT {{limit}}
) t ON true
WHERE u.id = $1
"""
MAX_PAGE_ROWS = MAX_LIMIT + 1  # a page and the row that says another page follows


@functools.cache
def ledger_page_sql(limit: int, after: bool) -> str:
    """The ledger page's statement for `limit` rows (1..MAX_PAGE_ROWS), after a cursor ($2, $3)
    or from the newest row.

    The limit is part of the text, not a parameter (as in leaderboards.repository
    .read_board_sql): with LIMIT $n PostgreSQL cannot cost a generic plan, kept every custom
    plan, and planned the statement on every read (38 % of the read's PostgreSQL CPU; 10,500
    against 28,400 a second on 2 clients). A client that varies its page size adds one
    prepared statement per size to its connection's cache.

    The cursor is read through two InitPlans, so no plan sees its value: a custom plan for a
    cursor near the newest row expects nearly all of the walker's rows before it where the
    generic plan guesses a third, and on a ledger of walkers with thousands of rows every custom
    plan looked cheaper, so each page after the first was planned anew (376-401 µs a read
    against 263; tests/wallet/test_ledger_plan.py). Like every generic plan, it guesses a
    walker's rows from the average walker's: below ~60 rows a walker on average, page 2's plan
    sorts all of a heavy walker's rows instead of reading the index in order (BENCHMARKS.md
    run 28; the inbox, with fewer entries a walker, stays planned per read for that reason).
    """
    if not 1 <= limit <= MAX_PAGE_ROWS:
        raise ValueError(f"limit must be 1..{MAX_PAGE_ROWS}")
    position = (
        "AND (t.created_at, t.id) < ((SELECT $2::timestamptz), (SELECT $3::bigint))"
        if after
        else ""
    )
    return _LEDGER_PAGE.format(position=position, limit=int(limit))


async def fetch_transactions(
    driver: Any, user_id: uuid.UUID, *, limit: int, after: tuple[datetime, int] | None
) -> list[dict[str, Any]] | None:
    """A page of GET /v1/wallet/transactions (newest first, after the cursor) as one prepared
    statement on a bare connection; None for a missing or inactive walker."""
    if after:
        rows = await driver.fetch(ledger_page_sql(limit, True), user_id, *after)
    else:
        rows = await driver.fetch(ledger_page_sql(limit, False), user_id)
    if not rows or not rows[0]["is_active"]:
        return None
    return [{key: row[key] for key in _LEDGER_KEYS} for row in rows if row["id"] is not None]


_LEDGER_KEYS = tuple(LEDGER_COLUMNS.split(", "))


async def lock_reference(session: AsyncSession, reference_id: str) -> None:
    """Serialise requests for one reference until commit, so a retry waits for the original.

    Keyed by the reference alone, not by the walker: an admin's idempotency key (reference
    `adj:<admin>:<key>`) is refused for a second walker, and the ledger's unique key, which
    holds per walker (transaction_type, reference_id, user_id), cannot refuse that itself."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:ref, 0))"), {"ref": reference_id}
    )


async def find_transaction(
    session: AsyncSession, transaction_type: str, reference_id: str
) -> dict[str, Any] | None:
    """The ledger row of this (type, reference), whichever walker holds it (with its user_id):
    one probe of the unique key's (transaction_type, reference_id) prefix. Callers hold
    lock_reference, so no other walker's row with this reference can appear meanwhile. On a
    database sharded by walker this reads every shard: it serves rare admin adjustments only."""
    row = (
        (
            await session.execute(
                text(
                    f"SELECT user_id, {LEDGER_COLUMNS} FROM coin_transactions "
                    "WHERE transaction_type = :type AND reference_id = :ref"
                ),
                {"type": transaction_type, "ref": reference_id},
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def lock_wallet(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Hold the user's wallet row until commit (every posting and order locks it first);
    False when the user has no wallet."""
    row = (
        await session.execute(
            text("SELECT 1 FROM wallets WHERE user_id = :u FOR UPDATE"), {"u": user_id}
        )
    ).first()
    return row is not None

"""The ledger page's statement keeps its generic plan (issue 13): the page size is part of
its text (wallet.repository.ledger_page_sql). With `LIMIT $2` the generic plan's cost is a
guess (a tenth of the walker's rows) that with real statistics (walkers with hundreds of
ledger rows: the bench database) lost to every custom plan, so the statement was planned on
every read; the test database's few rows do not show that. The former form is the reference
of the rows."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from stepcoin.db import libpq_url
from stepcoin.wallet.repository import MAX_PAGE_ROWS, ledger_page_sql
from tests.conftest import register
from tests.plan_cache import plans_after
from tests.steps.helpers import rec, sync

FORMER = """
SELECT u.is_active, t.*
FROM users u
LEFT JOIN LATERAL (
    SELECT id, amount, transaction_type, reference_id, balance_after, created_at, note
    FROM coin_transactions t
    WHERE t.user_id = u.id {position}
    ORDER BY t.created_at DESC, t.id DESC
    LIMIT $2
) t ON true
WHERE u.id = $1
"""


async def test_the_ledger_page_keeps_its_generic_plan(client, database_url):
    walkers = []
    for i in range(3):
        me = await register(client)
        for steps in (3000, 4000 + i, 5000):
            await sync(client, me["access_token"], rec(1, steps), rec(2, steps))
        walkers.append(uuid.UUID(me["user"]["id"]))
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        newest = await conn.fetch(ledger_page_sql(3, False), walkers[0])
        cursor = (newest[1]["created_at"], newest[1]["id"])
        # the same rows as the former statement, from the newest and after a cursor
        assert [tuple(r) for r in newest] == [
            tuple(r) for r in await conn.fetch(FORMER.format(position=""), walkers[0], 3)
        ]
        after = "AND (t.created_at, t.id) < ($3, $4)"
        assert [
            tuple(r) for r in await conn.fetch(ledger_page_sql(21, True), walkers[0], *cursor)
        ] == [
            tuple(r)
            for r in await conn.fetch(FORMER.format(position=after), walkers[0], 21, *cursor)
        ]
        calls = [(walkers[i % 3],) for i in range(12)]
        assert (await plans_after(conn, ledger_page_sql(21, False), calls))[0] >= 7
        later = [(walkers[i % 3], *cursor) for i in range(12)]
        assert (await plans_after(conn, ledger_page_sql(21, True), later))[0] >= 7
    finally:
        await conn.close()


def test_the_page_size_is_bounded():
    assert "LIMIT 201" in ledger_page_sql(MAX_PAGE_ROWS, False)
    for bad in (0, MAX_PAGE_ROWS + 1):
        with pytest.raises(ValueError):
            ledger_page_sql(bad, False)

"""The ledger page's statements keep their generic plan (issue 13), whatever the cursor.

Two things made PostgreSQL plan them anew on every read (wallet.repository.ledger_page_sql):
`LIMIT $2`, whose generic plan it cannot cost (the page size is now part of the text), and a
cursor whose value it could see: a custom plan for a cursor near the newest row expects nearly
all of a walker's rows before it where the generic plan guesses a third, so with a ledger of
walkers with thousands of rows each every custom plan looked cheaper (a page after the first
took 376-401 µs a read instead of 263 on 8 x 5,000 rows). The cursor is now read through
InitPlans, unseen by either plan. The test gives the ledger such walkers and fresh statistics:
on a worker's database the planner otherwise sees what an earlier test left (CI once saw every
page-2 read planned anew that way). The former statements are the reference of the rows, and
on the same statistics they lose their generic plan, which shows the data can tell."""

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
FORMER_AFTER = "AND (t.created_at, t.id) < ($3, $4)"

# A walker's history: `rows` earlier ledger rows, one every six hours back from now, written
# straight into the table: only their dates and owner matter to the planner (the wallets do
# not follow them; the next test starts from empty tables).
HISTORY = """
INSERT INTO coin_transactions
    (user_id, amount, transaction_type, reference_id, balance_after, created_at)
SELECT $1, 10, 'admin_adjustment', 'history-' || n, 10 * n,
       now() - make_interval(hours => 6 * ($2 + 1 - n))
FROM generate_series(1, $2) AS n
"""
WALKERS, HISTORY_ROWS = 8, 5000


async def test_the_ledger_pages_keep_their_generic_plan(client, database_url):
    walkers = []
    for i in range(WALKERS):
        me = await register(client)
        if i < 3:
            await sync(client, me["access_token"], rec(1, 3000 + i), rec(2, 5000))
        walkers.append(uuid.UUID(me["user"]["id"]))
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        for walker in walkers:
            await conn.execute(HISTORY, walker, HISTORY_ROWS)
        await conn.execute("ANALYZE coin_transactions; ANALYZE users")
        first = await conn.fetch(ledger_page_sql(21, False), walkers[0])
        assert [tuple(r) for r in first] == [
            tuple(r) for r in await conn.fetch(FORMER.format(position=""), walkers[0], 21)
        ]
        assert first[0]["transaction_type"] != "admin_adjustment"  # the sync's, newest first
        cursor = (first[-1]["created_at"], first[-1]["id"])  # where page 2 starts
        second = await conn.fetch(ledger_page_sql(21, True), walkers[0], *cursor)
        assert [tuple(r) for r in second] == [
            tuple(r)
            for r in await conn.fetch(FORMER.format(position=FORMER_AFTER), walkers[0], 21, *cursor)
        ]
        assert len(second) == 21 and second[0]["created_at"] <= cursor[0]

        calls = [(walkers[i % 3],) for i in range(12)]
        assert (await plans_after(conn, ledger_page_sql(21, False), calls))[0] >= 7
        later = [(walkers[i % 3], *cursor) for i in range(12)]
        assert (await plans_after(conn, ledger_page_sql(21, True), later))[0] >= 7
        # the same statistics cost the former statements' custom plans lower, every time (the
        # reference reads above count among them)
        former = [(w, 21) for (w,) in calls]
        assert (await plans_after(conn, FORMER.format(position=""), former))[0] == 0
        former_later = [(w, 21, *c) for (w, *c) in later]
        former_after = FORMER.format(position=FORMER_AFTER)
        assert (await plans_after(conn, former_after, former_later))[0] == 0
        cursor_seen = ledger_page_sql(21, True).replace(
            "((SELECT $2::timestamptz), (SELECT $3::bigint))", "($2, $3)"
        )
        assert cursor_seen != ledger_page_sql(21, True)
        assert (await plans_after(conn, cursor_seen, later))[0] == 0
    finally:
        await conn.close()


def test_the_page_size_is_bounded():
    assert "LIMIT 201" in ledger_page_sql(MAX_PAGE_ROWS, False)
    for bad in (0, MAX_PAGE_ROWS + 1):
        with pytest.raises(ValueError):
            ledger_page_sql(bad, False)

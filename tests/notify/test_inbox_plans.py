"""The inbox read at a walker's thousandth notification (issue 13): nothing removes inbox
entries, so a walker's inbox only grows. The unread count of every inbox read used to read
every entry the walker ever got (their `read_at` is in the row, not in
`ix_notifications_inbox`); `ix_notifications_unread` (migration 0061) holds the unread ones
only. The pages stay right: from the newest, after a cursor, only the unread ones.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from stepcoin.db import libpq_url
from stepcoin.notify.service import UNREAD_SQL
from tests.notify.helpers import notify, walker

WALKERS, ENTRIES, UNREAD = 2, 3000, 3

# `rows` read inbox entries, one every three hours back from now.
HISTORY = """
INSERT INTO notifications (user_id, kind, title, body, data, dedupe_key, in_inbox, read_at,
                           push_status, created_at)
SELECT $1, 'review_outcome', 'Day approved', 'Earlier', '{}', 'history:' || n, true,
       now() - make_interval(hours => 3 * ($2 + 1 - n)) + interval '1 minute', 'none',
       now() - make_interval(hours => 3 * ($2 + 1 - n))
FROM generate_series(1, $2) AS n
"""


def positional(statement: str) -> str:
    """The statement as SQLAlchemy's asyncpg dialect sends it ($1...): the text PostgreSQL
    prepares for the app."""
    return str(text(statement).compile(dialect=asyncpg_dialect.dialect()))


def indexes(node: dict[str, Any]) -> set[str]:
    """The indexes a plan (EXPLAIN's JSON) reads, at any depth (an index-only scan right under
    the count, or a bitmap scan under a heap scan)."""
    found = {node["Index Name"]} if "Index Name" in node else set()
    for child in node.get("Plans", []):
        found |= indexes(child)
    return found


async def test_the_inbox_at_thousands_of_entries(client, engine, database_url):
    walkers = [await walker(client) for _ in range(WALKERS)]
    ada = walkers[0]
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        for w in walkers:
            await conn.execute(HISTORY, uuid.UUID(w["id"]), ENTRIES)
        unread = [await notify(engine, ada["id"], title=f"new {i}") for i in range(UNREAD)]
        # the table as a server that vacuums would hold it: an earlier test's rows, deleted but
        # still in the files, made the indexes look 80 pages a row and the plan a whole-table
        # scan (seen in CI); VACUUM FULL rewrites the table and its indexes without them
        await conn.execute("VACUUM FULL notifications")
        await conn.execute("ANALYZE notifications")

        first = (await client.get("/v1/me/notifications?limit=20", headers=ada["headers"])).json()
        assert first["unread"] == UNREAD
        assert [n["id"] for n in first["items"][:UNREAD]] == unread[::-1]
        second = (
            await client.get(
                f"/v1/me/notifications?limit=20&cursor={first['next_cursor']}",
                headers=ada["headers"],
            )
        ).json()
        expected = await conn.fetch(
            "SELECT id FROM notifications WHERE user_id = $1 AND in_inbox "
            "ORDER BY created_at DESC, id DESC LIMIT 40",
            uuid.UUID(ada["id"]),
        )
        assert [n["id"] for n in first["items"] + second["items"]] == [r["id"] for r in expected]
        only_unread = (
            await client.get("/v1/me/notifications?unread=true", headers=ada["headers"])
        ).json()
        assert [n["id"] for n in only_unread["items"]] == unread[::-1]
        assert only_unread["next_cursor"] is None

        # the unread count reads the unread entries' index, not the 3,003 entries
        sql = positional(UNREAD_SQL)
        plan = json.loads(
            await conn.fetchval(
                f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", uuid.UUID(ada["id"])
            )
        )[0]["Plan"]
        assert "ix_notifications_unread" in indexes(plan), json.dumps(plan)
        assert plan["Shared Hit Blocks"] + plan["Shared Read Blocks"] < 20, plan

    finally:
        await conn.close()

"""The sync's snapshot read, stepcoin_sync_snapshot (issue 13, migration 0044).

As a prepared statement it was planned anew on every sync: the planner pruned step_records'
month partitions by the days it was given, so every custom plan looked cheaper than the
generic one, which PostgreSQL therefore never kept (pg_prepared_statements counted 12 custom
plans in 12 executions). The function runs the same statement with a generic plan. The
former statement is kept here as the reference the function's answers are compared with.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy import text

from stepcoin.db import libpq_url
from stepcoin.steps.service import SNAPSHOT_SQL
from tests.conftest import register
from tests.plan_cache import plans_after
from tests.steps.helpers import rec, sync, today

REFERENCE_SQL = """
SELECT u.is_active, u.created_at, u.timezone, w.version,
  coalesce((SELECT json_agg(json_build_array(
        r.recorded_date, r.source, r.steps, r.approved_steps, r.device_ids, r.is_deleted,
        r.is_manual, r.client_record_id, r.client_record_version, r.status, r.reasons,
        r.intervals IS NOT NULL))
      FROM step_records r WHERE r.user_id = $1 AND r.recorded_date = ANY($2::date[])), '[]'),
  coalesce((SELECT json_object_agg(d.recorded_date, d.credited_steps)
      FROM step_days d WHERE d.user_id = $1 AND d.recorded_date >= $3
        AND d.recorded_date <= $4 AND d.credited_steps > 0), '{}'),
  json_build_array(
    (SELECT json_build_array(lm.device_accounts, lm.same_series, lm.cleared)
       FROM link_marks lm WHERE lm.user_id = $1),
    (SELECT count(*) FROM users o WHERE o.signup_address = u.signup_address
        AND o.created_at BETWEEN u.created_at - $5::interval AND u.created_at + $5::interval))
FROM users u JOIN wallets w ON w.user_id = u.id WHERE u.id = $1
"""


def _unordered(row: Any) -> tuple[Any, ...]:
    """The answer with its records sorted: their json_agg has no ORDER BY (the caller keys them
    by day and source), so their order is whatever the plan read first (seen to differ between
    the two statements' plans)."""
    values = list(row)
    values[4] = sorted(json.loads(values[4]), key=lambda record: (record[0], record[1]))
    return tuple(values)


async def test_the_snapshot_function_answers_as_the_former_statement(client, engine, database_url):
    walkers = []
    for i in range(3):
        me = await register(client)
        await sync(
            client,
            me["access_token"],
            rec(0, 4000 + i, device_id="phone-a"),  # one phone: the walkers are linked
            rec(1, 5000, source="google_fit", intervals=[]),
            rec(2, 150_000),  # rejected, stored
            rec(35, 6000),
        )
        walkers.append(uuid.UUID(me["user"]["id"]))
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO link_marks (user_id, device_accounts, same_series) "
                "VALUES (:u, 3, 2) ON CONFLICT (user_id) DO UPDATE SET same_series = 2"
            ),
            {"u": walkers[1]},
        )
    days = [today() - timedelta(days=k) for k in range(6, -1, -1)]
    cases = [
        (walker, chosen, days[0] - timedelta(days=back), days[-1], timedelta(hours=hours))
        for walker in [*walkers, uuid.uuid4()]
        for chosen in (days, days[-1:], days[:3], [today() - timedelta(days=35)])
        for back, hours in ((28, 24), (60, 1))
    ]
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        for args in cases:
            expected = await conn.fetchrow(REFERENCE_SQL, *args)
            got = await conn.fetchrow(SNAPSHOT_SQL, *args)
            if expected is None:
                assert got is None
                continue
            assert got is not None
            assert _unordered(got) == _unordered(expected), args
        # what the function replaced: a statement planned for every execution
        generic, custom = await plans_after(conn, REFERENCE_SQL, cases[:12])
        assert generic == 0 and custom >= 12
        # the function's own statements keep their generic plan
        config = await conn.fetchval(
            "SELECT proconfig FROM pg_proc WHERE proname = 'stepcoin_sync_snapshot'"
        )
    finally:
        await conn.close()
    assert config == ["plan_cache_mode=force_generic_plan"]

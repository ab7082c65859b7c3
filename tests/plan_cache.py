"""Which plans PostgreSQL gave a prepared statement (issue 13: hot statements planned anew on
every call). asyncpg prepares every statement it runs; pg_prepared_statements counts, per
statement of the session, the generic and the custom plans it was executed with. After five
custom plans PostgreSQL keeps the generic one unless the custom ones looked cheaper."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

PLANS_SQL = "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1"


async def plans_after(conn: Any, statement: str, calls: Iterable[Sequence[Any]]) -> tuple[int, int]:
    """Run `statement` once per argument list on `conn` (asyncpg); (generic, custom) plans."""
    for args in calls:
        await conn.fetch(statement, *args)
    generic, custom = await conn.fetchrow(PLANS_SQL, statement)
    return generic, custom

"""Campaign queries: the rows, and the segment as SQL (a WHERE over users `u`)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

COLUMNS = (
    "id, name, message, coins_per_walker, segment, status, created_by, created_at, "
    "approved_by, approved_at, approved_coins, run_by, started_at, finished_at, "
    "walkers_total, walkers_paid, coins_paid, resume_after, "
    "jsonb_array_length(segment -> 'user_ids') AS user_ids_count"
)
# The list leaves a segment's user ids out (up to 50,000 each): their count stays.
LIST_COLUMNS = COLUMNS.replace("segment, status", "segment - 'user_ids' AS segment, status")

# Never in a segment: staff (they never pay themselves), deactivated and deleted walkers, and
# an account without a wallet.
_ELIGIBLE = (
    "u.role = 'user' AND u.is_active AND u.deleted_at IS NULL "
    "AND EXISTS (SELECT 1 FROM wallets w WHERE w.user_id = u.id)"
)


def segment_where(segment: dict[str, Any], *, with_ids: bool = True) -> tuple[str, dict[str, Any]]:
    """The stored segment as SQL conditions on `users u` and their parameters (with_ids=False
    leaves out the user-id list: the run passes each chunk's slice of it instead)."""
    conditions = [_ELIGIBLE]
    params: dict[str, Any] = {}
    if with_ids and segment.get("user_ids"):
        conditions.append("u.id = ANY(CAST(:segment_ids AS uuid[]))")
        params["segment_ids"] = segment["user_ids"]
    if segment.get("joined_before"):
        conditions.append(
            "u.created_at < (CAST(:joined_before AS date)::timestamp AT TIME ZONE 'UTC')"
        )
        params["joined_before"] = date.fromisoformat(segment["joined_before"])
    if segment.get("min_steps") is not None:
        conditions.append(
            "(SELECT coalesce(sum(d.credited_steps), 0) FROM step_days d WHERE d.user_id = u.id "
            "AND d.recorded_date BETWEEN CAST(:steps_from AS date) AND CAST(:steps_to AS date)"
            ") >= :min_steps"
        )
        params.update(
            steps_from=date.fromisoformat(segment["steps_from"]),
            steps_to=date.fromisoformat(segment["steps_to"]),
            min_steps=int(segment["min_steps"]),
        )
    if segment.get("has_not_ordered"):
        conditions.append(
            "NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id "
            "AND o.status NOT IN ('cancelled', 'failed'))"
        )
    return " AND ".join(conditions), params


async def insert(
    session: AsyncSession,
    *,
    name: str,
    message: str,
    coins_per_walker: int,
    segment: dict[str, Any],
    created_by: uuid.UUID,
) -> dict[str, Any]:
    row = (
        await session.execute(
            text(
                "INSERT INTO campaigns (name, message, coins_per_walker, segment, created_by) "
                "VALUES (:name, :message, :coins, CAST(:segment AS jsonb), :by) "
                f"RETURNING {COLUMNS}"
            ),
            {
                "name": name,
                "message": message,
                "coins": coins_per_walker,
                "segment": _json(segment),
                "by": created_by,
            },
        )
    ).mappings()
    return dict(row.one())


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


async def get(
    session: AsyncSession, campaign_id: uuid.UUID, *, for_update: bool = False
) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    row = (
        (
            await session.execute(
                text(f"SELECT {COLUMNS} FROM campaigns WHERE id = :id{lock}"), {"id": campaign_id}
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def list_recent(session: AsyncSession, *, limit: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(f"SELECT {LIST_COLUMNS} FROM campaigns ORDER BY created_at DESC, id LIMIT :limit"),
        {"limit": limit},
    )
    return [dict(r) for r in rows.mappings()]


async def count_segment(session: AsyncSession, segment: dict[str, Any]) -> int:
    where, params = segment_where(segment)
    return int(
        (
            await session.execute(text(f"SELECT count(*) FROM users u WHERE {where}"), params)
        ).scalar_one()
    )


async def sample_segment(
    session: AsyncSession, segment: dict[str, Any], *, limit: int
) -> list[dict[str, Any]]:
    """A few walkers of the segment (by user id: random enough for v4 ids)."""
    where, params = segment_where(segment)
    rows = await session.execute(
        text(
            "SELECT u.id AS user_id, u.full_name, u.email FROM users u "
            f"WHERE {where} ORDER BY u.id LIMIT :limit"
        ),
        {**params, "limit": limit},
    )
    return [dict(r) for r in rows.mappings()]


async def next_walkers(
    session: AsyncSession, segment: dict[str, Any], *, after: uuid.UUID | None, limit: int
) -> list[uuid.UUID]:
    """Up to `limit` walkers of a filter segment after `after`, in user-id order (keyset)."""
    where, params = segment_where(segment)
    if after is not None:
        where += " AND u.id > :after"
        params["after"] = after
    rows = await session.execute(
        text(f"SELECT u.id FROM users u WHERE {where} ORDER BY u.id LIMIT :limit"),
        {**params, "limit": limit},
    )
    return list(rows.scalars())


async def eligible_among(
    session: AsyncSession, segment: dict[str, Any], ids: list[str]
) -> list[uuid.UUID]:
    """The walkers of one chunk of a user-id segment that the segment's rules let in."""
    where, params = segment_where(segment, with_ids=False)
    rows = await session.execute(
        text(
            f"SELECT u.id FROM users u WHERE u.id = ANY(CAST(:chunk AS uuid[])) AND {where} "
            "ORDER BY u.id"
        ),
        {**params, "chunk": ids},
    )
    return list(rows.scalars())


async def update_row(
    session: AsyncSession, table: str, returning: str, row_id: uuid.UUID, fields: dict[str, Any]
) -> dict[str, Any]:
    """Set the given columns of a campaign's or a broadcast's row (table and column names from
    this package's callers only, never from a request); now() for `*_at=True`."""
    sets = []
    params: dict[str, Any] = {"id": row_id}
    for name, value in fields.items():
        if value is True and name.endswith("_at"):
            sets.append(f"{name} = now()")
        else:
            sets.append(f"{name} = :{name}")
            params[name] = value
    row = (
        await session.execute(
            text(f"UPDATE {table} SET {', '.join(sets)} WHERE id = :id RETURNING {returning}"),
            params,
        )
    ).mappings()
    return dict(row.one())


async def update(session: AsyncSession, campaign_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
    """Set the given columns (names from this module's callers only); now() for `*_at=True`."""
    return await update_row(session, "campaigns", COLUMNS, campaign_id, fields)


async def record_chunk(
    session: AsyncSession,
    campaign_id: uuid.UUID,
    *,
    resume_after: uuid.UUID | None,
    walkers: int,
    coins: int,
    done: bool,
) -> None:
    """A chunk's progress, in the transaction of its ledger rows."""
    await session.execute(
        text(
            "UPDATE campaigns SET resume_after = coalesce(CAST(:after AS uuid), resume_after), "
            "walkers_paid = walkers_paid + :walkers, coins_paid = coins_paid + :coins, "
            "status = CASE WHEN :done THEN 'done' ELSE status END, "
            "finished_at = CASE WHEN :done THEN now() ELSE finished_at END "
            "WHERE id = :id"
        ),
        {
            "id": campaign_id,
            "after": resume_after,
            "walkers": walkers,
            "coins": coins,
            "done": done,
        },
    )

"""Broadcast queries: the rows, their progress and cursor (the segment's SQL is the
campaigns' own: `repository.segment_where`)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.campaigns import repository as campaign_repository

COLUMNS = (
    "id, title, body, segment, status, created_by, created_at, approved_by, approved_at, "
    "approved_walkers, run_by, started_at, finished_at, expires_at, walkers_total, "
    "walkers_queued, resume_after, jsonb_array_length(segment -> 'user_ids') AS user_ids_count"
)
LIST_COLUMNS = COLUMNS.replace("segment, status", "segment - 'user_ids' AS segment, status")


async def insert(
    session: AsyncSession, *, title: str, body: str, segment: dict[str, Any], created_by: uuid.UUID
) -> dict[str, Any]:
    row = (
        await session.execute(
            text(
                "INSERT INTO broadcasts (title, body, segment, created_by) "
                f"VALUES (:title, :body, CAST(:segment AS jsonb), :by) RETURNING {COLUMNS}"
            ),
            {
                "title": title,
                "body": body,
                "segment": orjson.dumps(segment).decode(),
                "by": created_by,
            },
        )
    ).mappings()
    return dict(row.one())


async def get(
    session: AsyncSession, broadcast_id: uuid.UUID, *, for_update: bool = False
) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    row = (
        (
            await session.execute(
                text(f"SELECT {COLUMNS} FROM broadcasts WHERE id = :id{lock}"),
                {"id": broadcast_id},
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def list_recent(session: AsyncSession, *, limit: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(f"SELECT {LIST_COLUMNS} FROM broadcasts ORDER BY created_at DESC, id LIMIT :limit"),
        {"limit": limit},
    )
    return [dict(r) for r in rows.mappings()]


async def update(session: AsyncSession, broadcast_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
    """Set the given columns (names from this package's callers only); now() for `*_at=True`."""
    return await campaign_repository.update_row(
        session, "broadcasts", COLUMNS, broadcast_id, fields
    )


async def record_chunk(
    session: AsyncSession,
    broadcast_id: uuid.UUID,
    *,
    resume_after: uuid.UUID | None,
    walkers: int,
    done: bool,
) -> None:
    """A chunk's progress, in the transaction of its notifications."""
    await session.execute(
        text(
            "UPDATE broadcasts SET resume_after = coalesce(CAST(:after AS uuid), resume_after), "
            "walkers_queued = walkers_queued + :walkers, "
            "status = CASE WHEN :done THEN 'done' ELSE status END, "
            "finished_at = CASE WHEN :done THEN now() ELSE finished_at END "
            "WHERE id = :id"
        ),
        {"id": broadcast_id, "after": resume_after, "walkers": walkers, "done": done},
    )

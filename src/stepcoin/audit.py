"""The audit log: one admin_logs row, written in the transaction of the change it records,
and the rows read back (the admin API and the console's audit pages).

Low level: any domain calls it; it imports no domain.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


def insert_statement(
    *,
    admin_id: uuid.UUID | None,
    action: str,
    entity_type: str,
    entity_id: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The INSERT of one admin_logs row and its parameters (names prefixed `audit_`), for a
    caller that writes its change and the row in ONE statement (a data-modifying CTE)."""
    changes: dict[str, Any] = {"before": before, "after": after}
    if extra:
        changes.update(extra)
    return (
        "INSERT INTO admin_logs (admin_id, action, entity_type, entity_id, changes) "
        "VALUES (:audit_admin_id, :audit_action, :audit_entity_type, :audit_entity_id, "
        "CAST(:audit_changes AS jsonb))",
        {
            "audit_admin_id": admin_id,
            "audit_action": action,
            "audit_entity_type": entity_type,
            "audit_entity_id": entity_id,
            "audit_changes": json.dumps(changes, default=str),
        },
    )


async def record(session: AsyncSession, **fields: Any) -> None:
    """One admin_logs row in the caller's transaction; `fields` as insert_statement takes them
    (admin_id, action, entity_type, entity_id, before, after, extra)."""
    statement, params = insert_statement(**fields)
    await session.execute(text(statement), params)


async def list_audit_logs(
    session: AsyncSession,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    admin_id: uuid.UUID | None = None,
    action: str | None = None,
    entity_types: Sequence[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
    after: tuple[datetime, int] | None = None,
) -> list[dict[str, Any]]:
    """Audit rows, newest first, filtered by exact matches; with the acting admin's email.

    The console also narrows by several entity types at once (entity_types) and by time
    (since <= created_at < until).
    """
    filters: dict[str, Any] = {
        "entity_type": entity_type,
        "entity_id": entity_id,
        "admin_id": admin_id,
        "action": action,
    }
    conditions = [f"l.{column} = :{column}" for column, value in filters.items() if value]
    params: dict[str, Any] = {k: v for k, v in filters.items() if v}
    if entity_types:
        conditions.append("l.entity_type = ANY(:entity_types)")
        params["entity_types"] = list(entity_types)
    if since:
        conditions.append("l.created_at >= :since")
        params["since"] = since
    if until:
        conditions.append("l.created_at < :until")
        params["until"] = until
    if after:
        conditions.append("(l.created_at, l.id) < (:after_at, :after_id)")
        params["after_at"], params["after_id"] = after
    params["limit"] = limit
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = await session.execute(
        text(
            f"""
            SELECT l.id, l.admin_id, u.email AS admin_email, l.action, l.entity_type,
                   l.entity_id, l.changes, l.created_at
            FROM admin_logs l LEFT JOIN users u ON u.id = l.admin_id
            {where}
            ORDER BY l.created_at DESC, l.id DESC
            LIMIT :limit
            """
        ),
        params,
    )
    return [dict(row) for row in rows.mappings()]


async def distinct_admins(session: AsyncSession) -> list[dict[str, Any]]:
    """Everyone who appears in the log as the acting admin (staff or since demoted).

    A loose index scan over ix_admin_logs_admin_created: one index probe per distinct admin.
    """
    rows = await session.execute(
        text(
            """
            WITH RECURSIVE ids(admin_id) AS (
                (SELECT admin_id FROM admin_logs WHERE admin_id IS NOT NULL
                 ORDER BY admin_id LIMIT 1)
                UNION ALL
                SELECT (SELECT l.admin_id FROM admin_logs l WHERE l.admin_id > ids.admin_id
                        ORDER BY l.admin_id LIMIT 1)
                FROM ids WHERE ids.admin_id IS NOT NULL
            )
            SELECT u.id, u.email, u.role FROM ids JOIN users u ON u.id = ids.admin_id
            ORDER BY u.email
            """
        )
    )
    return [dict(row) for row in rows.mappings()]


async def distinct_entity_types(session: AsyncSession) -> list[str]:
    """The entity types in the log: a loose index scan over ix_admin_logs_entity."""
    rows = await session.execute(
        text(
            """
            WITH RECURSIVE types(entity_type) AS (
                (SELECT entity_type FROM admin_logs ORDER BY entity_type LIMIT 1)
                UNION ALL
                SELECT (SELECT l.entity_type FROM admin_logs l
                        WHERE l.entity_type > types.entity_type
                        ORDER BY l.entity_type LIMIT 1)
                FROM types WHERE types.entity_type IS NOT NULL
            )
            SELECT entity_type FROM types WHERE entity_type IS NOT NULL
            """
        )
    )
    return [str(row.entity_type) for row in rows]

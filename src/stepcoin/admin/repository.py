"""Reading the audit log; flushes, never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


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

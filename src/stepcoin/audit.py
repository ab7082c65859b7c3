"""The audit log: one admin_logs row, written in the transaction of the change it records.

Low level: any domain calls it; it imports no domain.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def record(
    session: AsyncSession,
    *,
    admin_id: uuid.UUID | None,
    action: str,
    entity_type: str,
    entity_id: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    changes: dict[str, Any] = {"before": before, "after": after}
    if extra:
        changes.update(extra)
    await session.execute(
        text(
            "INSERT INTO admin_logs (admin_id, action, entity_type, entity_id, changes) "
            "VALUES (:admin_id, :action, :entity_type, :entity_id, CAST(:changes AS jsonb))"
        ),
        {
            "admin_id": admin_id,
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "changes": json.dumps(changes, default=str),
        },
    )

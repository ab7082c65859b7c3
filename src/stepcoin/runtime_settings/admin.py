"""Runtime settings as the admin console sees and changes them: listed, validated, audited."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from stepcoin import audit
from stepcoin.errors import InvalidInput, NotFound
from stepcoin.runtime_settings.registry import SPECS, SettingSpec
from stepcoin.runtime_settings.service import runtime_settings


async def list_settings(session: AsyncSession) -> list[dict[str, Any]]:
    """Every known key with its stored value (or the default when none is stored)."""
    rows = await session.execute(text("SELECT key, value, updated_at, updated_by FROM settings"))
    stored = {row.key: row for row in rows}
    return [_describe(spec, stored.get(key)) for key, spec in SPECS.items()]


def _describe(spec: SettingSpec, row: Any) -> dict[str, Any]:
    return {
        "key": spec.key,
        "value": row.value if row is not None else spec.default,
        "default": spec.default,
        "description": spec.description,
        "updated_at": row.updated_at if row is not None else None,
        "updated_by": row.updated_by if row is not None else None,
    }


async def update_setting(
    session: AsyncSession, key: str, value: Any, *, admin_id: uuid.UUID
) -> dict[str, Any]:
    """Validate strictly (type and range), upsert, audit before/after, in one transaction.

    This process's cache is invalidated right after the commit, so its next request sees the
    new value; other processes see it when their cache expires (at most 5 s, CACHE_TTL_SECONDS).
    """
    spec = SPECS.get(key)
    if spec is None:
        raise NotFound(f"There is no setting {key!r}.", code="unknown_setting")
    try:
        canonical = spec.validate(value, strict=True)
    except ValueError as exc:
        raise InvalidInput(str(exc), code="invalid_setting") from exc
    before = (
        await session.execute(
            text("SELECT value FROM settings WHERE key = :key FOR UPDATE"), {"key": key}
        )
    ).scalar_one_or_none()
    if spec.check_change is not None:
        try:
            spec.check_change(before if before is not None else spec.default, canonical)
        except ValueError as exc:
            raise InvalidInput(f"{key}: {exc}", code="invalid_setting") from exc
    row = (
        await session.execute(
            text(
                """
                INSERT INTO settings (key, value, description, updated_at, updated_by)
                VALUES (:key, CAST(:value AS jsonb), :description, now(), :admin_id)
                ON CONFLICT (key) DO UPDATE SET
                    value = EXCLUDED.value, updated_at = EXCLUDED.updated_at,
                    updated_by = EXCLUDED.updated_by
                RETURNING key, value, updated_at, updated_by
                """
            ),
            {
                "key": key,
                "value": json.dumps(canonical),
                "description": spec.description,
                "admin_id": admin_id,
            },
        )
    ).one()
    await audit.record(
        session,
        admin_id=admin_id,
        action="setting.update",
        entity_type="setting",
        entity_id=key,
        before={"value": before},
        after={"value": canonical},
    )
    event.listen(session.sync_session, "after_commit", _invalidate_after_commit, once=True)
    return _describe(spec, row)


def _invalidate_after_commit(_session: Session) -> None:
    runtime_settings.invalidate()

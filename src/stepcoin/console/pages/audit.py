"""Console pages: the audit log, newest first, filterable, with a per-field before/after diff."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit as audit_repository
from stepcoin.console.web import PREFIX, ConsoleUserDep, render, zone
from stepcoin.db import ReadSessionDep
from stepcoin.errors import InvalidInput
from stepcoin.pagination import MAX_CURSOR_LENGTH, bigint_id, decode_cursor, page

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE_SIZE = 50

FilterParam = Annotated[str, Query(max_length=100)]
CursorParam = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]

# Entities that have a console page; a wallet's entity id is its user's id.
ENTITY_PAGES = {
    "user": "/admin/users/{}",
    "wallet": "/admin/users/{}",
    "order": "/admin/orders/{}",
    "setting": "/admin/settings/{}",
    "product": "/admin/products/{}",
    "earn_rule": "/admin/earn-rules#rule-{}",
    "issuance_budget": "/admin/budgets",
}

# Choosing "user" also shows the user's wallet (a wallet's entity id is its user's id), so
# "user + id" lists everything done to one account.
RELATED_TYPES = {"user": ("user", "wallet")}


def compact(value: Any) -> str:
    """A value as the diff shows it: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True, slots=True)
class FieldChange:
    key: str
    old: str | None  # None: the field was absent before
    new: str | None  # None: the field is absent after


def _as_fields(side: Any) -> dict[str, Any]:
    if side is None:
        return {}
    if isinstance(side, dict):
        return side
    return {"value": side}


def diff(changes: Any) -> tuple[list[FieldChange], list[tuple[str, str]]]:
    """The fields whose values differ between `before` and `after`, and the other entries of
    `changes` (reason, note, amount...) as (name, compact value)."""
    if isinstance(changes, str):
        changes = json.loads(changes)
    if not isinstance(changes, dict):
        return [], [("changes", compact(changes))]
    before, after = _as_fields(changes.get("before")), _as_fields(changes.get("after"))
    fields = []
    for key in [*before, *(k for k in after if k not in before)]:
        if key in before and key in after and before[key] == after[key]:
            continue
        fields.append(
            FieldChange(
                key=key,
                old=compact(before[key]) if key in before else None,
                new=compact(after[key]) if key in after else None,
            )
        )
    extra = [(k, compact(v)) for k, v in changes.items() if k not in ("before", "after")]
    return fields, extra


def entity_url(entity_type: str, entity_id: str | None) -> str | None:
    pattern = ENTITY_PAGES.get(entity_type)
    return pattern.format(entity_id) if pattern and entity_id else None


def audit_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit rows ready for the template: the diff, the extras and the entity's link."""
    out = []
    for row in rows:
        fields, extra = diff(row["changes"])
        out.append(
            {
                **row,
                "fields": fields,
                "extra": extra,
                "entity_url": entity_url(row["entity_type"], row["entity_id"]),
            }
        )
    return out


async def entity_history(
    session: AsyncSession, entity_type: str, entity_id: str, *, limit: int = 20
) -> list[dict[str, Any]]:
    """The newest audit rows of one entity (a product, an order), ready for `changes(row)`."""
    rows = await audit_repository.list_audit_logs(
        session, entity_type=entity_type, entity_id=entity_id, limit=limit
    )
    return audit_rows([dict(r) for r in rows])


def _parse_date(raw: str, label: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidInput(f"{label} must be a date (YYYY-MM-DD).", code="invalid_date") from exc


def _parse_admin(raw: str) -> uuid.UUID | None:
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise InvalidInput("Unknown admin.", code="invalid_admin") from exc


@router.get("/audit")
async def audit_log(
    request: Request,
    user: ConsoleUserDep,
    session: ReadSessionDep,
    admin: FilterParam = "",
    entity_type: FilterParam = "",
    entity_id: FilterParam = "",
    action: FilterParam = "",
    from_: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: Annotated[str, Query(max_length=10)] = "",
    cursor: CursorParam = None,
) -> Response:
    """Every admin action newest first; filters are exact matches, dates are whole days in
    the admin's timezone (from and to included)."""
    filters = {
        "admin": admin.strip(),
        "entity_type": entity_type.strip(),
        "entity_id": entity_id.strip(),
        "action": action.strip(),
        "from": from_.strip(),
        "to": to.strip(),
    }
    error = None
    rows: list[dict[str, Any]] = []
    next_cursor = None
    try:
        admin_id = _parse_admin(filters["admin"])
        tz = zone(user.timezone)
        first = _parse_date(filters["from"], "From")
        last = _parse_date(filters["to"], "To")
        since = datetime.combine(first, time(0), tzinfo=tz) if first else None
        until = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz) if last else None
        after = decode_cursor(cursor, bigint_id) if cursor else None
        chosen_type = filters["entity_type"]
        found = await audit_repository.list_audit_logs(
            session,
            entity_type=None if chosen_type in RELATED_TYPES else chosen_type or None,
            entity_types=RELATED_TYPES.get(chosen_type),
            entity_id=filters["entity_id"] or None,
            admin_id=admin_id,
            action=filters["action"] or None,
            since=since,
            until=until,
            limit=PAGE_SIZE + 1,
            after=after,
        )
        result = page(found, PAGE_SIZE)
        rows, next_cursor = audit_rows(result["items"]), result["next_cursor"]
    except InvalidInput as exc:
        error = exc.detail
    return render(
        request,
        user,
        "audit.html",
        {
            "rows": rows,
            "next_cursor": next_cursor,
            "filters": filters,
            "error": error,
            "admins": await audit_repository.distinct_admins(session),
            "entity_types": await audit_repository.distinct_entity_types(session),
        },
        status=422 if error else 200,
        section="audit",
    )

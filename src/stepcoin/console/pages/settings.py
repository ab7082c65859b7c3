"""Console pages: runtime settings (support reads, admins change them) and each one's history.

A change goes through runtime_settings.admin.update_setting, exactly as PUT
/v1/admin/settings/{key}: strict validation against the key's type and range, the upsert and
the audit row in one transaction.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit as audit_repository
from stepcoin.console.pages.audit import audit_rows, compact
from stepcoin.console.web import PREFIX, AdminFormDep, ConsoleUserDep, perform, render
from stepcoin.db import ReadSessionDep
from stepcoin.errors import InvalidInput, NotFound
from stepcoin.pagination import MAX_CURSOR_LENGTH, bigint_id, decode_cursor, page
from stepcoin.runtime_settings import admin as settings_admin
from stepcoin.runtime_settings.registry import SPECS, SettingSpec
from stepcoin.users import repository as users_repository

router = APIRouter(prefix=PREFIX, include_in_schema=False)

HISTORY_PAGE = 25
INTEGER_RE = re.compile(r"^[+-]?\d{1,18}$")
NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
GROUPS = {
    "anticheat": "Anti-cheat",
    "auth": "Sign-in",
    "shop": "Shop",
    "steps": "Steps",
    "leaderboards": "Leaderboards",
    "economy": "Economy",
    "console": "Console",
    "backup": "Backups",
    "referrals": "Referrals",
}

CursorParam = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]


def _figure(value: float) -> str:
    return f"{value:,}".replace(",", "\u202f")


def field_of(spec: SettingSpec) -> dict[str, Any]:
    """How the key is edited, from its pydantic JSON schema: the input kind and its limits."""
    schema = spec.adapter.json_schema()
    if "enum" in schema:
        return {"kind": "enum", "options": [str(v) for v in schema["enum"]], "range": ""}
    kind = {"integer": "integer", "number": "number", "boolean": "boolean", "object": "json"}.get(
        str(schema.get("type")), "text"
    )
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    parts = []
    if low is not None:
        parts.append(f"{'>' if 'exclusiveMinimum' in schema else '≥'} {_figure(low)}")
    if high is not None:
        parts.append(f"{'<' if 'exclusiveMaximum' in schema else '≤'} {_figure(high)}")
    return {
        "kind": kind,
        "min": schema.get("minimum"),  # HTML min/max are inclusive: exclusive bounds omitted
        "max": schema.get("maximum"),
        "range": ", ".join(parts),
    }


def parse_value(spec: SettingSpec, raw: str, checked: bool) -> Any:
    """The form's text as the JSON type the key's schema wants; update_setting then validates
    strictly (range, enum). Anything unparseable is an InvalidInput, flashed as an error."""
    schema = spec.adapter.json_schema()
    kind = schema.get("type")
    if "enum" in schema or kind == "string":
        return raw
    if kind == "boolean":
        return checked
    if kind == "integer":
        if not INTEGER_RE.fullmatch(raw):
            raise InvalidInput(f"{spec.key} must be a whole number.", code="invalid_setting")
        return int(raw)
    if kind == "number":
        value = float(raw) if NUMBER_RE.fullmatch(raw) else math.nan
        if not math.isfinite(value):
            raise InvalidInput(f"{spec.key} must be a number.", code="invalid_setting")
        return value
    if kind == "object":
        try:
            return json.loads(raw)
        except ValueError:
            raise InvalidInput(
                f"{spec.key} must be a JSON object.", code="invalid_setting"
            ) from None
    return raw


def _spec(key: str) -> SettingSpec:
    spec = SPECS.get(key)
    if spec is None:
        raise NotFound(f"There is no setting {key!r}.", code="unknown_setting")
    return spec


async def _described(session: AsyncSession) -> list[dict[str, Any]]:
    """list_settings with the editor of each key and its form field."""
    items = await settings_admin.list_settings(session)
    emails = await users_repository.emails_by_id(
        session, {i["updated_by"] for i in items if i["updated_by"]}
    )
    return [
        {
            **item,
            "group": item["key"].split(".", 1)[0],
            "updated_by_email": emails.get(item["updated_by"]) if item["updated_by"] else None,
            "shown": compact(item["value"]),
            "default_shown": compact(item["default"]),
            "field": field_of(SPECS[item["key"]]),
        }
        for item in items
    ]


@router.get("/settings")
async def settings_list(
    request: Request, user: ConsoleUserDep, session: ReadSessionDep
) -> Response:
    """Every key grouped by prefix, with meaning, value, default, last change and a form."""
    items = await _described(session)
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        groups.setdefault(item["group"], []).append(item)
    order = [g for g in GROUPS if g in groups] + [g for g in groups if g not in GROUPS]
    ordered = [(g, GROUPS.get(g, g.title()), groups[g]) for g in order]
    return render(request, user, "settings.html", {"groups": ordered}, section="settings")


@router.get("/settings/{key}")
async def setting_detail(
    request: Request,
    key: str,
    user: ConsoleUserDep,
    session: ReadSessionDep,
    cursor: CursorParam = None,
) -> Response:
    """One key with its form and its change history (admin_logs for entity 'setting')."""
    _spec(key)
    item = next(i for i in await _described(session) if i["key"] == key)
    found = await audit_repository.list_audit_logs(
        session,
        entity_type="setting",
        entity_id=key,
        limit=HISTORY_PAGE + 1,
        after=decode_cursor(cursor, bigint_id) if cursor else None,
    )
    history = page(found, HISTORY_PAGE)
    return render(
        request,
        user,
        "settings_detail.html",
        {
            "item": item,
            "group_title": GROUPS.get(item["group"], item["group"]),
            "history": audit_rows(history["items"]),
            "next_cursor": history["next_cursor"],
        },
        section="settings",
    )


@router.post("/settings/{key}")
async def setting_update(request: Request, key: str, form: AdminFormDep) -> Response:
    """Change one key (admins only); a bad value is flashed and nothing changes."""
    spec = SPECS.get(key)
    back = f"{PREFIX}/settings"
    if spec is not None and form.get("return_to") == "detail":
        back = f"{PREFIX}/settings/{key}"

    async def action(session: AsyncSession) -> str:
        the_spec = _spec(key)
        raw = form.get("value")
        checked = "true" in form.getlist("value")
        value = parse_value(the_spec, raw, checked)
        saved = await settings_admin.update_setting(session, key, value, admin_id=form.user.id)
        return f"{key} is now {compact(saved['value'])}."

    return await perform(request, action, back=back)

"""Console pages: the achievements catalogue, and the admins' form to create and edit them.

The form is checked by the API's own bodies (AchievementCreate / AchievementUpdate, whose
`unlock_criteria` is the criteria parser's tagged union), so the console refuses exactly what
the API refuses, with the parser's message; a refused form is shown again with the admin's
input. Saving goes through achievements.service.create / update (audited there, admins only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from stepcoin.achievements import repository, service
from stepcoin.achievements.criteria import Criteria
from stepcoin.achievements.schemas import MAX_REWARD_COINS, AchievementCreate, AchievementUpdate
from stepcoin.console.sessions import ConsoleUser
from stepcoin.console.web import (
    PREFIX,
    AdminFormDep,
    ConsoleAdminDep,
    ConsoleUserDep,
    redirect,
    render,
)
from stepcoin.db import ReadSessionDep, session_scope
from stepcoin.errors import AppError, NotFound

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@dataclass(frozen=True, slots=True)
class CriteriaField:
    name: str
    description: str
    low: int | None
    high: int | None


@dataclass(frozen=True, slots=True)
class CriteriaKind:
    kind: str
    help: str
    fields: tuple[CriteriaField, ...]


def _kinds() -> tuple[CriteriaKind, ...]:
    """Every kind the criteria parser accepts, with its fields and bounds (read off the models,
    so a new kind shows up in the form and its help without touching the console)."""
    models: tuple[type[BaseModel], ...] = get_args(get_args(Criteria)[0])
    kinds = []
    for model in models:
        fields = []
        for name, info in model.model_fields.items():
            if name == "kind":
                continue
            low = next((m.ge for m in info.metadata if hasattr(m, "ge")), None)
            high = next((m.le for m in info.metadata if hasattr(m, "le")), None)
            fields.append(CriteriaField(name, info.description or "", low, high))
        kind = get_args(model.model_fields["kind"].annotation)[0]
        kinds.append(CriteriaKind(kind, " ".join((model.__doc__ or "").split()), tuple(fields)))
    return tuple(kinds)


KINDS = _kinds()
KIND_FIELDS = {k.kind: tuple(f.name for f in k.fields) for k in KINDS}
# Every criteria field once, with the kinds that use it (the form shows each input once).
CRITERIA_FIELDS: dict[str, list[str]] = {}
for _kind in KINDS:
    for _field in _kind.fields:
        CRITERIA_FIELDS.setdefault(_field.name, []).append(_kind.kind)
TEXT_FIELDS = ("code", "name", "description", "reward_coins", "kind")
INTEGER = re.compile(r"-?[0-9]{1,20}")


def _achievement_id(raw: str) -> int:
    if raw.isdigit() and 0 < int(raw) < 2**63:
        return int(raw)
    raise NotFound("No such achievement.", code="achievement_not_found")


def _number(raw: str) -> int | str:
    """A whole number as int; anything else stays text so the schema names the problem."""
    cleaned = raw.replace(",", "").replace("\u202f", "").replace(" ", "")
    return int(cleaned) if INTEGER.fullmatch(cleaned) else raw


def values_of_row(row: dict[str, Any]) -> dict[str, Any]:
    """A stored achievement as the form's values (text fields, the active flag)."""
    criteria = row["unlock_criteria"] if isinstance(row["unlock_criteria"], dict) else {}
    values: dict[str, Any] = {
        "code": row["code"],
        "name": row["name"],
        "description": row["description"] or "",
        "reward_coins": str(row["reward_coins"]),
        "is_active": bool(row["is_active"]),
        "kind": str(criteria.get("kind", "")),
    }
    for name in CRITERIA_FIELDS:
        values[name] = "" if criteria.get(name) is None else str(criteria[name])
    return values


def payload_of(values: dict[str, Any]) -> dict[str, Any]:
    """The API body the form's values stand for; a kind's unused inputs are left out."""
    kind = values["kind"]
    criteria: dict[str, Any] = {"kind": kind}
    for name in KIND_FIELDS.get(kind, ()):
        if values.get(name, "") != "":
            criteria[name] = _number(values[name])
    return {
        "name": values["name"],
        "description": values["description"] or None,
        "unlock_criteria": criteria,
        "reward_coins": _number(values["reward_coins"]),
        "is_active": bool(values["is_active"]),
    }


def explain(exc: ValidationError, kind: str) -> str:
    """The schema's (and criteria parser's) messages, one per problem, fields named plainly."""
    parts = []
    for error in exc.errors(include_url=False):
        loc = [str(p) for p in error["loc"]]
        if loc[:1] == ["unlock_criteria"]:  # (unlock_criteria, <kind>, field) -> criteria.field
            loc = ["criteria", *loc[2 if loc[1:2] == [kind] else 1 :]]
        parts.append(f"{'.'.join(loc)}: {error['msg']}" if loc else str(error["msg"]))
    return "; ".join(parts)


def summary(criteria: Any) -> str:
    """A short line for the list, e.g. `streak: streak_days 7, min_steps 10,000`."""
    if not isinstance(criteria, dict):
        return str(criteria)
    kind = str(criteria.get("kind", "?"))
    names = [
        *KIND_FIELDS.get(kind, ()),
        *(k for k in criteria if k not in KIND_FIELDS.get(kind, ())),
    ]
    rest = ", ".join(
        f"{k} {criteria[k]:,}" if isinstance(criteria[k], int) else f"{k} {criteria[k]}"
        for k in names
        if k != "kind" and k in criteria
    )
    return f"{kind}: {rest}" if rest else kind


def _form_page(
    request: Request,
    user: ConsoleUser,
    *,
    values: dict[str, Any],
    achievement: dict[str, Any] | None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        user,
        "achievements_form.html",
        {
            "values": values,
            "achievement": achievement,
            "error": error,
            "kinds": KINDS,
            "criteria_fields": CRITERIA_FIELDS,
            "max_reward": MAX_REWARD_COINS,
        },
        status=status,
        section="achievements",
    )


def _posted_values(form: Any) -> dict[str, Any]:
    values: dict[str, Any] = {name: form.get(name) for name in (*TEXT_FIELDS, *CRITERIA_FIELDS)}
    values["is_active"] = form.get("is_active") == "1"
    return values


@router.get("/achievements")
async def achievements(request: Request, user: ConsoleUserDep, session: ReadSessionDep) -> Response:
    """Every achievement, active or not, with its criteria, reward and unlock count."""
    rows = await repository.list_all(session)
    for row in rows:
        row["summary"] = summary(row["unlock_criteria"])
    return render(
        request, user, "achievements.html", {"achievements": rows}, section="achievements"
    )


@router.get("/achievements/new")
async def new_achievement(request: Request, user: ConsoleAdminDep) -> Response:
    """An empty form (admins only)."""
    values: dict[str, Any] = {name: "" for name in (*TEXT_FIELDS, *CRITERIA_FIELDS)}
    values.update(reward_coins="0", is_active=True, kind=KINDS[0].kind)
    return _form_page(request, user, values=values, achievement=None)


@router.post("/achievements")
async def create_achievement(request: Request, form: AdminFormDep) -> Response:
    """Create through service.create (audited; active ones queue a backfill for existing users)."""
    values = _posted_values(form)
    try:
        body = AchievementCreate.model_validate({**payload_of(values), "code": values["code"]})
    except ValidationError as exc:
        return _form_page(
            request,
            form.user,
            values=values,
            achievement=None,
            error=explain(exc, values["kind"]),
            status=422,
        )
    data = body.model_dump()
    data["unlock_criteria"] = body.unlock_criteria.model_dump()
    try:
        async with session_scope(request.app.state.database) as session:
            row = await service.create(session, data, admin_id=form.user.id)
    except AppError as exc:
        return _form_page(
            request, form.user, values=values, achievement=None, error=exc.detail, status=exc.status
        )
    message = f"Achievement {row['code']} created."
    if row["is_active"]:
        message += " Existing walkers who already meet it are unlocked in the background."
    return redirect(request, f"{PREFIX}/achievements/{row['id']}", flash=("ok", message))


@router.get("/achievements/{achievement_id}")
async def achievement(
    request: Request, achievement_id: str, user: ConsoleUserDep, session: ReadSessionDep
) -> Response:
    """One achievement in its form (read-only for support)."""
    row = await repository.get(session, _achievement_id(achievement_id))
    if row is None:
        raise NotFound("No such achievement.", code="achievement_not_found")
    return _form_page(request, user, values=values_of_row(row), achievement=row)


@router.post("/achievements/{achievement_id}")
async def update_achievement(request: Request, achievement_id: str, form: AdminFormDep) -> Response:
    """Save through service.update (audited with before and after; the code never changes)."""
    key = _achievement_id(achievement_id)
    database = request.app.state.database
    async with session_scope(database) as session:
        current = await repository.get(session, key)
    if current is None:
        raise NotFound("No such achievement.", code="achievement_not_found")
    values = _posted_values(form)
    values["code"] = current["code"]
    try:
        body = AchievementUpdate.model_validate(payload_of(values))
    except ValidationError as exc:
        return _form_page(
            request,
            form.user,
            values=values,
            achievement=current,
            error=explain(exc, values["kind"]),
            status=422,
        )
    changes = body.model_dump(exclude_unset=True)
    if body.unlock_criteria is not None:
        changes["unlock_criteria"] = body.unlock_criteria.model_dump()
    try:
        async with session_scope(database) as session:
            row = await service.update(session, key, changes, admin_id=form.user.id)
    except AppError as exc:
        return _form_page(
            request,
            form.user,
            values=values,
            achievement=current,
            error=exc.detail,
            status=exc.status,
        )
    return redirect(
        request, f"{PREFIX}/achievements/{key}", flash=("ok", f"Achievement {row['code']} saved.")
    )

"""Console page: the earn rules (what a step day is worth), their preview, and new rules.

Reading and previewing are for all staff; announcing and withdrawing a rule are for admins.
The page calls the same service as /v1/admin/earn-rules (steps.earn_rules: the checks, the
insert and the audit row in one transaction). A rule is announced from the preview of its
numbers: the admin sees what it would have paid over the last 30 days before choosing its day.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit as audit_repository
from stepcoin.console.pages.audit import audit_rows
from stepcoin.console.web import PREFIX, AdminFormDep, ConsoleUserDep, perform, render
from stepcoin.db import ReadSessionDep
from stepcoin.errors import AppError, InvalidInput
from stepcoin.steps import earn_rules
from stepcoin.validation import Int64

router = APIRouter(prefix=PREFIX, include_in_schema=False)

HISTORY = 25
WHOLE = re.compile(r"^\s*[0-9]{1,9}\s*$")
FieldParam = Annotated[str | None, Query(max_length=20)]
LABELS = {
    "coins_per_1000_steps": "Coins per 1,000 steps",
    "daily_step_cap": "Daily step cap",
    "daily_coin_cap": "Daily coin cap",
}


def _whole(raw: str | None, name: str, *, optional: bool = False) -> int | None:
    """A form's whole number; empty is None where the field may be empty (no step cap)."""
    text = (raw or "").strip()
    if not text and optional:
        return None
    if not WHOLE.fullmatch(text):
        raise InvalidInput(f"{LABELS[name]} must be a whole number.", code="invalid_earn_rule")
    return int(text)


def _numbers(rate: str | None, step_cap: str | None, coin_cap: str | None) -> dict[str, Any]:
    return {
        "coins_per_1000_steps": _whole(rate, "coins_per_1000_steps"),
        "daily_step_cap": _whole(step_cap, "daily_step_cap", optional=True),
        "daily_coin_cap": _whole(coin_cap, "daily_coin_cap"),
    }


def describe(rule: dict[str, Any]) -> str:
    steps = rule["daily_step_cap"]
    return (
        f"{rule['coins_per_1000_steps']} coins per 1,000 steps, "
        f"{'no step cap' if steps is None else f'steps up to {steps:,}'}, "
        f"at most {rule['daily_coin_cap']:,} coins a day"
    )


@router.get("/earn-rules")
async def earn_rules_page(
    request: Request,
    user: ConsoleUserDep,
    session: ReadSessionDep,
    coins_per_1000_steps: FieldParam = None,
    daily_step_cap: FieldParam = None,
    daily_coin_cap: FieldParam = None,
) -> Response:
    """Every rule with its days and state, the preview of proposed numbers, and the history."""
    listed = await earn_rules.list_rules(session)
    in_force = next((r for r in listed["items"] if r["status"] == "in_force"), None)
    proposed = {
        "coins_per_1000_steps": coins_per_1000_steps,
        "daily_step_cap": daily_step_cap,
        "daily_coin_cap": daily_coin_cap,
    }
    preview, error = None, None
    if coins_per_1000_steps is not None or daily_coin_cap is not None:
        try:
            numbers = _numbers(coins_per_1000_steps, daily_step_cap, daily_coin_cap)
            preview = await earn_rules.preview(session, **numbers)
        except AppError as exc:
            error = exc.detail
    elif in_force is not None:  # the form starts from the rule in force
        proposed = {
            key: "" if in_force[key] is None else str(in_force[key])
            for key in ("coins_per_1000_steps", "daily_step_cap", "daily_coin_cap")
        }
    history = await audit_repository.list_audit_logs(
        session, entity_type="earn_rule", limit=HISTORY
    )
    return render(
        request,
        user,
        "earn_rules.html",
        {
            "rules": listed["items"],
            "earliest": listed["earliest_effective_from"],
            "in_force": in_force,
            "proposed": proposed,
            "preview": preview,
            "preview_error": error,
            "describe": describe,
            "history": audit_rows(history),
        },
        section="earn_rules",
    )


@router.post("/earn-rules")
async def earn_rule_create(request: Request, form: AdminFormDep) -> Response:
    """Announce the previewed rule from the chosen day (admins only); refusals are flashed."""

    async def action(session: AsyncSession) -> str:
        numbers = _numbers(
            form.get("coins_per_1000_steps"),
            form.get("daily_step_cap"),
            form.get("daily_coin_cap"),
        )
        try:
            day = date.fromisoformat((form.get("effective_from") or "").strip())
        except ValueError as exc:
            raise InvalidInput(
                "The first day must be a date (YYYY-MM-DD).", code="invalid_earn_rule"
            ) from exc
        rule = await earn_rules.create_rule(
            session, effective_from=day, admin_id=form.user.id, **numbers
        )
        return f"Announced from {day.isoformat()}: {describe(rule)}."

    return await perform(request, action, back=f"{PREFIX}/earn-rules")


@router.post("/earn-rules/{rule_id}/withdraw")
async def earn_rule_withdraw(request: Request, rule_id: Int64, form: AdminFormDep) -> Response:
    """Withdraw an announced rule before its day begins (admins only)."""

    async def action(session: AsyncSession) -> str:
        rule = await earn_rules.withdraw_rule(session, rule_id, admin_id=form.user.id)
        return f"The rule from {rule['effective_from'].isoformat()} is withdrawn."

    return await perform(request, action, back=f"{PREFIX}/earn-rules")

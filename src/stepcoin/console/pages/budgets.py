"""Console page: issuance budgets (issue 15, items 2 and 6): each source's caps per period,
this period's use, the rewards held at the cap; admins set and remove caps.

The page calls the same service as /v1/admin/economy/budgets (stepcoin.wallet.budgets: the
change and its audit row in one transaction)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit as audit_repository
from stepcoin.console.pages.audit import audit_rows
from stepcoin.console.web import PREFIX, AdminFormDep, ConsoleUserDep, perform, render
from stepcoin.db import ReadSessionDep
from stepcoin.errors import InvalidInput
from stepcoin.wallet import budgets
from stepcoin.wallet.models import BUDGET_PERIODS, BUDGET_SOURCES

router = APIRouter(prefix=PREFIX, include_in_schema=False)

HISTORY = 25
WHOLE = re.compile(r"^\s*[0-9]{1,15}\s*$")


def _whole(raw: str | None, label: str) -> int:
    text = (raw or "").replace(",", "").strip()
    if not WHOLE.fullmatch(text):
        raise InvalidInput(f"{label} must be a whole number.", code="invalid_budget")
    return int(text)


@router.get("/budgets")
async def budgets_page(request: Request, user: ConsoleUserDep, session: ReadSessionDep) -> Response:
    """Every budget with this period's use and its held rewards, the form, the history."""
    history = await audit_repository.list_audit_logs(
        session, entity_type="issuance_budget", limit=HISTORY
    )
    return render(
        request,
        user,
        "budgets.html",
        {
            "budgets": await budgets.overview(session),
            "sources": BUDGET_SOURCES,
            "periods": BUDGET_PERIODS,
            "history": audit_rows(history),
        },
        section="budgets",
    )


@router.post("/budgets")
async def budget_set(request: Request, form: AdminFormDep) -> Response:
    """Set a source's cap for a period (admins only); refusals are flashed."""

    async def action(session: AsyncSession) -> str:
        source, period = form.get("source") or "", form.get("period") or ""
        cap = _whole(form.get("cap_coins"), "The cap")
        alert = _whole(form.get("alert_percent") or "80", "The alert percentage")
        await budgets.set_budget(
            session,
            source=source,
            period=period,
            cap_coins=cap,
            alert_percent=alert,
            admin_id=form.user.id,
        )
        return f"The {period} budget of {source} is {cap:,} coins (alert at {alert} %)."

    return await perform(request, action, back=f"{PREFIX}/budgets")


@router.post("/budgets/{source}/{period}/remove")
async def budget_remove(request: Request, source: str, period: str, form: AdminFormDep) -> Response:
    """Remove a budget (admins only): its held rewards are paid by the next release."""

    async def action(session: AsyncSession) -> str:
        await budgets.remove_budget(session, source=source, period=period, admin_id=form.user.id)
        return f"The {period} budget of {source} is removed."

    return await perform(request, action, back=f"{PREFIX}/budgets")

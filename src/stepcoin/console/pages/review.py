"""Console pages: the review queue of flagged step records (admins and support)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.console.web import PREFIX, ConsoleUserDep, CsrfFormDep, perform, render
from stepcoin.db import ReadSessionDep
from stepcoin.errors import AppError, InvalidInput
from stepcoin.pagination import MAX_CURSOR_LENGTH
from stepcoin.steps import review

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE_SIZE = 25
DECISIONS: dict[str, Literal["approved", "rejected"]] = {
    "approve": "approved",
    "reject": "rejected",
}

CursorParam = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]


def chart_points(item: dict[str, Any]) -> list[tuple[str, int]]:
    """The 28 days before the record (credited steps, 0 when none) and the record's own day."""
    day: date = item["date"]
    credited = {h["date"]: int(h["credited_steps"] or 0) for h in item["history"]}
    points = []
    for back in range(review.HISTORY_DAYS, 0, -1):
        past = day - timedelta(days=back)
        points.append((past.isoformat(), credited.get(past, 0)))
    points.append((day.isoformat(), int(item["steps"])))
    return points


@router.get("/review")
async def review_queue(
    request: Request,
    user: ConsoleUserDep,
    session: ReadSessionDep,
    cursor: CursorParam = None,
) -> Response:
    """Flagged records, oldest first, with hits, the walker's last 28 days and the day's sources."""
    result = await review.list_validations(
        session, status="flagged", limit=PAGE_SIZE, cursor=cursor
    )
    items = [{**item, "chart": chart_points(item)} for item in result["items"]]
    return render(
        request,
        user,
        "review.html",
        {
            "items": items,
            "next_cursor": result["next_cursor"],
            "cursor": cursor or "",
            "summary": await review.queue_summary(session),
        },
        section="review",
    )


def _parse_ids(raw: list[str]) -> list[int]:
    """The form's record ids as numbers; the count limits are review.decide_many's."""
    ids: list[int] = []
    for value in raw:
        value = value.strip()
        if not value.isascii() or not value.isdigit() or not 0 < int(value) < 2**63:
            raise InvalidInput(f"{value!r} is not a record id.", code="invalid_ids")
        ids.append(int(value))
    return ids


@router.post("/review/decide")
async def decide(request: Request, form: CsrfFormDep) -> Response:
    """Approve or reject one or many records in ONE transaction: all of them or none."""
    cursor = form.get("cursor")[:MAX_CURSOR_LENGTH]
    back = f"{PREFIX}/review" + (f"?{urlencode({'cursor': cursor})}" if cursor else "")

    async def action(session: AsyncSession) -> str:
        decision = DECISIONS.get(form.get("decision"))
        if decision is None:
            raise InvalidInput("Choose approve or reject.", code="invalid_decision")
        ids = _parse_ids(form.getlist("ids"))
        # A note is optional for both decisions, exactly as in the API (the form asks for one
        # before a rejection, but the rule lives in review.decide_many).
        try:
            decided = await review.decide_many(
                session,
                validation_ids=ids,
                reviewer_id=form.user.id,
                decision=decision,
                note=form.get("note") or None,
            )
        except AppError as exc:
            exc.detail = f"{exc.detail} Nothing was changed."
            raise
        ids = [item["id"] for item in decided]
        verb = "Approved" if decision == "approved" else "Rejected"
        return f"{verb} {len(ids)} record{'' if len(ids) == 1 else 's'}."

    return await perform(request, action, back=back)

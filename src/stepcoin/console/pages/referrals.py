"""Console page: the referral review queue (admins and support), with a status filter.

The page calls the same service as /v1/admin/referrals (stepcoin.referrals.service.decide: the
decision and its audit row in one transaction; never a reviewer's own referral)."""

from __future__ import annotations

from typing import Annotated, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.console.web import PREFIX, ConsoleUserDep, CsrfFormDep, perform, render
from stepcoin.db import ReadSessionDep
from stepcoin.errors import InvalidInput
from stepcoin.pagination import MAX_CURSOR_LENGTH
from stepcoin.referrals import service
from stepcoin.referrals.schemas import Status

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE_SIZE = 25
STATUSES: tuple[str, ...] = get_args(Status)
CursorParam = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]
StatusParam = Annotated[str, Query(max_length=16)]


def _status(raw: str) -> str | None:
    """The filter: a status, or `all`; anything else is the review queue."""
    if raw == "all":
        return None
    return raw if raw in STATUSES else "review"


@router.get("/referrals")
async def referrals_page(
    request: Request,
    user: ConsoleUserDep,
    session: ReadSessionDep,
    status: StatusParam = "review",
    cursor: CursorParam = None,
) -> Response:
    """Referrals of a status (the review queue first), oldest claim first, with their reasons."""
    chosen = _status(status)
    result = await service.admin_list(session, status=chosen, limit=PAGE_SIZE, cursor=cursor)
    return render(
        request,
        user,
        "referrals.html",
        {
            "items": result["items"],
            "next_cursor": result["next_cursor"],
            "status": chosen or "all",
            "statuses": STATUSES,
            "counts": await service.status_counts(session),
        },
        section="referrals",
    )


def _referral_id(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) < 2**63:
        raise InvalidInput(f"{raw!r} is not a referral id.", code="invalid_ids")
    return int(raw)


@router.post("/referrals/{referral_id}/decide")
async def decide(request: Request, referral_id: str, form: CsrfFormDep) -> Response:
    """Approve or reject one referral in review (a note is shown to the referrer)."""
    status = form.get("status") or "review"
    back = f"{PREFIX}/referrals?{urlencode({'status': status})}"

    async def action(session: AsyncSession) -> str:
        decision = form.get("decision")
        if decision not in ("approve", "reject"):
            raise InvalidInput("Choose approve or reject.", code="invalid_decision")
        item = await service.decide(
            session,
            _referral_id(referral_id),
            reviewer_id=form.user.id,
            approve=decision == "approve",
            note=form.get("note") or None,
        )
        verb = "Approved" if decision == "approve" else "Rejected"
        return f"{verb} referral {item['id']}: it is {item['status']} now."

    return await perform(request, action, back=back)

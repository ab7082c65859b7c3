"""Console pages: challenges (list by status; one challenge with its participants, escrow and
payouts; cancel). They call the same service as /v1/admin/challenges (stepcoin.challenges:
the cancel refunds every fee and writes its audit row in one transaction)."""

from __future__ import annotations

import uuid
from typing import Annotated, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.challenges import service
from stepcoin.challenges.schemas import Status
from stepcoin.console.web import PREFIX, AdminFormDep, ConsoleUserDep, perform, render
from stepcoin.db import ReadSessionDep
from stepcoin.errors import NotFound

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE_SIZE = 100
STATUSES: tuple[str, ...] = get_args(Status)
StatusParam = Annotated[str, Query(max_length=16)]


def _challenge_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("No such challenge.", code="challenge_not_found") from None


@router.get("/challenges")
async def challenges_page(
    request: Request, user: ConsoleUserDep, session: ReadSessionDep, status: StatusParam = "all"
) -> Response:
    """Challenges of a status (all by default), newest first, with participants and escrow."""
    chosen = status if status in STATUSES else None
    result = await service.admin_list(session, status=chosen, limit=PAGE_SIZE)
    return render(
        request,
        user,
        "challenges.html",
        {
            "items": result["items"],
            "counts": result["counts"],
            "status": chosen or "all",
            "statuses": STATUSES,
        },
        section="challenges",
    )


@router.get("/challenges/{challenge_id}")
async def challenge_page(
    request: Request, challenge_id: str, user: ConsoleUserDep, session: ReadSessionDep
) -> Response:
    """One challenge: its settings, participants (fee held, team, rank, payout) and escrow."""
    row = await service.admin_detail(session, _challenge_id(challenge_id))
    return render(request, user, "challenges_detail.html", {"c": row}, section="challenges")


@router.post("/challenges/{challenge_id}/cancel")
async def cancel_challenge(request: Request, challenge_id: str, form: AdminFormDep) -> Response:
    """Cancel before settlement: every entry fee goes back (audited)."""
    key = _challenge_id(challenge_id)

    async def action(session: AsyncSession) -> str:
        await service.cancel(
            session,
            service.Caller(id=form.user.id, role=form.user.role),
            key,
            reason=form.get("reason") or None,
            as_admin=True,
        )
        return "Cancelled: every entry fee went back."

    return await perform(request, action, back=f"{PREFIX}/challenges/{key}")

"""Steps: the phone's sync, the user's own days, and the admins' review queue."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stepcoin.auth.dependencies import STAFF_ROLES, ClaimsDep, CurrentUser, require_roles
from stepcoin.db import Database, ReadSessionDep, SessionDep, SessionDriver, get_database
from stepcoin.ratelimit import LimitedRoute
from stepcoin.steps import appeals, review, service
from stepcoin.steps.schemas import (
    AppealIn,
    AppealOut,
    StepListOut,
    StepSyncIn,
    StepSyncOut,
)
from stepcoin.validation import CalendarDay, Int64

router = APIRouter(tags=["steps"])
admin_router = APIRouter(prefix="/v1/admin/validations", tags=["admin: review queue"])
Reviewer = Annotated[CurrentUser, Depends(require_roles(*STAFF_ROLES))]  # as steps.hot checks
# counted before the route or its fast path runs (stepcoin.ratelimit; main.py applies them)
LIMITED = (
    LimitedRoute("POST", "/v1/steps", "sync"),
    LimitedRoute("POST", "/v1/steps/{date}/appeal", "appeals"),
)


@router.post("/v1/steps", response_model=StepSyncOut)
async def sync_steps(
    body: StepSyncIn,
    claims: ClaimsDep,
    database: Annotated[Database, Depends(get_database)],
) -> Any:
    """Sync up to 500 daily records; each is judged and paid (or held, or refused) at once."""
    results = await service.sync_steps(database, claims.user_id, body.records)
    return Response(service.results_json(results), media_type="application/json")


async def sync_answer(database: Database, user_id: uuid.UUID, body: bytes) -> bytes | None:
    """POST /v1/steps's 200 body for main.HotSync, which serves it without FastAPI's routing.

    None for a body this route's validation would refuse (the route then answers its 422);
    any error of the sync itself propagates. The body is validated from its JSON bytes by the
    same model; tests/steps/test_fast_sync.py holds that it accepts exactly what the route's
    parse (json.loads, then the model in Python mode) accepts, with the same values.
    """
    try:
        records = StepSyncIn.model_validate_json(body).records
    except ValidationError:
        return None
    return service.results_json(await service.sync_steps(database, user_id, records))


@router.get("/v1/steps", response_model=StepListOut)
async def list_steps(
    claims: ClaimsDep,
    session: ReadSessionDep,
    start: Annotated[CalendarDay | None, Query(alias="from")] = None,
    end: Annotated[CalendarDay | None, Query(alias="to")] = None,
) -> Any:
    """Your daily records with their decision, newest first (default: the last 7 days)."""
    return {"items": await review.list_own_steps(session, claims.user_id, start, end)}


@router.post("/v1/steps/{date}/appeal", status_code=201, response_model=AppealOut)
async def appeal_day(
    date: CalendarDay,
    body: AppealIn,
    claims: ClaimsDep,
    session: SessionDep,
) -> Any:
    """Send a rejected day of yours back to review, once, within 30 days of the rejection;
    the outcome and the reviewer's note appear on the day in GET /v1/steps."""
    return await appeals.appeal_day(session, claims.user_id, date, body.note)


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(
        default=None, max_length=review.MAX_NOTE, description="Shown to the walker."
    )


@admin_router.get("")
async def review_queue(
    reviewer: Reviewer,
    session: SessionDep,
    status: Literal["flagged", "approved", "rejected"] = "flagged",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> Any:
    """The review queue, oldest first, with rule hits, the user's last 28 days and the day's
    other sources."""
    return await review.list_validations(session, status=status, limit=limit, cursor=cursor)


async def _decide(
    request: Request,
    validation_id: Int64,
    reviewer: CurrentUser,
    session: SessionDep,
    body: ReviewIn | None,
    decision: Literal["approved", "rejected"],
) -> Any:
    return await review.decide(
        SessionDriver(session),
        validation_id=validation_id,
        reviewer_id=reviewer.id,
        decision=decision,
        note=review.check_note(body.note if body else None),
    )


@admin_router.post("/{validation_id}/approve")
async def approve(
    request: Request,
    validation_id: Int64,
    reviewer: Reviewer,
    session: SessionDep,
    body: Annotated[ReviewIn | None, Body()] = None,
) -> Any:
    """Approve a flagged record: its held coins are credited."""
    return await _decide(request, validation_id, reviewer, session, body, "approved")


@admin_router.post("/{validation_id}/reject")
async def reject(
    request: Request,
    validation_id: Int64,
    reviewer: Reviewer,
    session: SessionDep,
    body: Annotated[ReviewIn | None, Body()] = None,
) -> Any:
    """Reject a flagged record: its held coins are released; the walker sees the note."""
    return await _decide(request, validation_id, reviewer, session, body, "rejected")

"""Referral routes: the walker's code and invitees, the claim, and the admin review queue."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response, status

from stepcoin.auth.dependencies import ActiveClaimsDep, CurrentUser, require_roles
from stepcoin.db import ReadSessionDep, SessionDep
from stepcoin.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery
from stepcoin.ratelimit import LimitedRoute
from stepcoin.referrals import service
from stepcoin.referrals.schemas import (
    AdminReferralOut,
    AdminReferralPage,
    ClaimIn,
    MyInviteesPage,
    MyReferralOut,
    ReferralOut,
    ReviewIn,
    Status,
)
from stepcoin.validation import Int64

router = APIRouter(tags=["referrals"])
admin_router = APIRouter(prefix="/v1/admin/referrals", tags=["admin: referrals"])
Reviewer = Annotated[CurrentUser, Depends(require_roles("admin", "support"))]
# counted before the route runs (stepcoin.ratelimit; main.py applies them)
LIMITED = (LimitedRoute("POST", "/v1/referrals/claim", "referrals"),)


@router.get("/v1/me/referral", response_model=MyReferralOut)
async def get_my_referral(claims: ActiveClaimsDep, session: SessionDep) -> Any:
    """Your referral code (made on first ask), the programme's terms, and the code you claimed."""
    return await service.my_referral(session, claims.user_id)


@router.get("/v1/me/referrals", response_model=MyInviteesPage)
async def list_my_referrals(
    claims: ActiveClaimsDep,
    session: ReadSessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Any:
    """The walkers who claimed your code, newest first, each with its status and why."""
    return await service.my_referrals(session, claims.user_id, limit=limit, cursor=cursor)


@router.post(
    "/v1/referrals/claim",
    status_code=status.HTTP_201_CREATED,
    response_model=ReferralOut,
    responses={200: {"model": ReferralOut, "description": "Claimed already: the same referral."}},
)
async def claim_referral(
    body: ClaimIn, claims: ActiveClaimsDep, session: SessionDep, response: Response
) -> Any:
    """Claim a referrer's code, at sign-up or within the claim window; the same code again
    answers 200 with the same referral."""
    claimed = await service.claim(session, claims.user_id, body.code)
    if not claimed.created:
        response.status_code = status.HTTP_200_OK
    return claimed.referral


@admin_router.get("", response_model=AdminReferralPage)
async def list_referrals(
    reviewer: Reviewer,
    session: ReadSessionDep,
    status: Status | None = "review",
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Any:
    """Referrals of a status (default: the review queue), oldest claim first, with reasons."""
    return await service.admin_list(session, status=status, limit=limit, cursor=cursor)


@admin_router.post("/{referral_id}/approve", response_model=AdminReferralOut)
async def approve_referral(
    referral_id: Int64,
    reviewer: Reviewer,
    session: SessionDep,
    body: Annotated[ReviewIn | None, Body()] = None,
) -> Any:
    """Approve a referral in review: it qualifies and pays as usual (at once when its hold is
    over). Never your own referral; audited."""
    return await service.decide(
        session,
        referral_id,
        reviewer_id=reviewer.id,
        approve=True,
        note=body.note if body else None,
    )


@admin_router.post("/{referral_id}/reject", response_model=AdminReferralOut)
async def reject_referral(
    referral_id: Int64,
    reviewer: Reviewer,
    session: SessionDep,
    body: Annotated[ReviewIn | None, Body()] = None,
) -> Any:
    """Reject a referral in review: nothing is paid; the note is shown to the referrer.
    Never your own referral; audited."""
    return await service.decide(
        session,
        referral_id,
        reviewer_id=reviewer.id,
        approve=False,
        note=body.note if body else None,
    )

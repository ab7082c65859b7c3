"""The admin API of campaigns and push broadcasts (thin: one service call each)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from stepcoin.auth.dependencies import AdminDep, StaffDep
from stepcoin.campaigns import broadcasts, service
from stepcoin.campaigns.schemas import (
    BroadcastIn,
    BroadcastOut,
    BroadcastPage,
    BroadcastPreviewOut,
    CampaignIn,
    CampaignOut,
    CampaignPage,
    PreviewOut,
)
from stepcoin.db import SessionDep

router = APIRouter(prefix="/v1/admin/campaigns", tags=["admin"])


@router.get("", response_model=CampaignPage)
async def list_campaigns(
    staff: StaffDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """Campaigns, newest first, with their progress."""
    return {"items": await service.list_recent(session, limit=limit)}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CampaignOut)
async def create_campaign(body: CampaignIn, admin: AdminDep, session: SessionDep) -> Any:
    """A draft campaign: name, the walkers' message, coins per walker, the segment (admins;
    audited). Staff accounts are never in a segment."""
    return await service.create(session, body, admin_id=admin.id)


@router.get("/{campaign_id}", response_model=CampaignOut)
async def get_campaign(campaign_id: uuid.UUID, staff: StaffDep, session: SessionDep) -> Any:
    """One campaign with its progress (walkers_total, walkers_paid, coins_paid)."""
    return await service.get(session, campaign_id)


@router.post("/{campaign_id}/preview", response_model=PreviewOut)
async def preview_campaign(campaign_id: uuid.UUID, admin: AdminDep, session: SessionDep) -> Any:
    """Walkers in the segment now, total coins, a sample, and whether a second admin must
    approve (admins; audited)."""
    return await service.preview(session, campaign_id, admin_id=admin.id)


@router.post("/{campaign_id}/approve", response_model=CampaignOut)
async def approve_campaign(campaign_id: uuid.UUID, admin: AdminDep, session: SessionDep) -> Any:
    """A second admin (never the creator) approves the campaign's total as it is now."""
    return await service.approve(session, campaign_id, admin_id=admin.id)


@router.post("/{campaign_id}/run", status_code=status.HTTP_202_ACCEPTED, response_model=CampaignOut)
async def run_campaign(campaign_id: uuid.UUID, admin: AdminDep, session: SessionDep) -> Any:
    """Start paying the segment in the background (202); follow the progress with GET. Each
    walker is paid once, however often this is called or the job restarts."""
    return await service.start(session, campaign_id, admin_id=admin.id)


broadcasts_router = APIRouter(prefix="/v1/admin/broadcasts", tags=["admin"])


@broadcasts_router.get("", response_model=BroadcastPage)
async def list_broadcasts(
    staff: StaffDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """Push broadcasts, newest first, with their delivery figures."""
    return {"items": await broadcasts.list_recent(session, limit=limit)}


@broadcasts_router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=BroadcastOut)
async def create_broadcast(body: BroadcastIn, admin: AdminDep, session: SessionDep) -> Any:
    """A push broadcast to a segment (admins; audited), accepted (202) and sent by the worker
    at once (`status` running; follow the delivery figures with GET), unless `draft` is set
    or the segment holds more walkers than `notify.broadcast_approval_threshold_walkers`: then
    it waits as a draft for a second admin's approval and a run."""
    return await broadcasts.create(session, body, admin_id=admin.id)


@broadcasts_router.get("/{broadcast_id}", response_model=BroadcastOut)
async def get_broadcast(broadcast_id: uuid.UUID, staff: StaffDep, session: SessionDep) -> Any:
    """One broadcast with its progress and delivery figures (queued, sent, failed,
    invalidated)."""
    return await broadcasts.get(session, broadcast_id)


@broadcasts_router.post("/{broadcast_id}/preview", response_model=BroadcastPreviewOut)
async def preview_broadcast(broadcast_id: uuid.UUID, admin: AdminDep, session: SessionDep) -> Any:
    """Walkers in the segment now, their devices per platform, a sample, and whether a second
    admin must approve (admins; audited)."""
    return await broadcasts.preview(session, broadcast_id, admin_id=admin.id)


@broadcasts_router.post("/{broadcast_id}/approve", response_model=BroadcastOut)
async def approve_broadcast(broadcast_id: uuid.UUID, admin: AdminDep, session: SessionDep) -> Any:
    """A second admin (never the creator) approves the broadcast to the segment as it is now."""
    return await broadcasts.approve(session, broadcast_id, admin_id=admin.id)


@broadcasts_router.post(
    "/{broadcast_id}/run", status_code=status.HTTP_202_ACCEPTED, response_model=BroadcastOut
)
async def run_broadcast(
    broadcast_id: uuid.UUID,
    admin: AdminDep,
    session: SessionDep,
    expires_hours: Annotated[int, Query(ge=1, le=72)] = 24,
) -> Any:
    """Start sending in the background (202); follow the figures with GET. Each walker gets
    it once; a push not sent within `expires_hours` (quiet hours, outages) is dropped."""
    return await broadcasts.start(
        session, broadcast_id, admin_id=admin.id, expires_hours=expires_hours
    )

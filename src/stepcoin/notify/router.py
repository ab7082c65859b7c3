"""Push devices, the inbox and notification preferences of the signed-in walker
(docs/notifications.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response, status

from stepcoin.auth.dependencies import ActiveClaimsDep
from stepcoin.db import ReadSessionDep, SessionDep
from stepcoin.notify import service
from stepcoin.notify.schemas import (
    DeviceId,
    DeviceIn,
    DevicesOut,
    InboxOut,
    MarkedRead,
    NotificationOut,
    PreferencesIn,
    PreferencesOut,
)
from stepcoin.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery
from stepcoin.validation import Int64

router = APIRouter(tags=["notifications"])


@router.put(
    "/v1/me/devices",
    response_model=DeviceId,
    responses={201: {"model": DeviceId, "description": "A new device."}},
)
async def register_push_device(
    body: DeviceIn, claims: ActiveClaimsDep, session: SessionDep, response: Response
) -> Any:
    """Register this install's push token for you (200: known already, 201: new)."""
    device_id, created = await service.register_device(
        session,
        claims.user_id,
        claims.session_id,
        platform=body.platform,
        environment=body.environment,
        token=body.token,
        app_version=body.app_version,
        timezone=body.timezone,
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return {"id": device_id}


@router.get("/v1/me/devices", response_model=DevicesOut)
async def list_push_devices(claims: ActiveClaimsDep, session: ReadSessionDep) -> Any:
    """Your registered push devices (the tokens are not shown)."""
    return {"items": await service.list_devices(session, claims.user_id)}


@router.delete("/v1/me/devices/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_push_device(
    device_id: Int64, claims: ActiveClaimsDep, session: SessionDep
) -> Response:
    """Stop pushes to one of your devices."""
    await service.delete_device(session, claims.user_id, device_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/me/notifications", response_model=InboxOut)
async def list_notifications(
    claims: ActiveClaimsDep,
    session: ReadSessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    unread: bool = Query(default=False, description="Only the unread ones."),
) -> Any:
    """Your inbox, newest first."""
    return await service.inbox(session, claims.user_id, limit=limit, cursor=cursor, unread=unread)


@router.post("/v1/me/notifications/read-all", response_model=MarkedRead)
async def mark_all_notifications_read(claims: ActiveClaimsDep, session: SessionDep) -> Any:
    """Mark every notification in your inbox read."""
    return {"marked": await service.mark_all_read(session, claims.user_id)}


@router.post("/v1/me/notifications/{notification_id}/read", response_model=NotificationOut)
async def mark_notification_read(
    notification_id: Int64, claims: ActiveClaimsDep, session: SessionDep
) -> Any:
    """Mark one notification read (again: unchanged)."""
    return await service.mark_read(session, claims.user_id, notification_id)


@router.get("/v1/me/notification-preferences", response_model=PreferencesOut)
async def get_notification_preferences(claims: ActiveClaimsDep, session: ReadSessionDep) -> Any:
    """Your switches per type and your quiet hours."""
    return await service.get_preferences(session, claims.user_id)


@router.put("/v1/me/notification-preferences", response_model=PreferencesOut)
async def set_notification_preferences(
    body: PreferencesIn, claims: ActiveClaimsDep, session: SessionDep
) -> Any:
    """Change switches and/or quiet hours; what you leave out stays as it was."""
    return await service.set_preferences(
        session,
        claims.user_id,
        types=body.type_changes(),
        quiet_start=body.clock(body.quiet_start),
        quiet_end=body.clock(body.quiet_end),
    )

"""The admin API for users, coin adjustments and the audit log (thin: one service call each)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from stepcoin import audit as audit_repository
from stepcoin.admin import economy
from stepcoin.admin.schemas import (
    AdminUserOut,
    AdminUserPage,
    AdminUserUpdate,
    AuditLogPage,
    BudgetIn,
    BudgetList,
    BudgetOut,
    EconomyReportOut,
)
from stepcoin.auth.dependencies import AdminDep, StaffDep
from stepcoin.db import SessionDep
from stepcoin.errors import NotFound
from stepcoin.pagination import (
    DEFAULT_LIMIT,
    CursorQuery,
    LimitQuery,
    bigint_id,
    decode_cursor,
    page,
)
from stepcoin.users import repository as users_repository
from stepcoin.users import service as users_service
from stepcoin.validation import CalendarDay
from stepcoin.wallet import approvals, budgets
from stepcoin.wallet.schemas import (
    AdjustmentIn,
    AdjustmentRequestOut,
    AdjustmentRequestPage,
    TransactionOut,
)

router = APIRouter(prefix="/v1/admin", tags=["admin"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="A retry with the same key returns the first ledger row.",
    ),
]


def _user_not_found() -> NotFound:
    return NotFound("No such user.", code="user_not_found")


def _parse_user_id(user_id: str) -> uuid.UUID:
    """A malformed id names no user: the same 404 as an unknown one."""
    try:
        return uuid.UUID(user_id)
    except ValueError as exc:
        raise _user_not_found() from exc


@router.get("/users", response_model=AdminUserPage)
async def search_users(
    staff: StaffDep,
    session: SessionDep,
    q: Annotated[
        str | None, Query(max_length=200, description="Part of the email or full name.")
    ] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Any:
    """Users with their wallets, newest first; `q` matches email or name (any case)."""
    after = decode_cursor(cursor, uuid.UUID) if cursor else None
    rows = await users_repository.search_users(
        session, query=q.strip() if q else None, limit=limit + 1, after=after
    )
    return page(rows, limit)


@router.get("/users/{user_id}", response_model=AdminUserOut)
async def get_user(user_id: str, staff: StaffDep, session: SessionDep) -> Any:
    """One user with the wallet."""
    user = await users_repository.get_user_for_admin(session, _parse_user_id(user_id))
    if user is None:
        raise _user_not_found()
    return user


@router.patch("/users/{user_id}", response_model=AdminUserOut)
async def patch_user(
    user_id: str, body: AdminUserUpdate, staff: StaffDep, session: SessionDep
) -> Any:
    """Deactivate (ends every session), reactivate, or change the role (admins only); audited."""
    target = _parse_user_id(user_id)
    await users_service.update_as_staff(
        session, target, actor_id=staff.id, is_active=body.is_active, role=body.role
    )
    user = await users_repository.get_user_for_admin(session, target)
    assert user is not None
    return user


@router.post(
    "/users/{user_id}/adjustments",
    status_code=status.HTTP_201_CREATED,
    response_model=TransactionOut,
    responses={
        202: {
            "model": AdjustmentRequestOut,
            "description": "Above admin.adjustment_approval_threshold_coins: a pending request "
            "that a second admin approves or rejects.",
        }
    },
)
async def adjust_coins(
    user_id: str,
    body: AdjustmentIn,
    admin: AdminDep,
    session: SessionDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Credit or debit a wallet with a reason (admins only); answers with the ledger row, or,
    above the approval threshold, 202 with a pending request for a second admin."""
    adjustment, pending, replayed = await approvals.adjust_or_request(
        session,
        user_id=_parse_user_id(user_id),
        amount=body.amount,
        reason=body.reason,
        admin_id=admin.id,
        idempotency_key=idempotency_key,
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    if pending is not None:
        return JSONResponse(
            jsonable_encoder(AdjustmentRequestOut.model_validate(pending)),
            status_code=status.HTTP_202_ACCEPTED,
            headers=headers,
        )
    assert adjustment is not None
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return adjustment.transaction


@router.get("/adjustments", response_model=AdjustmentRequestPage)
async def list_adjustment_requests(
    admin: AdminDep,
    session: SessionDep,
    status_filter: Annotated[
        Literal["pending", "approved", "rejected"] | None, Query(alias="status")
    ] = "pending",
    limit: LimitQuery = DEFAULT_LIMIT,
) -> Any:
    """Adjustment requests waiting for a second admin (or decided ones), oldest first."""
    items = await approvals.list_requests(session, status=status_filter, limit=limit)
    return {"items": items}


@router.post("/adjustments/{request_id}/approve", response_model=AdjustmentRequestOut)
async def approve_adjustment(request_id: uuid.UUID, admin: AdminDep, session: SessionDep) -> Any:
    """A second admin approves: the coins move once. The requester and the walker adjusted
    cannot (403 own_request / own_wallet); a decided request answers 409."""
    return await approvals.approve(session, request_id, admin_id=admin.id)


@router.post("/adjustments/{request_id}/reject", response_model=AdjustmentRequestOut)
async def reject_adjustment(request_id: uuid.UUID, admin: AdminDep, session: SessionDep) -> Any:
    """A second admin rejects: nothing moves."""
    return await approvals.reject(session, request_id, admin_id=admin.id)


@router.get("/audit-logs", response_model=AuditLogPage)
async def list_audit_logs(
    staff: StaffDep,
    session: SessionDep,
    entity_type: Annotated[str | None, Query(max_length=64)] = None,
    entity_id: Annotated[str | None, Query(max_length=100)] = None,
    admin_id: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Any:
    """The audit log, newest first; every filter is an exact match."""
    after = decode_cursor(cursor, bigint_id) if cursor else None
    rows = await audit_repository.list_audit_logs(
        session,
        entity_type=entity_type,
        entity_id=entity_id,
        admin_id=admin_id,
        action=action,
        limit=limit + 1,
        after=after,
    )
    return page(rows, limit)


@router.get("/economy/report", response_model=EconomyReportOut)
async def economy_report(
    staff: StaffDep,
    session: SessionDep,
    as_of: Annotated[CalendarDay | None, Query(description="A UTC day (default today).")] = None,
) -> Any:
    """The coins outstanding and pending, in coins and in the shop's currency; breakage by
    monthly sign-up cohort; the earn rule changes (staff may read it)."""
    return await economy.report(session, as_of)


BudgetSource = Literal["steps", "achievements", "campaigns", "prizes", "referrals"]
BudgetPeriod = Literal["day", "week", "month"]


@router.get("/economy/budgets", response_model=BudgetList)
async def list_budgets(staff: StaffDep, session: SessionDep) -> Any:
    """Every issuance budget with this period's use and the rewards it holds."""
    return {"items": await budgets.overview(session)}


@router.put("/economy/budgets/{source}/{budget_period}", response_model=BudgetOut)
async def set_budget(
    source: BudgetSource,
    budget_period: BudgetPeriod,
    body: BudgetIn,
    admin: AdminDep,
    session: SessionDep,
) -> Any:
    """Set the cap of a source's coins per period (admins; audited). Beyond it rewards are
    held (pending for the walker) and paid when there is room."""
    return await budgets.set_budget(
        session,
        source=source,
        period=budget_period,
        cap_coins=body.cap_coins,
        alert_percent=body.alert_percent,
        admin_id=admin.id,
    )


@router.delete("/economy/budgets/{source}/{budget_period}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_budget(
    source: BudgetSource, budget_period: BudgetPeriod, admin: AdminDep, session: SessionDep
) -> None:
    """Remove a budget (admins; audited): its held rewards are paid by the next release."""
    await budgets.remove_budget(session, source=source, period=budget_period, admin_id=admin.id)

"""Console pages: user search, one user's page, (de)activation and coin adjustments."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.auth import service as auth_service
from stepcoin.auth import verification
from stepcoin.console import sessions as console_sessions
from stepcoin.console.web import (
    PREFIX,
    AdminFormDep,
    ConsoleUserDep,
    CsrfFormDep,
    field_limits,
    perform,
    render,
    settings_of,
)
from stepcoin.db import ReadSessionDep
from stepcoin.errors import InvalidInput, NotFound
from stepcoin.fairplay import service as fairplay_service
from stepcoin.pagination import MAX_CURSOR_LENGTH, bigint_id, decode_cursor, page
from stepcoin.shop import orders as shop_orders
from stepcoin.steps import review
from stepcoin.users import repository as users_repository
from stepcoin.users import service as users_service
from stepcoin.wallet import approvals
from stepcoin.wallet import reports as wallet_reports
from stepcoin.wallet.schemas import MAX_ADJUSTMENT, AdjustmentIn

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE_SIZE = 50
LEDGER_PAGE = 25
STEP_DAYS = 30
RECENT = 20
REASON_MIN, REASON_MAX = field_limits(AdjustmentIn, "reason")
AMOUNT_RE = re.compile(r"^[+-]?\d{1,7}$")
KEY_RE = re.compile(r"^[\x21-\x7e]{1,128}$")  # the API's Idempotency-Key pattern

CursorParam = Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH)]
SearchParam = Annotated[str | None, Query(max_length=200)]


def _user_id(raw: str) -> uuid.UUID:
    """A malformed id names no user: the same 404 as an unknown one."""
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise NotFound("No such user.", code="user_not_found") from exc


@router.get("/users")
async def users(
    request: Request,
    user: ConsoleUserDep,
    session: ReadSessionDep,
    q: SearchParam = None,
    cursor: CursorParam = None,
) -> Response:
    """Users with their wallets, newest first; `q` matches part of the email or name."""
    query = q.strip() if q else None
    after = decode_cursor(cursor, uuid.UUID) if cursor else None
    rows = await users_repository.search_users(
        session, query=query, limit=PAGE_SIZE + 1, after=after
    )
    result = page(rows, PAGE_SIZE)
    return render(
        request,
        user,
        "users.html",
        {"rows": result["items"], "next_cursor": result["next_cursor"], "q": query or ""},
        section="users",
    )


async def _profile(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    row = await users_repository.get_staff_view(session, user_id)
    if row is None:
        raise NotFound("No such user.", code="user_not_found")
    return row


async def _ledger(session: AsyncSession, user_id: uuid.UUID, cursor: str | None) -> dict[str, Any]:
    """Ledger rows newest first, active user or not, LEDGER_PAGE at a time."""
    after = decode_cursor(cursor, bigint_id) if cursor else None
    rows = await wallet_reports.ledger_page(session, user_id, limit=LEDGER_PAGE + 1, after=after)
    return page(rows, LEDGER_PAGE)


async def _sessions(session: AsyncSession, user_id: uuid.UUID) -> dict[str, list[Any]]:
    """The latest app sessions (refresh tokens) and console sessions."""
    return {
        "app": await auth_service.recent_app_sessions(session, user_id, limit=RECENT),
        "console": await console_sessions.recent_sessions(session, user_id, limit=RECENT),
    }


@router.get("/users/{user_id}")
async def user_page(
    request: Request,
    user_id: str,
    user: ConsoleUserDep,
    session: ReadSessionDep,
    ledger_cursor: CursorParam = None,
) -> Response:
    """Profile, wallet, ledger, recent steps, sessions and orders of one user."""
    target = _user_id(user_id)
    profile = await _profile(session, target)
    today = datetime.now(UTC).date()
    ledger = await _ledger(session, target, ledger_cursor)
    steps = await review.list_user_steps(
        session, target, today - timedelta(days=STEP_DAYS - 1), today
    )
    orders = await shop_orders.list_orders(session, user_id=target, limit=RECENT)
    adjustment_requests = await approvals.list_requests(
        session, status="pending", user_id=target, limit=RECENT
    )
    fair_play = await fairplay_service.staff_view(session, target, store=False)
    return render(
        request,
        user,
        "users_detail.html",
        {
            "profile": profile,
            "ledger": ledger["items"],
            "ledger_next": ledger["next_cursor"],
            "steps": steps,
            "step_days": STEP_DAYS,
            "sessions": await _sessions(session, target),
            "orders": orders,
            "recent": RECENT,
            "idempotency_key": uuid.uuid4().hex,
            "max_adjustment": MAX_ADJUSTMENT,
            "adjustment_requests": adjustment_requests,
            "fair_play": fair_play,
        },
        section="users",
    )


@router.post("/users/{user_id}/active")
async def set_active(request: Request, user_id: str, form: CsrfFormDep) -> Response:
    """Deactivate (ends every app session) or reactivate, as PATCH /v1/admin/users/{id}:
    support may do it for walkers, only admins for staff; the service audits it."""
    target = _user_id(user_id)

    async def action(session: AsyncSession) -> str:
        value = form.get("is_active")
        if value not in ("true", "false"):
            raise InvalidInput("is_active must be true or false.", code="invalid_is_active")
        active = value == "true"
        await users_service.update_as_staff(
            session, target, actor_id=form.user.id, is_active=active
        )
        if active:
            return "The account is active again."
        return "The account is deactivated; its app sessions have ended."

    return await perform(request, action, back=f"{PREFIX}/users/{target}")


@router.post("/users/{user_id}/links/clear")
async def clear_links(request: Request, user_id: str, form: CsrfFormDep) -> Response:
    """The walker's links were looked at and are fine, as POST
    /v1/admin/users/{id}/links/clear (support and admins; never one's own; audited)."""
    target = _user_id(user_id)

    async def action(session: AsyncSession) -> str:
        note = (form.get("note") or "").strip()[:2000] or None
        await fairplay_service.clear_links(session, target, actor_id=form.user.id, note=note)
        return "The links are cleared: the link rules stay quiet until more accounts join."

    return await perform(request, action, back=f"{PREFIX}/users/{target}")


@router.post("/users/{user_id}/verification-mail")
async def resend_verification(request: Request, user_id: str, form: CsrfFormDep) -> Response:
    """Send the walker a new verification mail (support and admins; audited by the service)."""
    target = _user_id(user_id)

    async def action(session: AsyncSession) -> str:
        email = await verification.resend_as_staff(
            session, settings_of(request), user_id=target, actor_id=form.user.id
        )
        return f"A new verification mail is on its way to {email}."

    return await perform(request, action, back=f"{PREFIX}/users/{target}")


def _amount(raw: str) -> int:
    if not AMOUNT_RE.match(raw):
        raise InvalidInput(
            "The amount must be a whole number of coins, like 50 or -20.", code="invalid_amount"
        )
    amount = int(raw)
    if amount == 0:
        raise InvalidInput("The amount must not be zero.", code="invalid_amount")
    if abs(amount) > MAX_ADJUSTMENT:
        raise InvalidInput(f"At most {MAX_ADJUSTMENT:,} coins either way.", code="invalid_amount")
    return amount


@router.post("/users/{user_id}/adjust")
async def adjust(request: Request, user_id: str, form: AdminFormDep) -> Response:
    """Credit or debit the wallet with a reason (admins only), once per rendered form: the
    form's idempotency key makes a double submit return the first adjustment."""
    target = _user_id(user_id)

    async def action(session: AsyncSession) -> str:
        amount = _amount(form.get("amount"))
        reason = form.get("reason")
        if not REASON_MIN <= len(reason) <= REASON_MAX:
            raise InvalidInput(
                f"Give a reason of {REASON_MIN} to {REASON_MAX} characters; the walker sees it.",
                code="invalid_reason",
            )
        key = form.get("idempotency_key") or None
        if key is not None and not KEY_RE.match(key):
            raise InvalidInput("The form's idempotency key is malformed.", code="invalid_key")
        result, pending, replayed = await approvals.adjust_or_request(
            session,
            user_id=target,
            amount=amount,
            reason=reason,
            admin_id=form.user.id,
            idempotency_key=key,
        )
        if replayed:
            return "This adjustment was already made (the form was sent twice); nothing changed."
        if pending is not None:
            return (
                f"{abs(amount):,} coins is above the approval threshold: the request waits "
                "for a second admin's approval."
            )
        assert result is not None
        verb = "Credited" if amount > 0 else "Debited"
        balance = result.transaction["balance_after"]
        return f"{verb} {abs(amount):,} coins; the balance is now {balance:,}."

    return await perform(request, action, back=f"{PREFIX}/users/{target}")


@router.post("/adjustments/{request_id}/{decision}")
async def decide_adjustment(
    request: Request, request_id: str, decision: str, form: AdminFormDep
) -> Response:
    """Approve or reject another admin's pending adjustment (as POST
    /v1/admin/adjustments/{id}/approve or /reject): never one's own request or wallet."""
    try:
        rid = uuid.UUID(request_id)
    except ValueError as exc:
        raise NotFound("No such adjustment request.", code="adjustment_request_not_found") from exc
    if decision not in ("approve", "reject"):
        raise NotFound("No such action.", code="not_found")
    back = form.get("back")
    if not back.startswith(f"{PREFIX}/users/") or not re.fullmatch(r"[\w/-]+", back):
        back = f"{PREFIX}/users"

    async def action(session: AsyncSession) -> str:
        if decision == "approve":
            done = await approvals.approve(session, rid, admin_id=form.user.id)
            return f"Approved: {done['amount']:,} coins moved."
        await approvals.reject(session, rid, admin_id=form.user.id)
        return "Rejected: nothing moved."

    return await perform(request, action, back=back)

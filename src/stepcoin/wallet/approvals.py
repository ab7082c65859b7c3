"""Wallet adjustments above `admin.adjustment_approval_threshold_coins` need a second admin.

The first admin's request is stored (adjustment_requests, status pending) and audited; another
admin, never the requester and never the walker adjusted, approves it (the coins move through
wallet.service.post with the reference `adjreq:<id>`, so exactly once however many approvals
race) or rejects it. Both decisions are audited.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.errors import Conflict, Forbidden, InvalidInput, NotFound
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.wallet import repository
from stepcoin.wallet.service import ADMIN_ADJUSTMENT, Adjustment, Entry, adjust_balance, post

THRESHOLD_SETTING = "admin.adjustment_approval_threshold_coins"
STATUSES = ("pending", "approved", "rejected")
_REQUEST_NAMESPACE = uuid.UUID("6f1c6c1e-2b52-4a55-9d0e-5c3a0a7f4a12")

COLUMNS = (
    "id, user_id, amount, reason, requested_by, requested_at, decided_by, decided_at, "
    "status, transaction_id"
)


async def needs_approval(session: AsyncSession, amount: int) -> bool:
    """True when the amount (either way) is above the runtime threshold."""
    threshold = int(await runtime_settings.get(session, THRESHOLD_SETTING))
    return abs(amount) > threshold


async def adjust_or_request(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    amount: int,
    reason: str,
    admin_id: uuid.UUID,
    idempotency_key: str | None = None,
) -> tuple[Adjustment | None, dict[str, Any] | None, bool]:
    """The admin adjustment's entry point: (adjustment, None, replayed) when applied at once,
    (None, request, replayed) when the amount is above the threshold and waits for a second
    admin. Own wallets are refused either way (403 own_wallet)."""
    if admin_id == user_id:
        raise Forbidden("Staff never adjust their own wallet.", code="own_wallet")
    if await needs_approval(session, amount):
        pending, replayed = await request(
            session,
            user_id=user_id,
            amount=amount,
            reason=reason,
            admin_id=admin_id,
            idempotency_key=idempotency_key,
        )
        return None, pending, replayed
    adjustment = await adjust_balance(
        session,
        user_id=user_id,
        amount=amount,
        reason=reason,
        admin_id=admin_id,
        idempotency_key=idempotency_key,
    )
    return adjustment, None, adjustment.replayed


def _not_found() -> NotFound:
    return NotFound("No such adjustment request.", code="adjustment_request_not_found")


async def request(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    amount: int,
    reason: str,
    admin_id: uuid.UUID,
    idempotency_key: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Store a pending adjustment: (request, replayed). With an idempotency key the request's
    id is derived from (admin, key), so a retry answers the first request; the same key for
    another walker or amount is refused. That refusal is this function's (a lock on the id and
    a look-up by id): the primary key (id, user_id) would take the id again for another
    walker."""
    exists = (
        await session.execute(text("SELECT 1 FROM users WHERE id = :u"), {"u": user_id})
    ).scalar_one_or_none()
    if exists is None:
        raise NotFound("No such user.", code="user_not_found")
    request_id = (
        uuid.uuid5(_REQUEST_NAMESPACE, f"{admin_id}:{idempotency_key}")
        if idempotency_key is not None
        else uuid.uuid4()
    )
    first = None
    if idempotency_key is not None:
        await repository.lock_reference(session, f"adjreq:{request_id}")
        first = await _find(session, request_id)
    if first is None:
        row = (
            (
                await session.execute(
                    text(
                        "INSERT INTO adjustment_requests (id, user_id, amount, reason, "
                        "requested_by) VALUES (:id, :u, :a, :r, :by) "
                        f"RETURNING {COLUMNS}"
                    ),
                    {"id": request_id, "u": user_id, "a": amount, "r": reason, "by": admin_id},
                )
            )
            .mappings()
            .one()
        )
    else:  # the same admin and key: the first request
        if first["user_id"] != user_id or first["amount"] != amount:
            raise InvalidInput(
                "This Idempotency-Key was used for a different adjustment.",
                code="idempotency_key_reused",
            )
        return first, True
    await audit.record(
        session,
        admin_id=admin_id,
        action="wallet.adjustment_requested",
        entity_type="wallet",
        entity_id=str(user_id),
        after={"status": "pending"},
        extra={"request_id": str(request_id), "amount": amount, "reason": reason},
    )
    return dict(row), False


async def _find(
    session: AsyncSession, request_id: uuid.UUID, *, for_update: bool = False
) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    row = (
        (
            await session.execute(
                text(f"SELECT {COLUMNS} FROM adjustment_requests WHERE id = :id{lock}"),
                {"id": request_id},
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def get(
    session: AsyncSession, request_id: uuid.UUID, *, for_update: bool = False
) -> dict[str, Any]:
    """One request (locked for the rest of the transaction with `for_update`); 404 if none."""
    row = await _find(session, request_id, for_update=for_update)
    if row is None:
        raise _not_found()
    return row


async def list_requests(
    session: AsyncSession,
    *,
    status: str | None = "pending",
    user_id: uuid.UUID | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Requests oldest first (the queue a second admin works through)."""
    conditions: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if status:
        conditions.append("status = :status")
        params["status"] = status
    if user_id is not None:
        conditions.append("user_id = :u")
        params["u"] = user_id
    where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    rows = await session.execute(
        text(
            f"SELECT {COLUMNS} FROM adjustment_requests {where} "
            "ORDER BY requested_at, id LIMIT :limit"
        ),
        params,
    )
    return [dict(r) for r in rows.mappings()]


async def _lock_pending(
    session: AsyncSession, request_id: uuid.UUID, admin_id: uuid.UUID
) -> dict[str, Any]:
    row = await get(session, request_id, for_update=True)
    if row["requested_by"] == admin_id:
        raise Forbidden(
            "A second admin decides on an adjustment you requested.", code="own_request"
        )
    if row["user_id"] == admin_id:
        raise Forbidden("Staff never adjust their own wallet.", code="own_wallet")
    if row["status"] != "pending":
        raise Conflict(
            f"This adjustment request is already {row['status']}.",
            code="adjustment_already_decided",
            extra={"current_status": row["status"]},
        )
    return dict(row)


async def approve(
    session: AsyncSession, request_id: uuid.UUID, *, admin_id: uuid.UUID
) -> dict[str, Any]:
    """A second admin approves: the coins move once (reference adjreq:<id>); audited."""
    row = await _lock_pending(session, request_id, admin_id)
    reference_id = f"adjreq:{request_id}"
    (posted,) = await post(
        session,
        row["user_id"],
        [Entry(row["amount"], ADMIN_ADJUSTMENT, reference_id, row["reason"])],
    )
    await session.execute(
        text(
            "UPDATE adjustment_requests SET status = 'approved', decided_by = :by, "
            "decided_at = now(), transaction_id = :tx WHERE id = :id"
        ),
        {"by": admin_id, "tx": posted.id, "id": request_id},
    )
    await audit.record(
        session,
        admin_id=admin_id,
        action="wallet.adjust",
        entity_type="wallet",
        entity_id=str(row["user_id"]),
        before={"available_coins": posted.balance_after - row["amount"]},
        after={"available_coins": posted.balance_after},
        extra={
            "amount": row["amount"],
            "reason": row["reason"],
            "transaction_id": posted.id,
            "reference_id": reference_id,
            "request_id": str(request_id),
            "requested_by": str(row["requested_by"]) if row["requested_by"] else None,
            "approved_by": str(admin_id),
        },
    )
    return await get(session, request_id)


async def reject(
    session: AsyncSession, request_id: uuid.UUID, *, admin_id: uuid.UUID
) -> dict[str, Any]:
    """A second admin rejects: nothing moves; audited."""
    row = await _lock_pending(session, request_id, admin_id)
    await session.execute(
        text(
            "UPDATE adjustment_requests SET status = 'rejected', decided_by = :by, "
            "decided_at = now() WHERE id = :id"
        ),
        {"by": admin_id, "id": request_id},
    )
    await audit.record(
        session,
        admin_id=admin_id,
        action="wallet.adjustment_rejected",
        entity_type="wallet",
        entity_id=str(row["user_id"]),
        before={"status": "pending"},
        after={"status": "rejected"},
        extra={"request_id": str(request_id), "amount": row["amount"]},
    )
    return await get(session, request_id)

"""Wallet rules: admin adjustments and the ledger reconciliation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.errors import Conflict, InvalidInput, NotFound
from stepcoin.wallet import repository

ADMIN_ADJUSTMENT = "admin_adjustment"


@dataclass(frozen=True, slots=True)
class Adjustment:
    transaction: dict[str, Any]
    replayed: bool


async def adjust_balance(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    amount: int,
    reason: str,
    admin_id: uuid.UUID,
    idempotency_key: str | None = None,
) -> Adjustment:
    """Credit (amount > 0) or debit (amount < 0) a wallet by hand, in the caller's transaction.

    The wallet update, its ledger row and the audit row are written together or not at all. A
    credit adds to lifetime_earned; a debit adds its size to lifetime_spent (lifetime_earned
    never shrinks, so both stay non-negative and earned - spent tracks the balance). A debit
    larger than the balance is refused (409 `insufficient_coins`) and changes nothing.

    With an idempotency key the ledger reference is `adj:<admin_id>:<key>`: a retry by the same
    admin gets the first ledger row back (replayed=True) instead of a second adjustment; the
    same key for another user or amount is refused (422 `idempotency_key_reused`).
    """
    if idempotency_key is not None:
        reference_id = f"adj:{admin_id}:{idempotency_key}"
        await repository.lock_reference(session, reference_id)
        existing = await repository.find_transaction(session, ADMIN_ADJUSTMENT, reference_id)
        if existing is not None:
            if existing.pop("user_id") != user_id or existing["amount"] != amount:
                raise InvalidInput(
                    "This Idempotency-Key was used for a different adjustment.",
                    code="idempotency_key_reused",
                )
            return Adjustment(existing, replayed=True)
    else:
        reference_id = f"adj:{uuid.uuid4()}"

    balance_after = await repository.move_available(session, user_id, amount)
    if balance_after is None:
        available = await repository.available_coins(session, user_id)
        if available is None:
            raise NotFound("No such user.", code="user_not_found")
        raise Conflict(
            f"The wallet holds {available} coins; a debit of {-amount} would overdraw it.",
            code="insufficient_coins",
            extra={"available_coins": available},
        )
    transaction = await repository.insert_transaction(
        session,
        user_id=user_id,
        amount=amount,
        transaction_type=ADMIN_ADJUSTMENT,
        reference_id=reference_id,
        balance_after=balance_after,
        note=reason,
    )
    if transaction is None:  # cannot happen under the reference lock; never adjust twice
        raise Conflict("A concurrent request holds this reference; retry.", code="retry")
    await audit.record(
        session,
        admin_id=admin_id,
        action="wallet.adjust",
        entity_type="wallet",
        entity_id=str(user_id),
        before={"available_coins": balance_after - amount},
        after={"available_coins": balance_after},
        extra={
            "amount": amount,
            "reason": reason,
            "transaction_id": transaction["id"],
            "reference_id": reference_id,
        },
    )
    return Adjustment(transaction, replayed=False)


@dataclass
class LedgerReport:
    wallets_checked: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    duplicate_awards: list[dict[str, Any]] = field(default_factory=list)
    bad_balance_chains: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.duplicate_awards or self.bad_balance_chains)


async def check_ledger(session: AsyncSession, *, limit: int = 100) -> LedgerReport:
    """Every wallet equals its ledger; no (type, reference) twice; the latest balance_after fits."""
    report = LedgerReport()
    report.wallets_checked = (
        await session.execute(text("SELECT count(*) FROM wallets"))
    ).scalar_one()
    mismatches = await session.execute(
        text(
            """
            SELECT w.user_id, w.available_coins, coalesce(l.total, 0) AS ledger_total
            FROM wallets w
            LEFT JOIN (SELECT user_id, sum(amount) AS total FROM coin_transactions
                       GROUP BY user_id) l ON l.user_id = w.user_id
            WHERE w.available_coins <> coalesce(l.total, 0)
            ORDER BY w.user_id LIMIT :limit
            """
        ),
        {"limit": limit},
    )
    report.mismatches = [dict(r) for r in mismatches.mappings()]
    duplicates = await session.execute(
        text(
            """
            SELECT transaction_type, reference_id, count(*) AS n FROM coin_transactions
            GROUP BY transaction_type, reference_id HAVING count(*) > 1 LIMIT :limit
            """
        ),
        {"limit": limit},
    )
    report.duplicate_awards = [dict(r) for r in duplicates.mappings()]
    chains = await session.execute(
        text(
            """
            SELECT w.user_id, w.available_coins, last.balance_after
            FROM wallets w
            JOIN LATERAL (SELECT balance_after FROM coin_transactions t
                          WHERE t.user_id = w.user_id
                          ORDER BY t.created_at DESC, t.id DESC LIMIT 1) last ON true
            WHERE last.balance_after <> w.available_coins
            ORDER BY w.user_id LIMIT :limit
            """
        ),
        {"limit": limit},
    )
    report.bad_balance_chains = [dict(r) for r in chains.mappings()]
    return report

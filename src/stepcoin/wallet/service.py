"""Wallet rules that span users: the ledger reconciliation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


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
                          WHERE t.user_id = w.user_id ORDER BY t.id DESC LIMIT 1) last ON true
            WHERE last.balance_after <> w.available_coins
            ORDER BY w.user_id LIMIT :limit
            """
        ),
        {"limit": limit},
    )
    report.bad_balance_chains = [dict(r) for r in chains.mappings()]
    return report

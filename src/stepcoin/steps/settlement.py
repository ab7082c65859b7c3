"""What one day is worth: the credited source and the coins to have paid and to hold.

The rule (documented in docs/steps.md): sources are never added up. Among the day's live
(not deleted) records, the credited one is the best-supported: the platform aggregators
(HealthKit, Health Connect) first, then Google Fit, then manual entry; among equals the one
with intraday samples; then the higher count. A record is paid for its last *approved* version
(`approved_steps`), so a newer version waiting in review, or a rejected newer version, never
takes back what an earlier approved version earned; a lower approved re-sync or a deletion does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SOURCE_TRUST = {"healthkit": 3, "health_connect": 3, "google_fit": 2, "manual": 1}


@dataclass(frozen=True, slots=True)
class DayRecord:
    source: str
    steps: int
    approved_steps: int
    status: str  # approved / flagged / rejected (the current decision)
    deleted: bool = False
    has_intervals: bool = False


@dataclass(frozen=True, slots=True)
class DaySettlement:
    credited_source: str | None
    credited_steps: int
    coins_paid: int  # what the day should have paid in total
    coins_pending: int  # what the day holds for records in review


def coins_for(steps: int, settings: Mapping[str, Any]) -> int:
    """Whole coins for a day's steps at the current rate, capped per day."""
    rate = int(settings["coins.per_1000_steps"])
    cap = int(settings["coins.daily_cap"])
    return min(cap, max(0, steps) * rate // 1000)


def _rank(source: str, has_intervals: bool, steps: int) -> tuple[int, int, int]:
    return (SOURCE_TRUST.get(source, 0), int(has_intervals), steps)


def settle_day(records: Sequence[DayRecord], settings: Mapping[str, Any]) -> DaySettlement:
    live = [r for r in records if not r.deleted]
    paid_from = [r for r in live if r.approved_steps > 0]
    best = max(
        paid_from,
        key=lambda r: _rank(r.source, r.has_intervals, r.approved_steps),
        default=None,
    )
    coins_paid = coins_for(best.approved_steps, settings) if best else 0
    in_review = [coins_for(r.steps, settings) for r in live if r.status == "flagged"]
    coins_pending = max(0, max(in_review, default=0) - coins_paid)
    return DaySettlement(
        credited_source=best.source if best else None,
        credited_steps=best.approved_steps if best else 0,
        coins_paid=coins_paid,
        coins_pending=coins_pending,
    )

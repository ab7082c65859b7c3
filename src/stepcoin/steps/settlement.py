"""What one day is worth: the credited source and the coins to have paid and to hold.

The rule (documented in docs/steps.md): sources are never added up. Among the day's live
(not deleted) records, the credited one is the best-supported: the platform aggregators
(HealthKit, Health Connect) first, then Google Fit, then manual entry; among equals the one
with intraday samples; then the higher count. A record is paid for its last *approved* version
(`approved_steps`), so a newer version waiting in review, or a rejected newer version, never
takes back what an earlier approved version earned; a lower approved re-sync or a deletion does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

SOURCE_TRUST = {"healthkit": 3, "health_connect": 3, "google_fit": 2, "manual": 1}


@dataclass(frozen=True, slots=True)
class EarnRule:
    """What a day's steps are worth (docs/economy.md, "Earn rules"): whole coins per 1,000
    steps, the steps that count at most (None: no step cap) and the coins at most."""

    coins_per_1000_steps: int
    daily_step_cap: int | None
    daily_coin_cap: int
    effective_from: date = date(1970, 1, 1)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class DayRecord:
    source: str
    steps: int
    approved_steps: int
    status: str  # approved / flagged / rejected (the current decision)
    deleted: bool = False
    has_intervals: bool = False


class DayRecordLike(Protocol):
    """What settle_day reads of a record: a DayRecord, or the sync's own record state."""

    @property
    def source(self) -> str: ...
    @property
    def steps(self) -> int: ...
    @property
    def approved_steps(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def deleted(self) -> bool: ...
    @property
    def has_intervals(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class DaySettlement:
    credited_source: str | None
    credited_steps: int
    coins_paid: int  # what the day should have paid in total
    coins_pending: int  # what the day holds for records in review


def coins_for(steps: int, rule: EarnRule) -> int:
    """Whole coins for a day's steps under the day's rule: steps beyond the step cap earn
    nothing, remainders of 1,000 steps are not paid, then the coin cap."""
    return _coins(steps, rule.coins_per_1000_steps, rule.daily_step_cap, rule.daily_coin_cap)


def _coins(steps: int, rate: int, step_cap: int | None, cap: int) -> int:
    counted = max(0, steps) if step_cap is None else min(step_cap, max(0, steps))
    return min(cap, counted * rate // 1000)


def settle_day(records: Iterable[DayRecordLike], rule: EarnRule) -> DaySettlement:
    """One pass over the day's records (a 500-record batch settles ~170 days), priced by the
    rule in force on that day (the caller picks it: EarnRules.for_day)."""
    rate = rule.coins_per_1000_steps
    step_cap = rule.daily_step_cap
    cap = rule.daily_coin_cap
    best: DayRecordLike | None = None
    best_rank = (0, 0, 0)
    most_in_review = 0
    for r in records:
        if r.deleted:
            continue
        if r.approved_steps > 0:
            # the best-supported source; among equals with samples; then the higher count;
            # the first of equal ranks (as max() would)
            rank = (SOURCE_TRUST.get(r.source, 0), int(r.has_intervals), r.approved_steps)
            if best is None or rank > best_rank:
                best, best_rank = r, rank
        if r.status == "flagged":
            most_in_review = max(most_in_review, _coins(r.steps, rate, step_cap, cap))
    coins_paid = _coins(best.approved_steps, rate, step_cap, cap) if best else 0
    return DaySettlement(
        credited_source=best.source if best else None,
        credited_steps=best.approved_steps if best else 0,
        coins_paid=coins_paid,
        coins_pending=max(0, most_in_review - coins_paid),
    )

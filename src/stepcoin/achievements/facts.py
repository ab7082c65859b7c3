"""The fold of a walker's credited days into the achievements' facts: pure, no I/O.

`repository.facts_from_days` folds a facts row's days (seeded with the walker's summarised
closed history when the row carries one: `achievements.history`); `history.build` folds the
closed days into that summary. One fold, so a summary and a whole history give the same facts
(tests/achievements/test_history.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

EPOCH = date(2000, 1, 1)  # days are counted from it (the facts queries' day numbers)
NO_DAY = -(10**9)  # before any day: the next day is never its successor


@dataclass(frozen=True, slots=True)
class Fold:
    """The fold over a walker's credited days, so far: totals and, per streak threshold, the
    longest run, the latest run's length and its last day (NO_DAY: no run yet)."""

    total_steps: int = 0
    approved_days: int = 0
    best_day: int = 0
    runs: dict[int, tuple[int, int, int]] | None = None  # threshold -> (longest, length, end)

    def run(self, threshold: int) -> tuple[int, int, int]:
        return (self.runs or {}).get(threshold, (0, 0, NO_DAY))


def fold(
    days: Sequence[int], steps: Sequence[int], thresholds: Sequence[int], seed: Fold | None = None
) -> Fold:
    """`seed` (the days before these, or nothing) carried over `days` (ascending, days since
    EPOCH, each after every day of the seed, with `steps` > 0 credited): the seed must hold a
    run for every threshold (a summary that lacks one is not a seed)."""
    start = seed or Fold()
    runs = {}
    for threshold in set(thresholds):
        longest, length, end = start.run(threshold)
        for day, count in zip(days, steps, strict=True):
            if count < threshold:
                continue
            length = length + 1 if day == end + 1 else 1
            end = day
            if length > longest:
                longest = length
        runs[threshold] = (longest, length, end)
    return Fold(
        total_steps=start.total_steps + sum(steps),
        approved_days=start.approved_days + len(steps),
        best_day=max(start.best_day, max(steps, default=0)),
        runs=runs,
    )


def seed_of(row: Any, thresholds: Sequence[int]) -> Fold | None:
    """The summary a facts row carries (its `h_*` columns), if it covers `thresholds`."""
    if row.get("h_through") is None:
        return None
    held = row["h_thresholds"] or []
    if not set(thresholds) <= set(held):
        return None
    ends = row["h_latest_end"] or []
    return Fold(
        total_steps=row["h_total"],
        approved_days=row["h_days"],
        best_day=row["h_best"],
        runs={
            t: (longest, length, end)
            for t, longest, length, end in zip(
                held, row["h_longest"] or [], row["h_latest_length"] or [], ends, strict=True
            )
        },
    )

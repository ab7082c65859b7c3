"""Micro-benchmark of the sync's planning step (steps.service.plan_sync) with the anti-cheat rules.

A 7-record batch (the last week, one source, hourly intervals on each) against a snapshot with
28 days of credited history: the hot path's pure-Python part, no database. Compares the rules
as they were before issue 16 item 6 (the first nine, `--before`) with all of them.

    .venv/bin/python bench/plan_sync_rules.py [--before] [--plain] [--high]

--plain: the records carry no intervals. --high: 16,000-17,800 steps a day (every history rule
looks at the history; the usual 8,000-9,800 leave most of them at their first comparison).
"""

from __future__ import annotations

import sys
import timeit
from datetime import UTC, date, datetime, timedelta

from stepcoin.runtime_settings.registry import defaults
from stepcoin.steps import rules, service
from stepcoin.steps.earn_rules import EarnRules
from stepcoin.steps.schemas import StepRecordIn

TODAY = date(2026, 6, 15)


def batch(intervals: bool) -> list[StepRecordIn]:
    out = []
    for back in range(7):
        day = TODAY - timedelta(days=back)
        samples = None
        if intervals:
            base = datetime(day.year, day.month, day.day, tzinfo=UTC)
            samples = [
                {
                    "start": base + timedelta(hours=h),
                    "end": base + timedelta(hours=h + 1),
                    "steps": 400 + 37 * h,
                }
                for h in range(7, 22)
            ]
        out.append(
            StepRecordIn.model_validate(
                {
                    "date": day,
                    "steps": (16_000 if "--high" in sys.argv else 8000) + 300 * back,
                    "source": "healthkit",
                    "device_id": "phone",
                    "intervals": samples,
                }
            )
        )
    return out


def main() -> None:
    if "--before" in sys.argv:
        rules.RULES = rules.RULES[:9]  # the rules before sudden_jump & co.
    records = batch("--plain" not in sys.argv)
    history = {TODAY - timedelta(days=i): 7000 + 97 * (i % 9) for i in range(7, 36)}
    snapshot = service.Snapshot(True, datetime(2025, 1, 1, tzinfo=UTC), "UTC", 1, {}, history)
    settings = defaults()
    earn = EarnRules(())

    def plan() -> None:
        service.plan_sync(records, snapshot, settings, today=TODAY, rules=earn)

    runs = 2000
    best = min(timeit.repeat(plan, number=runs, repeat=7)) / runs
    shape = f"rules={len(rules.RULES)} intervals={'--plain' not in sys.argv}"
    shape += " high" if "--high" in sys.argv else ""
    print(f"{shape}: {best * 1e6:.1f} µs per 7-record plan")


if __name__ == "__main__":
    main()

"""Each anti-cheat rule: one case that fires and one just below its threshold (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from stepcoin.runtime_settings.registry import defaults
from stepcoin.steps import rules
from stepcoin.steps.rules import Interval, OtherSource, RuleContext, StepInput

TODAY = date(2026, 6, 15)
S = defaults()


def ctx(**kw) -> RuleContext:
    base = {"today": TODAY, "account_created": TODAY - timedelta(days=365), "history": {}}
    base.update(kw)
    return RuleContext(**base)


def rec(steps=8000, day=TODAY, source="healthkit", **kw) -> StepInput:
    return StepInput(day=day, steps=steps, source=source, **kw)


def test_hard_daily_maximum():
    limit = S["anticheat.hard_daily_max_steps"]
    hit = rules.hard_daily_maximum(rec(limit + 1), ctx(), S)
    assert hit and hit.code == "over_daily_max" and hit.action == "reject"
    assert hit.observed == limit + 1 and hit.threshold == limit
    assert rules.hard_daily_maximum(rec(limit), ctx(), S) is None


def test_future_day_in_the_users_timezone():
    hit = rules.future_day(rec(day=TODAY + timedelta(days=1)), ctx(), S)
    assert hit and hit.code == "future_day" and hit.action == "reject"
    assert rules.future_day(rec(day=TODAY), ctx(), S) is None


def test_outside_sync_window():
    window = S["anticheat.sync_window_days"]
    hit = rules.outside_sync_window(rec(day=TODAY - timedelta(days=window + 1)), ctx(), S)
    assert hit and hit.code == "outside_sync_window" and hit.threshold == window
    assert rules.outside_sync_window(rec(day=TODAY - timedelta(days=window)), ctx(), S) is None


@pytest.mark.parametrize("action,expected", [("flag", "flag"), ("reject", "reject")])
def test_manual_entry_flag_or_reject_by_setting(action, expected):
    settings = {**S, "anticheat.manual_entry_action": action}
    hit = rules.manual_entry(rec(manual=True), ctx(), settings)
    assert hit and hit.action == expected
    assert rules.manual_entry(rec(source="manual"), ctx(), settings) is not None
    assert rules.manual_entry(rec(), ctx(), settings) is None
    allowed = {**S, "anticheat.manual_entry_action": "allow"}
    assert rules.manual_entry(rec(manual=True), ctx(), allowed) is None


def history(steps: int, days: int = 28) -> dict[date, int]:
    return {TODAY - timedelta(days=i): steps for i in range(1, days + 1)}


def test_above_baseline_fires_above_multiple_of_median_and_floor():
    # median 8,000 x 3 = 24,000 (above the 15,000 floor)
    assert rules.above_baseline(rec(24_001), ctx(history=history(8000)), S).code == "above_baseline"
    assert rules.above_baseline(rec(24_000), ctx(history=history(8000)), S) is None


def test_above_baseline_respects_the_floor_and_needs_history():
    # median 2,000 x 3 = 6,000 < floor 15,000: the floor decides
    assert rules.above_baseline(rec(15_001), ctx(history=history(2000)), S) is not None
    assert rules.above_baseline(rec(15_000), ctx(history=history(2000)), S) is None
    short = history(2000, days=S["anticheat.baseline_min_history_days"] - 1)
    assert rules.above_baseline(rec(90_000), ctx(history=short), S) is None
    # days outside the trailing window and the day itself do not count
    old = {TODAY - timedelta(days=40 + i): 1000 for i in range(20)}
    assert rules.above_baseline(rec(90_000), ctx(history=old), S) is None


def _interval(minutes: float, steps: int) -> Interval:
    start = datetime(2026, 6, 15, 8, 0, tzinfo=UTC)
    return Interval(start, start + timedelta(minutes=minutes), steps)


def test_cadence_above_human_limits():
    limit = S["anticheat.max_steps_per_minute"]
    fast = rec(intervals=(_interval(10, limit * 10 + 10),))
    assert rules.cadence(fast, ctx(), S).code == "cadence_too_high"
    ok = rec(intervals=(_interval(10, limit * 10),))
    assert rules.cadence(ok, ctx(), S) is None
    assert rules.cadence(rec(), ctx(), S) is None  # no intervals, no opinion


def test_sources_disagree():
    ratio = S["anticheat.source_disagreement_ratio"]
    others = [OtherSource("google_fit", 5000)]
    fires = rules.sources_disagree(rec(int(5000 * ratio) + 1), ctx(other_sources=others), S)
    assert fires and fires.code == "sources_disagree"
    assert rules.sources_disagree(rec(int(5000 * ratio)), ctx(other_sources=others), S) is None
    # small days never fire, whatever the ratio
    small = [OtherSource("google_fit", 100)]
    assert rules.sources_disagree(rec(4000), ctx(other_sources=small), S) is None


def test_too_many_devices():
    limit = S["anticheat.max_devices_per_day"]
    many = frozenset(f"d{i}" for i in range(limit + 1))
    assert rules.too_many_devices(rec(), ctx(devices=many), S).code == "too_many_devices"
    assert rules.too_many_devices(rec(), ctx(devices=frozenset(list(many)[:limit])), S) is None


def test_new_account_extreme_day():
    limit = S["anticheat.new_account_max_steps"]
    young = ctx(account_created=TODAY - timedelta(days=S["anticheat.new_account_days"] - 1))
    assert rules.new_account_extreme(rec(limit + 1), young, S).code == "new_account_extreme"
    assert rules.new_account_extreme(rec(limit), young, S) is None
    old_enough = ctx(account_created=TODAY - timedelta(days=S["anticheat.new_account_days"]))
    assert rules.new_account_extreme(rec(limit + 1), old_enough, S) is None


def test_decision_combines_hits_and_scores_risk():
    assert rules.evaluate(rec(), ctx(), S).status == "approved"
    flagged = rules.evaluate(rec(manual=True), ctx(), S)
    assert flagged.status == "flagged" and 0 < flagged.risk_score < 100
    assert flagged.reasons == ["manual_entry"]
    rejected = rules.evaluate(rec(200_000, manual=True), ctx(), S)
    assert rejected.status == "rejected" and rejected.risk_score == 100
    assert set(rejected.reasons) == {"over_daily_max", "manual_entry"}
    assert rejected.hits[0].as_json()["threshold"] == S["anticheat.hard_daily_max_steps"]


def test_the_baseline_window_equals_the_day_difference_rule():
    """above_baseline compares dates against the window's bounds; the rule as written: the
    days 1..baseline_days before the record's day, with steps."""
    import random
    import statistics

    rng = random.Random(28)
    s = defaults()
    day = date(2026, 12, 4)
    for _ in range(2000):
        s["anticheat.baseline_days"] = rng.choice([7, 28, 365])
        s["anticheat.baseline_min_history_days"] = rng.choice([1, 7])
        history = {
            day + timedelta(days=rng.randint(-400, 3)): rng.choice([0, rng.randint(1, 20000)])
            for _ in range(rng.randint(0, 40))
        }
        record = StepInput(day=day, steps=rng.randint(0, 60000), source="healthkit")
        ctx = RuleContext(today=day, account_created=day, history=history)
        earlier = [
            steps
            for d, steps in history.items()
            if 0 < (day - d).days <= s["anticheat.baseline_days"] and steps > 0
        ]
        expected = None
        if len(earlier) >= s["anticheat.baseline_min_history_days"]:
            limit = max(
                statistics.median(earlier) * s["anticheat.baseline_multiplier"],
                s["anticheat.baseline_floor_steps"],
            )
            expected = record.steps > limit
        hit = rules.above_baseline(record, ctx, s)
        assert (hit is not None) == bool(expected)

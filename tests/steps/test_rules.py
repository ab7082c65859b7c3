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
    # median 8,000 x the multiplier (6: 48,000, above the 15,000 floor)
    limit = int(8000 * S["anticheat.baseline_multiplier"])
    hit = rules.above_baseline(rec(limit + 1), ctx(history=history(8000)), S)
    assert hit and hit.code == "above_baseline"
    assert rules.above_baseline(rec(limit), ctx(history=history(8000)), S) is None


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
    # no history: also a high day without a baseline (flags; the reject wins)
    assert set(rejected.reasons) == {"over_daily_max", "manual_entry", "high_without_baseline"}
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


# -- the sharper single-walker rules (issue 16, item 6; docs/fair-play.md) ---------------------


def test_sudden_jump_above_own_highest_day_and_twice_the_median():
    # median 8,000 and highest 10,000: limit max(1.4 x 10,000, 2 x 8,000, 10,000) = 16,000
    days = history(8000)
    days[TODAY - timedelta(days=3)] = 10_000
    hit = rules.sudden_jump(rec(16_001), ctx(history=days), S)
    assert hit and hit.code == "sudden_jump" and hit.action == "flag"
    assert hit.observed == 16_001 and hit.threshold == 16_000
    assert rules.sudden_jump(rec(16_000), ctx(history=days), S) is None
    # a walker whose own highs are hikes: a hike-sized day is no jump
    days[TODAY - timedelta(days=5)] = 22_000
    assert rules.sudden_jump(rec(22_000), ctx(history=days), S) is None
    high = 22_000 * S["anticheat.jump_high_multiplier"]  # 30,800
    assert rules.sudden_jump(rec(int(high) - 10), ctx(history=days), S) is None
    assert rules.sudden_jump(rec(int(high) + 10), ctx(history=days), S) is not None


def test_sudden_jump_floor_rank_and_history():
    low = history(2000)
    floor = S["anticheat.jump_floor_steps"]
    assert rules.sudden_jump(rec(floor), ctx(history=low), S) is None
    assert rules.sudden_jump(rec(floor + 1), ctx(history=low), S) is not None
    short = history(2000, days=S["anticheat.baseline_min_history_days"] - 1)
    assert rules.sudden_jump(rec(90_000), ctx(history=short), S) is None
    # rank 2: one slipped-through high day does not lift the limit
    days = history(8000)
    days[TODAY - timedelta(days=2)] = 20_000
    assert rules.sudden_jump(rec(19_000), ctx(history=days), S) is None
    ranked = {**S, "anticheat.jump_high_rank": 2}
    assert rules.sudden_jump(rec(19_000), ctx(history=days), ranked) is not None


def _ramp(start: int, rise: int, days: int = 14, before: int = 6000) -> dict[date, int]:
    """`before` steps for the weeks before, then `days` days rising by `rise` up to yesterday."""
    out = {TODAY - timedelta(days=i): before for i in range(days + 1, 29)}
    for i in range(days, 0, -1):
        out[TODAY - timedelta(days=i)] = start + rise * (days - i)
    return out


def test_steady_climb_new_highs_day_after_day():
    # 8,000 for two weeks, then 8,000 .. 14,500 over two weeks: every day a new high
    days = _ramp(8000, 500, before=8000)
    ratio = S["anticheat.climb_ratio"]
    hit = rules.steady_climb(rec(15_000), ctx(history=days), S)
    assert hit and hit.code == "steady_climb" and hit.action == "flag"
    assert hit.observed == 15_000 and hit.threshold == round(8000 * ratio)
    # not a new high: no climb
    assert rules.steady_climb(rec(14_500), ctx(history=days), S) is None
    # a high day after flat weeks (one new high, not several) is no climb
    flat = history(8000)
    assert rules.steady_climb(rec(15_000), ctx(history=flat), S) is None


def test_steady_climb_needs_enough_highs_and_a_rise_over_the_ratio():
    days = _ramp(8000, 500, before=8000)
    few = {**S, "anticheat.climb_min_highs": 15}
    assert rules.steady_climb(rec(15_000), ctx(history=days), few) is None
    # climbing, but only 1.4x the weeks before (limit 1.5 x 9,000 = 13,500)
    gentle = _ramp(9000, 100, before=9000)
    assert rules.steady_climb(rec(13_500), ctx(history=gentle), S) is None
    assert rules.steady_climb(rec(13_501), ctx(history=gentle), S) is not None


def test_high_without_baseline():
    limit = S["anticheat.no_baseline_max_steps"]
    hit = rules.high_without_baseline(rec(limit + 1), ctx(), S)
    assert hit and hit.code == "high_without_baseline" and hit.threshold == limit
    assert rules.high_without_baseline(rec(limit), ctx(), S) is None
    enough = history(8000, days=S["anticheat.baseline_min_history_days"])
    assert rules.high_without_baseline(rec(limit + 1), ctx(history=enough), S) is None
    thin = history(8000, days=S["anticheat.baseline_min_history_days"] - 1)
    assert rules.high_without_baseline(rec(limit + 1), ctx(history=thin), S) is not None


def test_too_regular_high_days():
    steady = {TODAY - timedelta(days=i): 25_000 + 100 * (i % 3) for i in range(1, 15)}
    hit = rules.too_regular(rec(25_050), ctx(history=steady), S)
    assert hit and hit.code == "too_regular" and hit.action == "flag"
    assert hit.observed < hit.threshold == S["anticheat.regular_max_variation"]
    # people's high days vary
    varied = {TODAY - timedelta(days=i): 15_000 + 3000 * (i % 4) for i in range(1, 15)}
    assert rules.too_regular(rec(18_000), ctx(history=varied), S) is None
    # low days are not judged, nor a window with a low day in it
    floor = S["anticheat.regular_floor_steps"]
    assert rules.too_regular(rec(floor), ctx(history=steady), S) is None
    steady[TODAY - timedelta(days=2)] = floor
    assert rules.too_regular(rec(25_050), ctx(history=steady), S) is None
    assert rules.too_regular(rec(25_000), ctx(history={}), S) is None


def _night(hour: int, steps: int, offset_hours: int = 0, minutes: int = 60) -> Interval:
    from datetime import timezone

    start = datetime(2026, 6, 15, hour, 0, tzinfo=timezone(timedelta(hours=offset_hours)))
    return Interval(start, start + timedelta(minutes=minutes), steps)


def test_night_burst_by_the_phones_clock():
    limit = S["anticheat.night_max_steps_per_minute"]
    fast = rec(intervals=(_night(3, limit * 60 + 60),))
    hit = rules.night_burst(fast, ctx(), S)
    assert hit and hit.code == "night_burst" and hit.threshold == limit
    assert rules.night_burst(rec(intervals=(_night(3, limit * 60),)), ctx(), S) is None
    # the same pace in the day is walking, not a night burst
    assert rules.night_burst(rec(intervals=(_night(9, limit * 60 + 60),)), ctx(), S) is None
    # the hour is the phone's own: 03:00 at UTC+2 is night there
    assert rules.night_burst(rec(intervals=(_night(3, limit * 60 + 60, 2),)), ctx(), S)
    # a short sprint is averaged over an hour
    assert rules.night_burst(rec(intervals=(_night(3, 2000, minutes=10),)), ctx(), S) is None


def test_night_burst_night_may_wrap_midnight():
    settings = {**S, "anticheat.night_start_hour": 23, "anticheat.night_end_hour": 4}
    fast = S["anticheat.night_max_steps_per_minute"] * 60 + 60
    assert rules.night_burst(rec(intervals=(_night(23, fast),)), ctx(), settings) is not None
    assert rules.night_burst(rec(intervals=(_night(2, fast),)), ctx(), settings) is not None
    assert rules.night_burst(rec(intervals=(_night(4, fast),)), ctx(), settings) is None
    assert rules.night_burst(rec(intervals=(_night(12, fast),)), ctx(), settings) is None
    off = {**S, "anticheat.night_start_hour": 5, "anticheat.night_end_hour": 5}
    assert rules.night_burst(rec(intervals=(_night(3, fast),)), ctx(), off) is None


def test_every_new_rule_flags_and_is_in_the_rule_set():
    for rule in (
        rules.sudden_jump,
        rules.steady_climb,
        rules.high_without_baseline,
        rules.too_regular,
        rules.night_burst,
    ):
        assert rule in rules.RULES
    decision = rules.evaluate(rec(30_000), ctx(), S)  # no history: high without baseline
    assert decision.status == "flagged" and decision.reasons == ["high_without_baseline"]


# -- sharper still: intervals, repeated highs, held levels, rising runs, gaps (docs/fair-play.md)


def _hours(total: int, hours: int = 10) -> tuple[Interval, ...]:
    base = datetime(2026, 6, 15, 8, 0, tzinfo=UTC)
    return tuple(
        Interval(base + timedelta(hours=h), base + timedelta(hours=h + 1), total // hours)
        for h in range(hours)
    )


def test_intervals_short_of_the_days_count():
    share = S["anticheat.intervals_min_share"]  # 0.8
    hit = rules.intervals_short(rec(20_000, intervals=_hours(8000)), ctx(), S)
    assert hit and hit.code == "intervals_short" and hit.action == "flag"
    assert hit.observed == 0.4 and hit.threshold == share
    # a few percent missing (a watch's steps merged without their samples) is a phone's noise
    assert rules.intervals_short(rec(20_000, intervals=_hours(16_000)), ctx(), S) is None
    assert rules.intervals_short(rec(20_000, intervals=_hours(15_990)), ctx(), S) is not None
    # a small gap on a small day, or no intervals at all: no opinion
    gap = S["anticheat.intervals_gap_steps"]
    assert rules.intervals_short(rec(gap + 500, intervals=_hours(600)), ctx(), S) is None
    assert rules.intervals_short(rec(20_000), ctx(), S) is None


def _days(values: dict[int, int]) -> dict[date, int]:
    """{days back: steps}"""
    return {TODAY - timedelta(days=back): steps for back, steps in values.items()}


def test_repeated_highs_jumps_on_no_fixed_weekday():
    # a low walker (3,000 a day) with big days 3 and 8 days ago: this day is the third run
    base = {back: 3000 for back in range(1, 29)}
    jumps = _days({**base, 3: 9000, 8: 9000})
    hit = rules.repeated_highs(rec(9000), ctx(history=jumps), S)
    assert hit and hit.code == "repeated_highs" and hit.action == "flag"
    assert hit.observed == 3 and hit.threshold == S["anticheat.highs_min_runs"]
    # one earlier big day: two runs, a walker's rare big days
    assert rules.repeated_highs(rec(9000), ctx(history=_days({**base, 3: 9000})), S) is None
    # not far above the median (1.8 x 3,000 = 5,400; the floor is 6,000)
    assert rules.repeated_highs(rec(6000), ctx(history=jumps), S) is None


def test_repeated_highs_a_holiday_is_one_run_and_a_hikers_saturday_is_a_saturday():
    base = {back: 3000 for back in range(1, 29)}
    holiday = _days({**base, 1: 9000, 2: 9000, 3: 9000, 5: 9000})  # day 4: no record
    assert rules.repeated_highs(rec(9000), ctx(history=holiday), S) is None
    # big days every 7 days: this weekday's usual, not a surprise
    hikes = _days({**base, 7: 9000, 14: 9000, 21: 9000, 28: 9000})
    assert rules.repeated_highs(rec(9000), ctx(history=hikes), S) is None
    # the same big days on other weekdays are
    scattered = _days({**base, 2: 9000, 6: 9000, 11: 9000})
    assert rules.repeated_highs(rec(9000), ctx(history=scattered), S) is not None


def test_held_level_a_high_count_held_for_days():
    held = _days({1: 20_100, 2: 19_800, 3: 20_300, 5: 19_900, 6: 24_000})
    hit = rules.held_level(rec(20_000), ctx(history=held), S)
    assert hit and hit.code == "held_level" and hit.action == "flag"
    assert hit.observed == 4 and hit.threshold == S["anticheat.held_min_days"]
    # three days within 4 %: not enough
    three = _days({1: 20_100, 2: 19_800, 3: 20_300, 5: 23_000})
    assert rules.held_level(rec(20_000), ctx(history=three), S) is None
    # low days are not judged
    floor = S["anticheat.held_floor_steps"]
    low = _days({back: floor for back in range(1, 8)})
    assert rules.held_level(rec(floor), ctx(history=low), S) is None


def test_rising_run_a_count_dialled_up_day_after_day():
    # 7,000 for three weeks, then 6 days rising from 8,000 to 10,500 (a missing day skipped)
    days = _days({back: 7000 for back in range(8, 29)})
    days.update(_days({7: 8000, 6: 8500, 5: 9000, 3: 9500, 2: 10_000, 1: 10_500}))
    hit = rules.rising_run(rec(11_000), ctx(history=days), S)
    assert hit and hit.code == "rising_run" and hit.action == "flag"
    # the run: the last 7,000 day and the six rising ones
    assert hit.observed == 7 and hit.threshold == S["anticheat.rising_min_days"]
    # not above yesterday: no run
    assert rules.rising_run(rec(10_500), ctx(history=days), S) is None
    # one dip breaks the run (5 days)
    dipped = {**days, TODAY - timedelta(days=6): 7900}
    assert rules.rising_run(rec(11_000), ctx(history=dipped), S) is None
    # a run, but not far enough above the weeks before (1.45 x 7,600 = 11,020)
    slow = {**days, **_days({back: 7600 for back in range(8, 29)})}
    assert rules.rising_run(rec(11_020), ctx(history=slow), S) is None
    assert rules.rising_run(rec(11_021), ctx(history=slow), S) is not None


def test_high_after_gap():
    limit = S["anticheat.no_baseline_max_steps"]
    # a month's baseline, but only 6 of the last 14 days credited
    month = _days({**{back: 8000 for back in range(15, 29)}, 1: 8000, 2: 8000, 4: 8000})
    month.update(_days({6: 8000, 9: 8000, 12: 8000}))
    hit = rules.high_after_gap(rec(limit + 1), ctx(history=month), S)
    assert hit and hit.code == "high_after_gap" and hit.action == "flag"
    assert hit.observed == 6 and hit.threshold == S["anticheat.gap_min_days"]
    assert rules.high_after_gap(rec(limit), ctx(history=month), S) is None
    seven = {**month, TODAY - timedelta(days=13): 8000}
    assert rules.high_after_gap(rec(limit + 1), ctx(history=seven), S) is None
    # a day near the usual of its own weekday passes (a hiker back with the phone, hiking)
    weekday = _days({back: 22_000 for back in (21, 28)})
    hikes = {**month, **weekday}
    usual = S["anticheat.gap_weekday_multiplier"]
    assert rules.high_after_gap(rec(int(22_000 * usual) - 10), ctx(history=hikes), S) is None
    assert rules.high_after_gap(rec(int(22_000 * usual) + 10), ctx(history=hikes), S) is not None
    # no baseline at all is high_without_baseline's case, not this rule's; nor is a short
    # record (fewer than gap_min_days in the whole window): nothing has thinned out
    assert rules.high_after_gap(rec(limit + 1), ctx(), S) is None
    short = {**S, "anticheat.baseline_min_history_days": 1}
    few = _days({1: 8000, 2: 8000, 3: 8000})
    assert rules.high_after_gap(rec(limit + 1), ctx(history=few), short) is None


def test_the_sharper_rules_are_in_the_rule_set_and_weighted():
    for rule in (
        rules.intervals_short,
        rules.repeated_highs,
        rules.held_level,
        rules.rising_run,
        rules.high_after_gap,
    ):
        assert rule in rules.RULES
    codes = {"intervals_short", "repeated_highs", "held_level", "rising_run", "high_after_gap"}
    assert codes <= set(rules.RISK_WEIGHTS)

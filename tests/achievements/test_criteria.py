"""The criteria shapes and the pure rules (no database)."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from stepcoin.achievements.criteria import (
    StreakFacts,
    UserFacts,
    current_streak,
    is_met,
    parse_criteria,
    progress,
    streak_thresholds,
)


def facts(**kwargs) -> UserFacts:
    return UserFacts(user_id="u", **kwargs)


def test_every_seeded_achievement_has_valid_criteria():
    seed = importlib.import_module("stepcoin.migrations.versions.0005_engagement")
    codes = [code for code, *_ in seed.ACHIEVEMENTS_SEED]
    assert len(codes) == len(set(codes)) >= 5
    kinds = {parse_criteria(criteria).kind for _, _, _, criteria, _ in seed.ACHIEVEMENTS_SEED}
    assert kinds == {
        "single_day_steps",
        "total_steps",
        "streak",
        "first_redemption",
        "approved_days",
    }


@pytest.mark.parametrize(
    "value",
    [
        {"kind": "streak", "streak_days": 7, "min_steps": 5000.0},
        {"kind": "streak", "streak_days": True, "min_steps": 5000},
        {"kind": "total_steps", "total_steps": -1},
        {"kind": "single_day_steps"},
        {"kind": "Single_Day_Steps", "min_steps": 1},
        [],
        None,
    ],
)
def test_malformed_criteria_are_refused(value):
    with pytest.raises(ValidationError):
        parse_criteria(value)


def test_thresholds_are_met_exactly():
    assert not is_met(
        parse_criteria({"kind": "single_day_steps", "min_steps": 10}), facts(best_day=9)
    )
    assert is_met(parse_criteria({"kind": "single_day_steps", "min_steps": 10}), facts(best_day=10))
    assert not is_met(
        parse_criteria({"kind": "total_steps", "total_steps": 10}), facts(total_steps=9)
    )
    assert is_met(parse_criteria({"kind": "approved_days", "days": 2}), facts(approved_days=2))
    streak = parse_criteria({"kind": "streak", "streak_days": 3, "min_steps": 100})
    assert not is_met(streak, facts(streaks={100: StreakFacts(2, 2, date(2026, 1, 1))}))
    assert not is_met(streak, facts(streaks={200: StreakFacts(5, 5, date(2026, 1, 1))}))
    assert is_met(streak, facts(streaks={100: StreakFacts(3, 1, date(2026, 1, 9))}))
    assert is_met(parse_criteria({"kind": "first_redemption"}), facts(redeemed=True))


def test_the_current_streak_ends_today_or_yesterday():
    run = StreakFacts(longest=9, latest_length=4, latest_end=date(2026, 4, 10))
    assert current_streak(run, date(2026, 4, 10)) == 4
    assert current_streak(run, date(2026, 4, 11)) == 4
    assert current_streak(run, date(2026, 4, 12)) == 0
    assert current_streak(None, date(2026, 4, 12)) == 0


def test_the_current_streak_uses_the_users_time_zone():
    """At 05:00 UTC on April 12 it is still April 11 in Honolulu (UTC-10): a run ending on
    April 10 is alive there, and already broken for a walker on UTC."""
    streak = parse_criteria({"kind": "streak", "streak_days": 7, "min_steps": 5000})
    run = {5000: StreakFacts(longest=4, latest_length=4, latest_end=date(2026, 4, 10))}
    now = datetime(2026, 4, 12, 5, 0, tzinfo=UTC)
    honolulu = progress(
        streak, facts(timezone="Pacific/Honolulu", streaks=run), unlocked=False, now=now
    )
    utc = progress(streak, facts(timezone="UTC", streaks=run), unlocked=False, now=now)
    assert honolulu is not None and honolulu.current == 4
    assert utc is not None and utc.current == 0


def test_progress_is_capped_and_complete_once_unlocked():
    total = parse_criteria({"kind": "total_steps", "total_steps": 1000})
    assert progress(total, facts(total_steps=400), unlocked=False).current == 400
    assert progress(total, facts(total_steps=4000), unlocked=False).current == 1000
    assert progress(total, facts(total_steps=10), unlocked=True).current == 1000
    assert progress(parse_criteria({"kind": "first_redemption"}), facts(), unlocked=False) is None


def test_streak_thresholds_are_distinct_and_sorted():
    criteria = [
        parse_criteria({"kind": "streak", "streak_days": 7, "min_steps": 5000}),
        parse_criteria({"kind": "streak", "streak_days": 30, "min_steps": 5000}),
        parse_criteria({"kind": "streak", "streak_days": 3, "min_steps": 1000}),
        parse_criteria({"kind": "total_steps", "total_steps": 5}),
    ]
    assert streak_thresholds(criteria) == [1000, 5000]

"""The day settlement: one source counts, approved versions pay, reviews hold (no database)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from stepcoin.steps.earn_rules import FIRST_RULE
from stepcoin.steps.settlement import (
    SOURCE_TRUST,
    DayRecord,
    DaySettlement,
    EarnRule,
    coins_for,
    settle_day,
)

S = FIRST_RULE  # 10 coins per 1,000 steps, no step cap, 200 coins a day


def test_coins_rate_floor_and_cap():
    assert coins_for(999, S) == 9
    assert coins_for(8000, S) == 80
    assert coins_for(1_000_000, S) == S.daily_coin_cap
    assert coins_for(0, S) == 0


def test_steps_beyond_the_step_cap_earn_nothing_then_the_coin_cap():
    rule = EarnRule(coins_per_1000_steps=10, daily_step_cap=12_000, daily_coin_cap=150)
    assert coins_for(11_999, rule) == 119
    assert coins_for(12_000, rule) == 120
    assert coins_for(50_000, rule) == 120  # the step cap binds first
    assert coins_for(50_000, EarnRule(10, 20_000, 150)) == 150  # the coin cap binds first
    assert coins_for(9_000, EarnRule(10, 0, 150)) == 0
    day = settle_day([DayRecord("healthkit", 30_000, 8_000, "flagged")], rule)
    assert (day.coins_paid, day.coins_pending) == (80, 40)  # held: 120 (capped) - 80


def test_sources_are_not_added_best_supported_counts():
    day = settle_day(
        [
            DayRecord("google_fit", 9000, 9000, "approved"),
            DayRecord("healthkit", 8000, 8000, "approved"),
        ],
        S,
    )
    assert day.credited_source == "healthkit"
    assert day.coins_paid == 80


def test_among_equal_sources_samples_then_count_decide():
    day = settle_day(
        [
            DayRecord("healthkit", 9000, 9000, "approved"),
            DayRecord("health_connect", 7000, 7000, "approved", has_intervals=True),
        ],
        S,
    )
    assert day.credited_source == "health_connect"
    plain = settle_day(
        [
            DayRecord("healthkit", 9000, 9000, "approved"),
            DayRecord("health_connect", 7000, 7000, "approved"),
        ],
        S,
    )
    assert plain.credited_source == "healthkit"


def test_flagged_newer_version_keeps_the_approved_pay_and_holds_the_rest():
    day = settle_day([DayRecord("healthkit", 30000, 8000, "flagged")], S)
    assert day.coins_paid == 80
    assert day.coins_pending == 200 - 80


def test_deleted_and_rejected_new_versions():
    assert (
        settle_day([DayRecord("healthkit", 8000, 8000, "approved", deleted=True)], S).coins_paid
        == 0
    )
    rejected_newer = settle_day([DayRecord("healthkit", 150000, 8000, "rejected")], S)
    assert rejected_newer.coins_paid == 80 and rejected_newer.coins_pending == 0


def test_manual_entry_is_trusted_least():
    day = settle_day(
        [
            DayRecord("manual", 12000, 12000, "approved"),
            DayRecord("google_fit", 5000, 5000, "approved"),
        ],
        S,
    )
    assert (day.credited_source, day.coins_paid) == ("google_fit", 50)


def test_a_first_version_in_review_pays_nothing_and_holds_its_worth():
    day = settle_day([DayRecord("healthkit", 12000, 0, "flagged")], S)
    assert (day.credited_source, day.coins_paid, day.coins_pending) == (None, 0, 120)


def test_several_records_in_review_hold_the_largest_beyond_what_is_paid():
    day = settle_day(
        [
            DayRecord("healthkit", 6000, 6000, "approved"),
            DayRecord("google_fit", 9000, 0, "flagged"),
            DayRecord("health_connect", 14000, 0, "flagged"),
        ],
        S,
    )
    assert (day.coins_paid, day.coins_pending) == (60, 140 - 60)


def test_a_review_worth_less_than_what_is_paid_holds_nothing():
    day = settle_day(
        [
            DayRecord("healthkit", 15000, 15000, "approved"),
            DayRecord("google_fit", 5000, 0, "flagged"),
        ],
        S,
    )
    assert (day.coins_paid, day.coins_pending) == (150, 0)


def test_a_rejected_first_version_pays_and_holds_nothing():
    day = settle_day([DayRecord("healthkit", 150000, 0, "rejected")], S)
    assert day == settle_day([], S)
    assert (day.credited_source, day.coins_paid, day.coins_pending) == (None, 0, 0)


def test_a_deleted_record_in_review_holds_nothing():
    day = settle_day([DayRecord("healthkit", 12000, 0, "flagged", deleted=True)], S)
    assert day.coins_pending == 0


records = st.lists(
    st.builds(
        DayRecord,
        source=st.sampled_from(["healthkit", "health_connect", "google_fit", "manual"]),
        steps=st.integers(0, 200_000),
        approved_steps=st.integers(0, 200_000),
        status=st.sampled_from(["approved", "flagged", "rejected"]),
        deleted=st.booleans(),
        has_intervals=st.booleans(),
    ),
    max_size=6,
)


@given(records)
def test_settlement_invariants(day_records):
    day = settle_day(day_records, S)
    cap = S.daily_coin_cap
    assert 0 <= day.coins_paid <= cap
    assert 0 <= day.coins_pending <= cap - day.coins_paid
    live_paid = [r.approved_steps for r in day_records if not r.deleted and r.approved_steps > 0]
    if not live_paid:
        assert day.coins_paid == 0 and day.credited_source is None
    else:
        # the credited steps are one source's approved steps, never a sum
        assert day.credited_steps in live_paid
    assert settle_day(list(reversed(day_records)), S).coins_paid == day.coins_paid


def _settle_reference(records, rule):
    """settle_day before issue 13 made it one pass: the rule as written in docs/steps.md."""
    live = [r for r in records if not r.deleted]
    paid_from = [r for r in live if r.approved_steps > 0]
    best = max(
        paid_from,
        key=lambda r: (SOURCE_TRUST.get(r.source, 0), int(r.has_intervals), r.approved_steps),
        default=None,
    )
    coins_paid = coins_for(best.approved_steps, rule) if best else 0
    in_review = [coins_for(r.steps, rule) for r in live if r.status == "flagged"]
    return DaySettlement(
        credited_source=best.source if best else None,
        credited_steps=best.approved_steps if best else 0,
        coins_paid=coins_paid,
        coins_pending=max(0, max(in_review, default=0) - coins_paid),
    )


def test_the_one_pass_settlement_equals_the_reference():
    rng = random.Random(13)
    for _ in range(5000):
        rule = rng.choice([S, EarnRule(7, 15_000, 90), EarnRule(0, None, 200)])
        records = [
            DayRecord(
                rng.choice(["healthkit", "health_connect", "google_fit", "manual", "other"]),
                rng.choice([0, 5000, rng.randint(0, 40000)]),
                rng.choice([0, 5000, rng.randint(0, 40000)]),
                rng.choice(["approved", "flagged", "rejected"]),
                rng.random() < 0.2,
                rng.random() < 0.3,
            )
            for _ in range(rng.randint(0, 5))
        ]
        assert settle_day(records, rule) == _settle_reference(records, rule), records

"""The day settlement: one source counts, approved versions pay, reviews hold (no database)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stepcoin.runtime_settings.registry import defaults
from stepcoin.steps.settlement import DayRecord, coins_for, settle_day

S = defaults()  # 10 coins per 1,000 steps, cap 200


def test_coins_rate_floor_and_cap():
    assert coins_for(999, S) == 9
    assert coins_for(8000, S) == 80
    assert coins_for(1_000_000, S) == S["coins.daily_cap"]
    assert coins_for(0, S) == 0


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
    cap = S["coins.daily_cap"]
    assert 0 <= day.coins_paid <= cap
    assert 0 <= day.coins_pending <= cap - day.coins_paid
    live_paid = [r.approved_steps for r in day_records if not r.deleted and r.approved_steps > 0]
    if not live_paid:
        assert day.coins_paid == 0 and day.credited_source is None
    else:
        # the credited steps are one source's approved steps, never a sum
        assert day.credited_steps in live_paid
    assert settle_day(list(reversed(day_records)), S).coins_paid == day.coins_paid

"""The test run's guard against a day changing under a test (tests/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import MIDNIGHT_MARGIN, until_clear_of_midnight


def test_a_test_far_from_midnight_starts_at_once() -> None:
    assert until_clear_of_midnight(datetime(2026, 12, 7, 12, 0, tzinfo=UTC)) == 0.0
    edge = datetime(2026, 12, 7, 23, 59, 59, tzinfo=UTC) - MIDNIGHT_MARGIN
    assert until_clear_of_midnight(edge) == 0.0


def test_a_test_close_to_midnight_waits_for_the_new_day() -> None:
    wait = until_clear_of_midnight(datetime(2026, 12, 7, 23, 59, 50, tzinfo=UTC))
    assert wait == 10.5
    just_before = datetime(2026, 12, 31, 23, 59, 59, 900000, tzinfo=UTC)
    assert 0.5 < until_clear_of_midnight(just_before) < 0.7  # across a year's end too

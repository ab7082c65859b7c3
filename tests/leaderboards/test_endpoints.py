"""GET /v1/leaderboards/{period}: authentication, validation, not found, an empty board."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from stepcoin.leaderboards.periods import (
    ALL_TIME_START,
    display_name,
    period_end,
    period_start,
    previous_start,
)
from tests.leaderboards.helpers import board, rebuild, walker
from tests.steps.helpers import today


async def test_anonymous_is_401(client):
    response = await client.get("/v1/leaderboards/daily")
    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"


async def test_a_board_before_its_first_build_is_empty(client, engine):
    me = await walker(client, engine, "Early Bird", 5000)
    body = await board(client, me["token"], "weekly")
    assert body == {
        "period": "weekly",
        "period_start": period_start("weekly", today()).isoformat(),
        "computed_at": None,
        "final": False,
        "entries": [],
        "me": None,
        "neighbours": [],
    }


@pytest.mark.parametrize(
    ("period", "params", "code"),
    [
        ("yearly", {}, "validation_error"),
        ("daily", {"limit": 101}, "validation_error"),
        ("daily", {"limit": 0}, "validation_error"),
        ("daily", {"period_start": "yesterday"}, "validation_error"),
        ("weekly", {"period_start": "2026-11-25"}, "invalid_period_start"),  # a Wednesday
        ("monthly", {"period_start": "2026-11-02"}, "invalid_period_start"),
        ("all_time", {"period_start": "2026-01-01"}, "invalid_period_start"),
    ],
)
async def test_invalid_requests_are_422(client, engine, period, params, code):
    me = await walker(client, engine, "Val Idator")
    response = await board(client, me["token"], period, status=422, **params)
    assert response["code"] == code
    if code == "invalid_period_start":
        assert "starts on" in response["detail"]


async def test_a_board_that_was_never_built_is_404(app, client, engine):
    me = await walker(client, engine, "Not Found", 100)
    await rebuild(app)
    last_week = previous_start("weekly", period_start("weekly", today()))
    response = await board(
        client, me["token"], "weekly", status=404, period_start=last_week.isoformat()
    )
    assert response["code"] == "board_not_found"
    future = period_start("monthly", today() + timedelta(days=40))
    await board(client, me["token"], "monthly", status=404, period_start=future.isoformat())
    current = await board(client, me["token"], "all_time", period_start=ALL_TIME_START.isoformat())
    assert current["me"] == {"rank": 1, "total_steps": 100}


@pytest.mark.parametrize(
    ("full_name", "shown"),
    [
        ("Ada Lovelace", "Ada L."),
        ("  grace   brewster  hopper ", "grace H."),
        ("Plato", "Plato"),
        ("ada@example.com", "Walker"),
        ("Ada ada@example.com", "Ada"),
        ("", "Walker"),
        (None, "Walker"),
        ("Émile zola", "Émile Z."),
    ],
)
def test_display_names_are_first_name_and_initial_never_email(full_name, shown):
    assert display_name(full_name) == shown


def test_periods_are_utc_calendar_periods_with_iso_weeks():
    sunday, monday = date(2026, 11, 29), date(2026, 11, 30)
    assert period_start("weekly", sunday) == date(2026, 11, 23)
    assert period_start("weekly", monday) == monday
    assert period_end("weekly", monday) == date(2026, 12, 6)
    assert period_start("monthly", date(2026, 2, 28)) == date(2026, 2, 1)
    assert period_end("monthly", date(2028, 2, 1)) == date(2028, 2, 29)
    assert period_end("monthly", date(2026, 12, 1)) == date(2026, 12, 31)
    assert previous_start("monthly", date(2026, 1, 1)) == date(2025, 12, 1)
    assert previous_start("weekly", monday) == date(2026, 11, 23)
    assert period_start("all_time", monday) == ALL_TIME_START
    assert period_end("all_time", ALL_TIME_START) is None

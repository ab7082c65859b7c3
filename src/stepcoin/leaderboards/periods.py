"""Board periods and display names: plain functions, no I/O.

Periods are UTC calendar periods: "today" is the UTC date, weeks are ISO weeks (Monday to
Sunday), months are calendar months. A board counts the step_days whose recorded_date (the
user's local day) falls inside the period, so a walker's Tuesday counts on Tuesday's board
wherever they live. The all-time board has one fixed period_start, ALL_TIME_START.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

Period = Literal["daily", "weekly", "monthly", "all_time"]
PERIODS: tuple[Period, ...] = ("daily", "weekly", "monthly", "all_time")
CLOSING_PERIODS: tuple[Period, ...] = ("daily", "weekly", "monthly")
ALL_TIME_START = date(1970, 1, 1)


@dataclass(frozen=True, slots=True, order=True)
class Board:
    period: Period
    start: date

    @property
    def end(self) -> date | None:
        """The last day counted (inclusive); None for all time."""
        return period_end(self.period, self.start)

    def closes_at(self) -> datetime | None:
        """The UTC instant after the last day; None for all time (it never closes)."""
        end = self.end
        if end is None:
            return None
        return datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def period_start(period: Period, day: date) -> date:
    """The first day of the period that contains `day`."""
    if period == "daily":
        return day
    if period == "weekly":
        return day - timedelta(days=day.weekday())
    if period == "monthly":
        return day.replace(day=1)
    return ALL_TIME_START


def period_end(period: Period, start: date) -> date | None:
    if period == "daily":
        return start
    if period == "weekly":
        return start + timedelta(days=6)
    if period == "monthly":
        return _next_month(start) - timedelta(days=1)
    return None


def previous_start(period: Period, start: date) -> date:
    """The start of the period before the one starting at `start` (not for all time)."""
    if period == "daily":
        return start - timedelta(days=1)
    if period == "weekly":
        return start - timedelta(days=7)
    return (start - timedelta(days=1)).replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def is_period_start(period: Period, day: date) -> bool:
    return period_start(period, day) == day


def utc_today(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(UTC).date()


def open_boards(now: datetime | None = None) -> list[Board]:
    """The boards of the periods containing today (UTC)."""
    today = utc_today(now)
    return [Board(p, period_start(p, today)) for p in PERIODS]


def previous_boards(now: datetime | None = None) -> list[Board]:
    """The boards of the periods just before the open ones (yesterday, last week, last month)."""
    today = utc_today(now)
    return [Board(p, previous_start(p, period_start(p, today))) for p in CLOSING_PERIODS]


def display_name(full_name: str | None) -> str:
    """ "Ada Lovelace" -> "Ada L."; one word stays as it is. Never an email: a word with an @
    is dropped, and nothing left gives "Walker"."""
    words = [w for w in (full_name or "").split() if "@" not in w]
    if not words:
        return "Walker"
    first = words[0][:40]
    if len(words) == 1:
        return first
    return f"{first} {words[-1][0].upper()}."

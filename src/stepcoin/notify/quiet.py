"""Quiet hours in the walker's own time zone (pure: no database, tested in microseconds)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_QUIET_START = time(22, 0)
DEFAULT_QUIET_END = time(7, 0)


def zone(name: str | None) -> ZoneInfo:
    """The named IANA zone; an unknown or empty name is UTC."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def quiet_until(now: datetime, tz: ZoneInfo, start: time, end: time) -> datetime | None:
    """When the quiet hours that hold at `now` end (UTC), or None when it is not quiet.

    start == end means no quiet hours; start > end spans midnight (22:00-07:00)."""
    if start == end:
        return None
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        quiet = start <= clock < end
        end_day = local.date()
    else:
        quiet = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not quiet:
        return None
    ends = datetime.combine(end_day, end, tzinfo=tz)
    return ends.astimezone(UTC)


def next_local_midnight(now: datetime, tz: ZoneInfo) -> datetime:
    """The end of the walker's local day (a streak reminder expires then)."""
    local = now.astimezone(tz)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz)
    return midnight.astimezone(UTC)


def local_day_start(now: datetime, tz: ZoneInfo) -> datetime:
    """The start of the walker's local day, in UTC (the daily cap counts from it)."""
    local = now.astimezone(tz)
    return datetime.combine(local.date(), time(0), tzinfo=tz).astimezone(UTC)

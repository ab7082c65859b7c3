"""When each scheduled backup activity is due: pure functions of the clock, the runtime
settings (`backup.*`) and what the catalogue says happened last."""

from __future__ import annotations

import calendar
from datetime import datetime, time, timedelta
from typing import Any

from stepcoin.backup.catalogue import Catalogue, parse_time

ACTIVITIES = ("full", "incremental", "cold_copy", "region_copy", "prune")


def last_daily(now: datetime, hour: int) -> datetime:
    """The most recent HH:00 UTC at or before now."""
    today = datetime.combine(now.date(), time(hour), tzinfo=now.tzinfo)
    return today if today <= now else today - timedelta(days=1)


def last_weekly(now: datetime, iso_weekday: int, hour: int) -> datetime:
    moment = last_daily(now, hour)
    while moment.isoweekday() != iso_weekday:
        moment -= timedelta(days=1)
    return moment


def last_monthly(now: datetime, day: int, hour: int) -> datetime:
    """The most recent <day>-of-month at HH:00 (the 31st means the month's last day)."""
    year, month = now.year, now.month
    for _ in range(2):
        last_day = calendar.monthrange(year, month)[1]
        moment = datetime(year, month, min(day, last_day), hour, tzinfo=now.tzinfo)
        if moment <= now:
            return moment
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    raise AssertionError("unreachable")


def due_activities(
    now: datetime,
    values: dict[str, Any],
    catalogue: Catalogue,
    *,
    has_cold: bool,
    has_region: bool,
    incremental_supported: bool,
) -> list[str]:
    """What to do now, in order. An activity that failed waits `backup.retry_minutes`."""
    retry = timedelta(minutes=int(values["backup.retry_minutes"]))

    def last(activity: str, key: str) -> datetime | None:
        value = catalogue.runs.get(activity, {}).get(key)
        return parse_time(value) if value else None

    def waiting_after_failure(activity: str) -> bool:
        attempt, success = last(activity, "last_attempt"), last(activity, "last_success")
        failed = attempt is not None and (success is None or attempt > success)
        return failed and attempt is not None and now - attempt < retry

    def not_done_since(activity: str, moment: datetime) -> bool:
        success = last(activity, "last_success")
        return (success is None or success < moment) and not waiting_after_failure(activity)

    latest = catalogue.latest(verified_only=True)
    full_at = last_daily(now, int(values["backup.full_hour_utc"]))
    due = []
    has_full = any(b.type == "full" and b.verified for b in catalogue.backups)
    if not_done_since("full", full_at) or (not has_full and not waiting_after_failure("full")):
        due.append("full")
    elif incremental_supported and latest is not None:
        interval = timedelta(minutes=int(values["backup.incremental_interval_minutes"]))
        if latest.stopped_at <= now - interval and not waiting_after_failure("incremental"):
            due.append("incremental")
    copy_hour = int(values["backup.copy_hour_utc"])
    weekly = last_weekly(now, int(values["backup.cold_copy_weekday"]), copy_hour)
    if has_cold and not_done_since("cold_copy", weekly):
        due.append("cold_copy")
    monthly = last_monthly(now, int(values["backup.region_copy_day"]), copy_hour)
    if has_region and not_done_since("region_copy", monthly):
        due.append("region_copy")
    if not_done_since("prune", full_at):
        due.append("prune")
    return due

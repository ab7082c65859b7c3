"""The streak-at-risk reminder (issue 18): a few hours before a walker's local midnight, a push
to those who met the daily step goal yesterday and have not met it today.

The goal is the walker's own (`daily_step_goal`, PATCH /v1/me), else
`notify.default_daily_step_goal`; the hour is `notify.streak_hours_before_midnight`. One
reminder per walker and local day (its dedupe key), expiring at local midnight: quiet hours
that last past midnight drop it, and a run repeated after a crash writes nothing twice."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.db import Database, session_scope
from stepcoin.notify import service as notify
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.users import service as users

logger = logging.getLogger("stepcoin.steps")
_KEY = "streak:"  # + the local day: one reminder per walker and day

# a day's steps: the best-supported source's count, as the sync settles it (any status: the
# walker walked them, whether or not a review is pending)
_BEHIND = text(
    """
    SELECT c.user_id FROM unnest(CAST(:users AS uuid[]), CAST(:days AS date[]),
                                 CAST(:goals AS integer[])) AS c(user_id, day, goal)
    WHERE coalesce((SELECT max(r.steps) FROM step_records r WHERE r.user_id = c.user_id
                    AND r.recorded_date = c.day AND NOT r.is_deleted), 0) < c.goal
      AND coalesce((SELECT max(r.steps) FROM step_records r WHERE r.user_id = c.user_id
                    AND r.recorded_date = c.day - 1 AND NOT r.is_deleted), 0) >= c.goal
    """
)


async def remind(session: AsyncSession, now: datetime) -> int:
    hours = int(await runtime_settings.get(session, "notify.streak_hours_before_midnight"))
    default = int(await runtime_settings.get(session, "notify.default_daily_step_goal"))
    near = await notify.walkers_near_midnight(session, now, hours, unless_key=_KEY)
    if not near:
        return 0
    goals = await users.daily_step_goals(session, [n.user_id for n in near], default)
    behind = {
        r.user_id
        for r in await session.execute(
            _BEHIND,
            {
                "users": [n.user_id for n in near],
                "days": [n.local_day for n in near],
                "goals": [goals.get(n.user_id, default) for n in near],
            },
        )
    }
    notes = [
        notify.Note(
            n.user_id,
            "streak",
            "Keep your streak going",
            f"{goals[n.user_id]:,} steps before midnight keep your streak alive.",
            f"{_KEY}{n.local_day.isoformat()}",
            {"date": n.local_day.isoformat(), "goal": goals[n.user_id]},
            collapse_key="streak",
            expires_at=n.midnight,
        )
        for n in near
        if n.user_id in behind and n.midnight - now <= timedelta(hours=hours)
    ]
    return len(await notify.notify_many(session, notes))


async def send_streak_reminders(database: Database, now: datetime | None = None) -> int:
    """One run (the periodic job): write today's reminders; their pushes are jobs of their own."""
    session: AsyncSession
    async with session_scope(database) as session:
        written = await remind(session, now or datetime.now(UTC))
    if written:
        logger.info("streak reminders written", extra={"count": written})
    return written

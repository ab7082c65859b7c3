"""Leaderboard rules: which boards to build when, how they follow walkers, and the board as
the app sees it.

A scheduled job (every 15 seconds) first builds in full the boards that need it: a board never
built yet (a new period), a closed board past its grace (its final snapshot), and every live
board once `leaderboards.rebuild_interval_minutes` have passed (a safety net; default a day).
Then it refreshes the live boards (built, not final) from the change log: only the walkers
whose days changed since the last refresh are recomputed (repository.refresh), so a sync
shows in the boards within about 15 seconds and a refresh costs in proportion to the walkers
who synced. A closed period stays live for `leaderboards.finalize_after_hours` (late time
zones and late syncs still count), then gets one last build that makes it final: a snapshot
that is never rebuilt nor refreshed and stays readable with ?period_start until the retention
removes it. See docs/engagement.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.db import Database, session_scope
from stepcoin.errors import InvalidInput, NotFound, account_gone
from stepcoin.leaderboards import repository
from stepcoin.leaderboards.periods import (
    Board,
    Period,
    display_name,
    is_period_start,
    open_boards,
    period_start,
    previous_boards,
    utc_today,
)
from stepcoin.leaderboards.repository import BuildInfo, RebuildStats, RefreshStats
from stepcoin.runtime_settings.service import runtime_settings

NEIGHBOURS = 2


def plan_rebuilds(
    now: datetime,
    known: Mapping[Board, BuildInfo],
    *,
    interval_minutes: int,
    finalize_after_hours: int,
) -> list[tuple[Board, bool]]:
    """The boards due now, each with whether this build makes it final.

    Open boards and closed ones still within the grace period are due when never built or
    built `interval_minutes` ago; a closed board past the grace period is built once more as
    final (also when it was never built: the first start after a period gets its snapshot).
    """
    interval = timedelta(minutes=interval_minutes)
    grace = timedelta(hours=finalize_after_hours)
    candidates = set(open_boards(now)) | set(previous_boards(now))
    candidates |= {b for b, info in known.items() if not info.is_final and b.period != "all_time"}
    plan = []
    for board in sorted(candidates):
        info = known.get(board)
        if info is not None and info.is_final:
            continue
        closes_at = board.closes_at()
        if closes_at is not None and now >= closes_at + grace:
            plan.append((board, True))
        elif info is None or now - info.computed_at >= interval:
            plan.append((board, False))
    return plan


async def rebuild(session: AsyncSession, plan: list[tuple[Board, bool]]) -> RebuildStats | None:
    """Rebuild the planned boards in the caller's transaction (one scan of step_days)."""
    return await repository.rebuild(session, plan)


async def rebuild_open(session: AsyncSession, now: datetime | None = None) -> RebuildStats | None:
    """Rebuild the open boards now, whatever their age (tests, the bench, a manual run)."""
    return await repository.rebuild(session, [(board, False) for board in open_boards(now)])


async def refresh(session: AsyncSession) -> RefreshStats:
    """Bring the live boards up to date with the walkers whose days changed (the caller's
    transaction)."""
    return await repository.refresh(session)


async def refresh_live(database: Database) -> RefreshStats:
    """The refresh in its own transaction."""
    async with session_scope(database) as session:
        return await repository.refresh(session)


async def rebuild_if_due(database: Database, now: datetime | None = None) -> RebuildStats | None:
    """The scheduled job: plan from the database clock, rebuild in one transaction, prune."""
    async with session_scope(database) as session:
        settings = await runtime_settings.all(session)
        if now is None:
            now = (await session.execute(text("SELECT now()"))).scalar_one()
        assert now is not None
        oldest = min(board.start for board in previous_boards(now))
        known = await repository.builds_since(session, oldest)
    plan = plan_rebuilds(
        now,
        known,
        interval_minutes=int(settings["leaderboards.rebuild_interval_minutes"]),
        finalize_after_hours=int(settings["leaderboards.finalize_after_hours"]),
    )
    stats = None
    if plan:
        async with session_scope(database) as session:
            stats = await repository.rebuild(session, plan)
    today = utc_today(now)
    async with session_scope(database) as session:
        await repository.prune(
            session,
            daily_before=today - timedelta(days=int(settings["leaderboards.daily_retention_days"])),
            others_before=today - timedelta(days=int(settings["leaderboards.retention_days"])),
        )
    return stats


# --- reading ----------------------------------------------------------------------------------


def _entry(row: Any) -> dict[str, Any]:
    return {
        "rank": row["rank"],
        "user_id": row["user_id"],
        "display_name": display_name(row["full_name"]),
        "total_steps": row["total_steps"],
    }


def _by_position(rows: list[Any]) -> list[Any]:
    return sorted(rows, key=lambda r: (r["rank"], r["user_id"]))


async def read_board(
    database: Database,
    period: Period,
    user_id: uuid.UUID,
    *,
    start: date | None,
    limit: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Top `limit`, the caller's rank and total, and two neighbours each side: one statement."""
    current = period_start(period, utc_today(now))
    if start is None:
        start = current
    elif not is_period_start(period, start):
        raise InvalidInput(
            f"A {period} board starts on {period_start(period, start).isoformat()}, "
            f"not {start.isoformat()}.",
            code="invalid_period_start",
        )
    async with database.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        rows = await repository.read_board(raw.driver_connection, period, start, user_id, limit)
    parts: dict[str, list[Any]] = {"me": [], "build": [], "top": [], "above": [], "below": []}
    for row in rows:
        parts[row["part"]].append(row)
    if not parts["me"] or not parts["me"][0]["flag"]:
        raise account_gone()
    build = parts["build"][0] if parts["build"] else None
    if build is None and start != current:
        raise NotFound(f"No {period} board starts on {start.isoformat()}.", code="board_not_found")
    me = parts["me"][0]
    return {
        "period": period,
        "period_start": start,
        "computed_at": build["at"].astimezone(UTC) if build else None,
        "final": bool(build["flag"]) if build else False,
        "entries": [_entry(r) for r in _by_position(parts["top"])],
        "me": None
        if me["rank"] is None
        else {"rank": me["rank"], "total_steps": me["total_steps"]},
        "neighbours": [_entry(r) for r in _by_position(parts["above"] + parts["below"])],
    }

"""Leaderboard rules: which boards to build when, how they follow walkers, and the board as
the app sees it.

A scheduled job (8 times a minute, 6-9 s apart) first builds in full the boards that need
it: a board never built yet (a new period), a closed board past its grace (its final
snapshot), and every live board once `leaderboards.rebuild_interval_minutes` have passed (a
safety net; default a day). Then it refreshes the live boards (built, not final) from the
change log: only the walkers whose days changed since the last refresh are recomputed
(repository.refresh), so a sync shows in the boards within about 9 seconds and a refresh
costs in proportion to the walkers who synced. A closed period stays live for
`leaderboards.finalize_after_hours` (late time zones and late syncs still count), then gets
one last build that makes it final: a snapshot that is never rebuilt nor refreshed and stays
readable with ?period_start until the retention removes it. See docs/engagement.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.db import Database, session_scope
from stepcoin.errors import InvalidInput, NotFound, account_gone
from stepcoin.leaderboards import prizes, repository
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
from stepcoin.leaderboards.repository import MAX_LIMIT, BuildInfo, RebuildStats, RefreshStats
from stepcoin.queue import LEADERBOARDS_PAY_PRIZES, defer_in_transaction
from stepcoin.runtime_settings.service import runtime_settings

NEIGHBOURS = 2
PAY_PRIZES_LOCK = "leaderboards_pay_prizes"  # the queueing lock: one payout waits at most


async def pay_prizes(database: Database, *, batch: int = prizes.PAY_BATCH) -> tuple[int, int]:
    """Pay every payable waiting prize, a batch per transaction: (prizes paid, coins)."""
    paid = coins = 0
    while True:
        async with session_scope(database) as session:
            n, c = await prizes.pay_waiting(session, limit=batch)
        paid, coins = paid + n, coins + c
        if n < batch:
            return paid, coins


def plan_rebuilds(
    now: datetime,
    known: Mapping[Board, BuildInfo],
    *,
    interval_minutes: int,
    finalize_after_hours: int,
) -> list[tuple[Board, bool]]:
    """The boards due now, each with whether this build makes it final.

    Open boards and closed ones still within the grace period are due when never built or
    last built in full `interval_minutes` ago (rebuilt_at: computed_at moves with every
    refresh, so counting from it the safety net never fired while refreshes ran); a closed
    board past the grace period is built once more as final (also when it was never built:
    the first start after a period gets its snapshot).
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
        elif info is None or now - (info.rebuilt_at or info.computed_at) >= interval:
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
            # the prizes of the boards made final, fixed with their final snapshot (paid by
            # the job queued here, after the commit; prizes.py)
            finals = [board for board, final in plan if final]
            if finals and await prizes.open_rounds(session, finals):
                await defer_in_transaction(
                    session,
                    LEADERBOARDS_PAY_PRIZES,
                    {"timestamp": 0},
                    queueing_lock=PAY_PRIZES_LOCK,
                )
    today = utc_today(now)
    async with session_scope(database) as session:
        await repository.prune(
            session,
            daily_before=today - timedelta(days=int(settings["leaderboards.daily_retention_days"])),
            others_before=today - timedelta(days=int(settings["leaderboards.retention_days"])),
        )
    return stats


# --- reading ----------------------------------------------------------------------------------

# Boards whose top the process keeps (the open ones and a few closed ones asked for): beyond
# this, the cache starts again empty.
TOP_CACHE_BOARDS = 64


@dataclass(frozen=True, slots=True)
class _Top:
    key: tuple[datetime | None, int]  # (the board's computed_at, the names generation)
    entries: tuple[dict[str, Any], ...]  # the top MAX_LIMIT, shaped for the answer
    # The whole top as JSON, made on the first read that asks for all of it (the default
    # limit): serialising 100 entries was ~10 µs of every leaderboard read.
    _json: list[orjson.Fragment] = field(default_factory=list, compare=False, repr=False)

    def entries_json(self, limit: int) -> orjson.Fragment:
        """entries[:limit] as a JSON fragment, for orjson.dumps of the answer."""
        if limit < len(self.entries):
            return orjson.Fragment(orjson.dumps(self.entries[:limit]))
        if not self._json:
            self._json.append(orjson.Fragment(orjson.dumps(self.entries)))
        return self._json[0]


class TopCache:
    """The top MAX_LIMIT entries of each board read, per API process, keyed by what moves
    whenever they could change: the board's computed_at (every refresh and rebuild, in the
    transaction that writes the rows) and the names generation (every change of a walker's
    name or is_active, every deleted walker; migration 0018). A read takes the key with the
    caller's part in one snapshot and uses the cached top only when the keys are equal."""

    def __init__(self) -> None:
        self._tops: dict[tuple[str, date], _Top] = {}

    def get(self, board: tuple[str, date], key: tuple[datetime | None, int]) -> _Top | None:
        top = self._tops.get(board)
        return top if top is not None and top.key == key else None

    def put(self, board: tuple[str, date], top: _Top) -> None:
        if board not in self._tops and len(self._tops) >= TOP_CACHE_BOARDS:
            self._tops.clear()
        self._tops[board] = top

    def clear(self) -> None:
        self._tops.clear()


top_cache = TopCache()


def _entry(row: Any) -> dict[str, Any]:
    return {
        "rank": row["rank"],
        "user_id": str(row["user_id"]),
        "display_name": display_name(row["full_name"]),
        "total_steps": row["total_steps"],
    }


def _by_position(rows: list[Any]) -> list[Any]:
    return sorted(rows, key=lambda r: (r["rank"], r["user_id"]))


def _parts(rows: list[Any]) -> dict[str, list[Any]]:
    parts: dict[str, list[Any]] = {
        "me": [],
        "build": [],
        "generation": [],
        "top": [],
        "above": [],
        "below": [],
    }
    for row in rows:
        parts[row["part"]].append(row)
    return parts


def _key(parts: dict[str, list[Any]]) -> tuple[datetime | None, int]:
    build = parts["build"][0] if parts["build"] else None
    return (build["at"] if build else None, int(parts["generation"][0]["total_steps"]))


def _top(parts: dict[str, list[Any]]) -> _Top:
    return _Top(_key(parts), tuple(_entry(r) for r in _by_position(parts["top"])))


async def board_answer(
    driver: Any,
    period: Period,
    user_id: uuid.UUID,
    *,
    start: date | None,
    limit: int,
    now: datetime | None = None,
    entries_as_json: bool = False,
) -> dict[str, Any]:
    """The answer of GET /v1/leaderboards/{period} (for the route and main.HotRoutes): top
    `limit`, the caller's rank and total, and two neighbours each side. With `entries_as_json`
    the entries are one orjson.Fragment (the hot route's bytes; the top's JSON is kept with it).

    Usually one statement: the caller's part with the board's key, the top from the cache
    (TopCache). When the cached top is missing or older, the top is read with its key; if a
    refresh committed in between (the keys differ), the whole answer is read again in one
    statement, so an answer always shows one board."""
    current = period_start(period, utc_today(now))
    if start is None:
        start = current
    elif not is_period_start(period, start):
        raise InvalidInput(
            f"A {period} board starts on {period_start(period, start).isoformat()}, "
            f"not {start.isoformat()}.",
            code="invalid_period_start",
        )
    parts = _parts(await repository.read_mine(driver, period, start, user_id))
    board = (period, start)
    top = top_cache.get(board, _key(parts))
    if top is None:
        top = _top(_parts(await repository.read_top(driver, period, start)))
        top_cache.put(board, top)
        if top.key != _key(parts):  # a refresh committed in between: one snapshot for all
            parts = _parts(await repository.read_board(driver, period, start, user_id, MAX_LIMIT))
            top = _top(parts)
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
        "entries": top.entries_json(limit) if entries_as_json else list(top.entries[:limit]),
        "me": None
        if me["rank"] is None
        else {"rank": me["rank"], "total_steps": me["total_steps"]},
        "neighbours": [_entry(r) for r in _by_position(parts["above"] + parts["below"])],
    }


async def walker_active(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return await repository.walker_active(session, user_id)


def _check_start(period: Period, start: date | None, now: datetime | None) -> tuple[date, date]:
    """(the board's start, the current period's start); a start that is not a period's first
    day is 422."""
    current = period_start(period, utc_today(now))
    if start is None:
        return current, current
    if not is_period_start(period, start):
        raise InvalidInput(
            f"A {period} board starts on {period_start(period, start).isoformat()}, "
            f"not {start.isoformat()}.",
            code="invalid_period_start",
        )
    return start, current


async def scoped_board_answer(
    session: AsyncSession,
    period: Period,
    user_id: uuid.UUID,
    *,
    scope: str,
    scope_params: dict[str, Any],
    start: date | None,
    limit: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A friend or group board (issue 17, item 3): the global board's answer, ranked over the
    walkers of `scope` only (social's query: the walker and their friends, a group's members);
    `me` is the caller's rank among them (null when not on it: no steps, or not in the set)."""
    start, current = _check_start(period, start, now)
    rows = await repository.read_scoped(
        session, period, start, user_id, scope=scope, scope_params=scope_params, limit=limit
    )
    build = next((r for r in rows if r["part"] == "build"), None)
    if build is None and start != current:
        raise NotFound(f"No {period} board starts on {start.isoformat()}.", code="board_not_found")
    top = [r for r in rows if r["part"] == "top"]
    near = sorted((r for r in rows if r["part"] == "near"), key=lambda r: r["pos"])
    mine = next((r for r in near if r["user_id"] == user_id), None)
    return {
        "period": period,
        "period_start": start,
        "computed_at": build["at"].astimezone(UTC) if build else None,
        "final": bool(build["flag"]) if build else False,
        "entries": [_entry(r) for r in sorted(top, key=lambda r: r["pos"])],
        "me": None if mine is None else {"rank": mine["rank"], "total_steps": mine["total_steps"]},
        "neighbours": [_entry(r) for r in near if r["user_id"] != user_id],
    }


async def group_board_answer(
    session: AsyncSession,
    period: Period,
    user_id: uuid.UUID,
    group_id: int,
    *,
    start: date | None,
    limit: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A group's board (issue 17, item 3): the global board's answer over the group's members,
    from the group's own copy of their board rows (repository.read_group). The caller and the
    neighbours are consecutive in board order: the first of them is ranked by the count of
    entries ahead of it, each next one is one position further (and shares the rank of the one
    before on a tie)."""
    start, current = _check_start(period, start, now)
    rows = await repository.read_group(session, period, start, group_id, user_id, limit)
    build = next((r for r in rows if r["part"] == "build"), None)
    if build is None and start != current:
        raise NotFound(f"No {period} board starts on {start.isoformat()}.", code="board_not_found")
    top = sorted((r for r in rows if r["part"] == "top"), key=lambda r: (r["rank"], r["user_id"]))
    near = sorted(
        (r for r in rows if r["part"] == "near"), key=lambda r: (-r["total_steps"], r["user_id"])
    )
    ahead = next((r for r in rows if r["part"] == "ahead"), None)
    ranked: list[dict[str, Any]] = []
    if ahead is not None:
        position = 1 + int(ahead["rank"]) + int(ahead["total_steps"])
        rank = 1 + int(ahead["rank"])
        previous: int | None = None
        for i, row in enumerate(near):
            if previous is not None and row["total_steps"] != previous:
                rank = position + i
            previous = row["total_steps"]
            ranked.append({**row, "rank": rank})
    mine = next((r for r in ranked if r["user_id"] == user_id), None)
    return {
        "period": period,
        "period_start": start,
        "computed_at": build["at"].astimezone(UTC) if build else None,
        "final": bool(build["flag"]) if build else False,
        "entries": [_entry(r) for r in top],
        "me": None if mine is None else {"rank": mine["rank"], "total_steps": mine["total_steps"]},
        "neighbours": [_entry(r) for r in ranked if r["user_id"] != user_id],
    }


async def read_board(
    database: Database,
    period: Period,
    user_id: uuid.UUID,
    *,
    start: date | None,
    limit: int,
    now: datetime | None = None,
) -> dict[str, Any]:
    """board_answer on a connection of the database's read pool (tests, scripts)."""
    pool = await database.fast_pool()
    async with pool.acquire() as driver:
        return await board_answer(driver, period, user_id, start=start, limit=limit, now=now)

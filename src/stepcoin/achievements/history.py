"""A walker's closed history, summarised once for the achievements' facts (issue 13).

The facts of a walker (best day, total, approved days, each streak threshold's runs) are a
fold over their credited days in date order. The days no sync can change any more (older than
the sync window and a margin: the closed history) are folded once, into a row of
achievement_history (`through`: the last day folded); the achievements read and the dirty
batch seed the same fold with that row and go on over the days after `through` only
(`repository.facts_from_days`). So a read costs what the open days cost, not years of history.

What keeps a summary true (migration 0048, achievements/sql/history_stale.v1.sql): a change of
a credited day at least CLOSED_AFTER_DAYS back (UTC), whoever makes it (a reviewer's late
decision, an appeal, a deletion), bumps the walker's generation and drops a summary holding
that day, in the changing transaction; `build` writes a summary only over the generation it
read (a change while it computed wins), and never summarises a day after
today - CLOSED_AFTER_DAYS. A summary that lacks a streak threshold the reader needs (an
achievement added since) is not used: the reader folds the whole history, as before, until
`build` covers the new threshold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.achievements import repository
from stepcoin.achievements.criteria import parse_criteria, streak_thresholds
from stepcoin.achievements.facts import fold, seed_of
from stepcoin.db import Database, session_scope
from stepcoin.runtime_settings.service import runtime_settings

logger = logging.getLogger("stepcoin.achievements.history")

# The triggers' WHEN (migration 0048) passes days at least this many days back (UTC): `build`
# summarises no later day, so a day a summary holds always calls the trigger when it changes.
CLOSED_AFTER_DAYS = 10
# Days after the sync window before a day is summarised (a local day is up to a day from UTC's,
# and a sync of the window's oldest day must never call the trigger).
WINDOW_MARGIN_DAYS = 3
# A summary is carried forward once its `through` is this many days behind what could be
# summarised: a read folds at most the sync window + the margin + this many open days.
ADVANCE_DAYS = 7
BATCH_SIZE = 1000


_TODAY = text("SELECT CAST(now() AT TIME ZONE 'UTC' AS date)")


def summary_target(today: date, sync_window_days: int) -> date:
    """The last day a summary may hold today."""
    return today - timedelta(days=max(CLOSED_AFTER_DAYS, sync_window_days + WINDOW_MARGIN_DAYS))


async def active_streak_thresholds(session: AsyncSession) -> list[int]:
    """The min_steps of every active streak achievement (stored criteria that no longer parse
    are skipped, as the evaluation skips them)."""
    criteria = []
    for row in await repository.active_achievements(session):
        try:
            criteria.append(parse_criteria(row["unlock_criteria"]))
        except ValidationError:
            continue
    return streak_thresholds(criteria)


@dataclass(frozen=True, slots=True)
class Built:
    walkers: int  # summaries written
    skipped: int  # a change came first (their generation moved): the next run takes them
    complete: bool = True  # the search reached the last walker (not stopped at max_batches)


async def build(
    database: Database,
    *,
    today: date | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
    full: bool = True,
) -> Built:
    """Summarise (or carry forward) the closed history of every walker whose summary is
    missing, dropped, ADVANCE_DAYS behind, or without a threshold an active streak needs:
    `batch_size` walkers per short transaction, keyset by user id. `full` False: only the
    summaries that were dropped or are behind (found by index; no look at every walker)."""
    batch_size = batch_size or BATCH_SIZE
    async with session_scope(database) as session:
        window = int(await runtime_settings.get(session, "anticheat.sync_window_days"))
        thresholds = await active_streak_thresholds(session)
        # the database's UTC day, as the triggers' WHEN sees it (not this process's clock)
        today = today or (await session.execute(_TODAY)).scalar_one()
    target = summary_target(today, window)
    written = skipped = batches = 0
    after = None
    complete = False
    while max_batches is None or batches < max_batches:
        batches += 1
        async with session_scope(database) as session:
            rows = await repository.history_candidates(
                session,
                after=after,
                limit=batch_size,
                target=target,
                stale_before=target - timedelta(days=ADVANCE_DAYS),
                thresholds=thresholds,
                full=full,
            )
            if not rows:
                complete = True
                break
            after = rows[-1]["id"]
            folds = [
                (
                    r["id"],
                    r["generation"],
                    fold(r["days"] or (), r["steps"] or (), thresholds, seed_of(r, thresholds)),
                )
                for r in rows
            ]
            done = await repository.write_history(session, target, thresholds, folds)
        written += done
        skipped += len(rows) - done
        if len(rows) < batch_size:
            complete = True
            break
    if written or skipped:
        logger.info(
            "achievements: closed history summarised",
            extra={"walkers": written, "skipped": skipped, "through": target.isoformat()},
        )
    return Built(written, skipped, complete)

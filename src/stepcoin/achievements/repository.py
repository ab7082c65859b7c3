"""Queries of the achievements domain; flushes, never commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.achievements.criteria import StreakFacts, UserFacts
from stepcoin.achievements.facts import EPOCH, Fold, fold, seed_of

ACHIEVEMENT_COLUMNS = (
    "a.id, a.code, a.name, a.description, a.unlock_criteria, a.reward_coins, a.is_active, "
    "a.created_at, a.updated_at"
)

# a user's (u) facts as the batch and the read select them: whether they redeemed, their
# summarised closed history (h: achievement_history, joined only when it covers the streak
# thresholds asked for) and their credited days after it as two arrays in date order (d.days:
# days since 2000-01-01, d.steps); without a summary, every credited day
_FACTS_SELECT = """
    SELECT u.id, u.timezone, u.is_active,
           EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id
                   AND o.status NOT IN ('cancelled', 'failed')) AS redeemed,
           h.through AS h_through, h.total_steps AS h_total, h.approved_days AS h_days,
           h.best_day AS h_best, h.thresholds AS h_thresholds, h.longest AS h_longest,
           h.latest_length AS h_latest_length, h.latest_end AS h_latest_end,
           d.days, d.steps"""
# the walker's summary by primary key, one probe per walker whatever the statistics say (a
# join let the planner hash every summary for a batch when it expected few usable ones)
_HISTORY_JOIN = """
    LEFT JOIN LATERAL (
        SELECT * FROM achievement_history h
        WHERE h.user_id = u.id AND h.through IS NOT NULL AND h.thresholds @> {thresholds}
        LIMIT 1
    ) h ON true"""


def _days_lateral(walker: str, after: str, until: str = "") -> str:
    """d.days, d.steps: the `walker` column's credited days after the date `after` (NULL: from
    the first) and (when given) up to the date `until`, as two arrays in date order."""
    upper = f" AND recorded_date <= {until}" if until else ""
    return f"""
    CROSS JOIN LATERAL (
        SELECT array_agg(s.day) AS days, array_agg(s.credited_steps) AS steps
        FROM (SELECT recorded_date - DATE '2000-01-01' AS day, credited_steps FROM step_days
              WHERE user_id = {walker} AND credited_steps > 0{upper}
                AND recorded_date > coalesce({after}, DATE '-infinity')
              ORDER BY recorded_date) s
    ) d"""


_DAYS_LATERAL = _days_lateral("u.id", "h.through")
# The users' facts as one row each (facts_from_days computes the aggregates and each streak
# threshold's runs from the summary and the days after it). Issue 13: the same facts
# as one set-based statement (window functions over every credited day, gaps and islands,
# JSON; tests/achievements/test_reads.py keeps it as the reference) cost PostgreSQL ~85 ms for
# a batch of 470 walkers with 90 days each (its sort spilled to disk), the arrays ~20 ms and
# the worker's Python ~13 ms (bench/achievements_cost.py): the batch's burst on the database,
# which the half-load requests overlapped, is a quarter of what it was. With the summaries
# (migration 0048) a walker's read is its open days, however long their history.
FACTS_SQL = (
    _FACTS_SELECT
    + "\n    FROM users u"
    + _HISTORY_JOIN.format(thresholds="{thresholds}")
    + _DAYS_LATERAL
    + "\n    WHERE u.id = ANY({users})"
)
_FACTS = text(
    FACTS_SQL.format(users="CAST(:users AS uuid[])", thresholds="CAST(:thresholds AS integer[])")
)


async def user_facts(
    session: AsyncSession, user_ids: Sequence[uuid.UUID], thresholds: Sequence[int]
) -> dict[uuid.UUID, UserFacts]:
    """Facts for many users in one query (missing users are absent from the answer)."""
    if not user_ids:
        return {}
    rows = (
        await session.execute(_FACTS, {"users": list(user_ids), "thresholds": list(thresholds)})
    ).all()
    return {row.id: facts_from_days(row.id, row._mapping, thresholds) for row in rows}


async def locked_candidates(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Active achievements the user has not unlocked yet."""
    rows = await session.execute(
        text(
            f"SELECT {ACHIEVEMENT_COLUMNS} FROM achievements a WHERE a.is_active "
            "AND NOT EXISTS (SELECT 1 FROM user_achievements ua "
            "WHERE ua.user_id = :u AND ua.achievement_id = a.id) ORDER BY a.id"
        ),
        {"u": user_id},
    )
    return [dict(r) for r in rows.mappings()]


async def active_with_unlocks(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every active achievement with the user's unlocked_at (None while locked)."""
    rows = await session.execute(
        text(
            f"SELECT {ACHIEVEMENT_COLUMNS}, ua.unlocked_at FROM achievements a "
            "LEFT JOIN user_achievements ua ON ua.achievement_id = a.id AND ua.user_id = :u "
            "WHERE a.is_active ORDER BY a.id"
        ),
        {"u": user_id},
    )
    return [dict(r) for r in rows.mappings()]


async def lock_wallets(session: AsyncSession, user_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Lock the users' wallet rows in user-id order (the one lock order: the wallet first).

    Returns the users that have a wallet.
    """
    rows = await session.execute(
        text(
            "SELECT user_id FROM wallets WHERE user_id = ANY(CAST(:users AS uuid[])) "
            "ORDER BY user_id FOR UPDATE"
        ),
        {"users": sorted(user_ids)},
    )
    return [r.user_id for r in rows]


# One statement under the wallet locks: record the unlocks (UNIQUE user + achievement; ON
# CONFLICT makes a retry or a concurrent evaluation a no-op) and return the new ones with their
# reward; the service pays the rewards through the wallet.
_UNLOCK = text(
    """
    WITH unlocked AS (
        INSERT INTO user_achievements (user_id, achievement_id)
        SELECT w.user_id, a.id
        FROM unnest(CAST(:users AS uuid[]), CAST(:achievements AS bigint[]))
             AS w(user_id, achievement_id)
        JOIN achievements a ON a.id = w.achievement_id
        WHERE a.is_active
        ORDER BY w.user_id, a.id
        ON CONFLICT DO NOTHING
        RETURNING user_id, achievement_id, unlocked_at
    )
    SELECT x.user_id, x.achievement_id, x.unlocked_at, a.code, a.name, a.reward_coins
    FROM unlocked x JOIN achievements a ON a.id = x.achievement_id
    ORDER BY x.user_id, x.achievement_id
    """
)


async def unlock(
    session: AsyncSession, pairs: Sequence[tuple[uuid.UUID, int]]
) -> list[dict[str, Any]]:
    """Record (user, achievement) unlocks; the caller holds the wallet locks. Returns the
    unlocks that are new (already unlocked pairs are left out), with each reward."""
    if not pairs:
        return []
    ordered = sorted(pairs)
    rows = await session.execute(
        _UNLOCK,
        {"users": [u for u, _ in ordered], "achievements": [a for _, a in ordered]},
    )
    return [dict(r) for r in rows.mappings()]


# --- admin ------------------------------------------------------------------------------------


async def list_all(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            f"SELECT {ACHIEVEMENT_COLUMNS}, "
            "(SELECT count(*) FROM user_achievements ua WHERE ua.achievement_id = a.id) "
            "AS unlocked_count FROM achievements a ORDER BY a.id"
        )
    )
    return [dict(r) for r in rows.mappings()]


async def get(
    session: AsyncSession, achievement_id: int, *, for_update: bool = False
) -> dict[str, Any] | None:
    row = (
        (
            await session.execute(
                text(
                    f"SELECT {ACHIEVEMENT_COLUMNS}, "
                    "(SELECT count(*) FROM user_achievements ua WHERE ua.achievement_id = a.id) "
                    "AS unlocked_count FROM achievements a WHERE a.id = :id"
                    + (" FOR UPDATE OF a" if for_update else "")
                ),
                {"id": achievement_id},
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


async def insert(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """None when the code is taken."""
    new_id = (
        await session.execute(
            text(
                "INSERT INTO achievements (code, name, description, unlock_criteria, "
                "reward_coins, is_active) VALUES (:code, :name, :description, "
                "CAST(:unlock_criteria AS jsonb), :reward_coins, :is_active) "
                "ON CONFLICT (code) DO NOTHING RETURNING id"
            ),
            {**values, "unlock_criteria": orjson.dumps(values["unlock_criteria"]).decode()},
        )
    ).scalar_one_or_none()
    return None if new_id is None else int(new_id)


async def update(session: AsyncSession, achievement_id: int, changes: dict[str, Any]) -> None:
    if not changes:
        return
    params = dict(changes)
    assignments = []
    for column in changes:
        if column == "unlock_criteria":
            assignments.append("unlock_criteria = CAST(:unlock_criteria AS jsonb)")
            params["unlock_criteria"] = orjson.dumps(changes["unlock_criteria"]).decode()
        else:
            assignments.append(f"{column} = :{column}")
    await session.execute(
        text(
            f"UPDATE achievements SET {', '.join(assignments)}, updated_at = now() WHERE id = :id"
        ),
        {**params, "id": achievement_id},
    )


async def next_backfill_batch(
    session: AsyncSession, achievement_id: int, *, after_user: uuid.UUID | None, limit: int
) -> list[uuid.UUID]:
    """Active users after `after_user` (keyset on the primary key) lacking the achievement."""
    rows = await session.execute(
        text(
            "SELECT u.id FROM users u WHERE u.is_active "
            "AND (CAST(:after AS uuid) IS NULL OR u.id > CAST(:after AS uuid)) "
            "AND NOT EXISTS (SELECT 1 FROM user_achievements ua "
            "WHERE ua.user_id = u.id AND ua.achievement_id = :a) "
            "ORDER BY u.id LIMIT :limit"
        ),
        {"after": after_user, "a": achievement_id, "limit": limit},
    )
    return [r.id for r in rows]


# --- dirty marks (issue 13): the step loop marks users, a periodic batch evaluates them ------


# The marks to claim, locked, as one array (an init plan, run once), then updated by key. As a
# join of the table with its own locked subquery, statistics taken while the marks were drained
# (autoanalyze finds the table empty most of the time) made the planner expect one row on each
# side and rescan the locked subquery for every mark: 190 ms for 800 marks, O(n^2), against
# 5 ms (tests/achievements/test_dirty.py).
CLAIM_DIRTY_SQL = """
    UPDATE achievements_dirty d SET claimed_at = now()
    WHERE d.user_id = ANY(ARRAY(
        SELECT user_id FROM achievements_dirty
        WHERE claimed_at IS NULL OR claimed_at < now() - make_interval(secs => :stale)
        ORDER BY since LIMIT :limit FOR UPDATE SKIP LOCKED))
    RETURNING d.user_id, d.claimed_at"""


async def claim_dirty(
    session: AsyncSession, limit: int, stale_seconds: int
) -> tuple[list[uuid.UUID], datetime | None]:
    """Claim up to `limit` marks, oldest first (a claim older than `stale_seconds` is taken
    again: its batch died). Returns the users and the claim's stamp; the caller commits at
    once, so a sync that commits later than the claim re-dirties the mark (claimed_at NULL)."""
    rows = (
        await session.execute(text(CLAIM_DIRTY_SQL), {"limit": limit, "stale": stale_seconds})
    ).all()
    if not rows:
        return [], None
    return [r.user_id for r in rows], rows[0].claimed_at


async def consume_dirty(
    session: AsyncSession, user_ids: Sequence[uuid.UUID], claimed_at: datetime
) -> int:
    """Delete the claimed marks that no sync re-dirtied since the claim."""
    result = await session.execute(
        text(
            "DELETE FROM achievements_dirty WHERE user_id = ANY(CAST(:users AS uuid[])) "
            "AND claimed_at = :claimed"
        ),
        {"users": list(user_ids), "claimed": claimed_at},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def release_dirty(
    session: AsyncSession, user_ids: Sequence[uuid.UUID], claimed_at: datetime
) -> None:
    """Give claimed marks back (their batch failed) for the next batch."""
    await session.execute(
        text(
            "UPDATE achievements_dirty SET claimed_at = NULL "
            "WHERE user_id = ANY(CAST(:users AS uuid[])) AND claimed_at = :claimed"
        ),
        {"users": list(user_ids), "claimed": claimed_at},
    )


async def active_achievements(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(f"SELECT {ACHIEVEMENT_COLUMNS} FROM achievements a WHERE a.is_active ORDER BY a.id")
    )
    return [dict(r) for r in rows.mappings()]


async def unlocked_pairs(
    session: AsyncSession, user_ids: Sequence[uuid.UUID]
) -> set[tuple[uuid.UUID, int]]:
    rows = await session.execute(
        text(
            "SELECT user_id, achievement_id FROM user_achievements "
            "WHERE user_id = ANY(CAST(:users AS uuid[]))"
        ),
        {"users": list(user_ids)},
    )
    return {(r.user_id, int(r.achievement_id)) for r in rows}


# GET /v1/achievements in one statement on a bare asyncpg connection (no transaction), one row:
# the caller's account, whether they redeemed, their summarised closed history and their
# credited days after it as two arrays in date order (days since 2000-01-01, credited steps:
# facts_from_days computes the aggregates and the streak runs from them, as for the batch's
# _FACTS; tests/achievements/test_reads.py proves them equal to a set-based SQL reference) and
# the active achievements as three arrays in id order (id, updated_at, the caller's
# unlocked_at). What an achievement says (code, name, criteria...) is cached per process by
# (id, updated_at) and read with catalogue() on a miss. No row: no such user. Issue 13: the
# window functions, aggregates and JSON of the set-based facts cost PostgreSQL ~3x this.
_MINE_SQL = (
    _FACTS_SELECT
    + """, c.ids, c.versions, c.unlocked
    FROM users u"""
    + _HISTORY_JOIN.format(thresholds="$2::integer[]")
    + _DAYS_LATERAL
    + """
    CROSS JOIN LATERAL (
        SELECT array_agg(a.id) AS ids, array_agg(a.updated_at) AS versions,
               array_agg(a.unlocked_at) AS unlocked
        FROM (SELECT a.id, a.updated_at, ua.unlocked_at FROM achievements a
              LEFT JOIN user_achievements ua ON ua.achievement_id = a.id AND ua.user_id = u.id
              WHERE a.is_active ORDER BY a.id) a
    ) c
    WHERE u.id = $1
"""
)
_CATALOGUE_SQL = (
    "SELECT id, code, name, description, unlock_criteria, reward_coins, updated_at "
    "FROM achievements WHERE id = ANY($1::bigint[])"
)


# a threshold no summary holds (a streak's min_steps is at least 1): a facts read asking for it
# reads every day of the walker
WITHOUT_SUMMARY = (0,)


async def mine(driver: Any, user_id: uuid.UUID, thresholds: Sequence[int] = ()) -> Any:
    """The caller's row of _MINE_SQL on a bare asyncpg connection; None for a missing user. Its
    summary (if any) covers `thresholds`; whether it covers those the caller needs is known
    only after the read (service.my_achievements reads again WITHOUT_SUMMARY in the rare case
    it does not)."""
    return await driver.fetchrow(_MINE_SQL, user_id, list(thresholds))


async def catalogue(driver: Any, ids: Sequence[int]) -> list[Any]:
    """What these achievements say, as stored now (the cache's misses of _MINE_SQL)."""
    rows: list[Any] = await driver.fetch(_CATALOGUE_SQL, list(ids))
    return rows


def facts_from_days(
    user_id: uuid.UUID,
    row: Any,
    thresholds: Sequence[int],
) -> UserFacts:
    """The facts of a row of _FACTS or _MINE_SQL: its summarised closed history (h_*, when it
    covers `thresholds`), folded on over its days (ascending, days since 2000-01-01, each with
    credited steps > 0, all after the summary's `through`); for each threshold the runs of
    consecutive days at or above it (none: no entry)."""
    seed = seed_of(row, thresholds)
    if seed is None and row.get("h_through") is not None:
        raise ValueError("the row's days start after a summary that lacks a threshold")
    done = fold(row["days"] or (), row["steps"] or (), thresholds, seed)
    streaks = {}
    for threshold, (longest, length, end) in (done.runs or {}).items():
        if longest:
            streaks[threshold] = StreakFacts(
                longest=longest, latest_length=length, latest_end=EPOCH + timedelta(days=end)
            )
    return UserFacts(
        user_id=user_id,
        timezone=row["timezone"],
        is_active=row["is_active"],
        best_day=done.best_day,
        total_steps=done.total_steps,
        approved_days=done.approved_days,
        redeemed=bool(row["redeemed"]),
        streaks=streaks,
    )


# --- the summaries of closed history (achievements.history) ---------------------------------

# Walkers after :after (user id order; the nil UUID: from the first) whose summary is missing,
# dropped, behind :stale_before or without one of :thresholds, with what carrying it forward
# needs: their generation (0: no row), the summary as a seed (h_*: only when it covers the
# thresholds and ends by :target) and their credited days after the seed up to :target.
# The full search: every walker is looked at (an anti-join of users and achievement_history,
# about 1 ms per 1,000 walkers), so it runs hourly (achievements.tasks), not every 5 minutes.
_CANDIDATES_ALL = """
        SELECT u.id, h.generation,
               CASE WHEN h.through <= :target AND h.thresholds @> CAST(:thresholds AS integer[])
                    THEN h.through END AS seed_through
        FROM users u LEFT JOIN achievement_history h ON h.user_id = u.id
        WHERE u.id > CAST(:after AS uuid)
          AND (h.through IS NULL OR h.through < :stale_before
               OR NOT h.thresholds @> CAST(:thresholds AS integer[]))
        ORDER BY u.id
        LIMIT :limit"""
# The due search (issue 13): only summaries that were dropped (a closed day changed) or are
# :stale_before behind (one condition: coalesce(through, '-infinity'), a dropped one sorting
# first), found through ix_achievement_history_due (migration 0055: an index on that
# expression, which the facts read's `through IS NOT NULL` cannot take) when
# they are few (a custom plan: a generic one guesses a third of the table and walks the key),
# along the key when most are due (the weekly carry-forward). Walkers with no summary row yet
# (new walkers, who have no closed history for ten days) and summaries without a new streak
# threshold (an achievement added: readers fold every day until covered) wait for the full
# search. At rest at 200,000 walkers: 0.08 ms against the full search's 140-240 ms.
_CANDIDATES_DUE = """
        SELECT h.user_id AS id, h.generation,
               CASE WHEN h.through <= :target AND h.thresholds @> CAST(:thresholds AS integer[])
                    THEN h.through END AS seed_through
        FROM achievement_history h
        WHERE h.user_id > CAST(:after AS uuid)
          AND coalesce(h.through, DATE '-infinity') < :stale_before
          -- the redundant range lets a merge join start users' key at :after, not at its
          -- first walker (66 ms a batch at 200,000 walkers without it)
          AND EXISTS (SELECT 1 FROM users u WHERE u.id = h.user_id
                      AND u.id > CAST(:after AS uuid))
        ORDER BY h.user_id
        LIMIT :limit"""


def _history_candidates(search: str) -> Any:
    return text(
        f"""
    WITH c AS ({search}
    )
    SELECT c.id, coalesce(c.generation, 0) AS generation,
           c.seed_through AS h_through, h.total_steps AS h_total, h.approved_days AS h_days,
           h.best_day AS h_best, h.thresholds AS h_thresholds, h.longest AS h_longest,
           h.latest_length AS h_latest_length, h.latest_end AS h_latest_end,
           d.days, d.steps
    FROM c LEFT JOIN achievement_history h ON h.user_id = c.id"""
        + _days_lateral("c.id", "c.seed_through", ":target")
        + """
    ORDER BY c.id
    """
    )


_HISTORY_CANDIDATES = _history_candidates(_CANDIDATES_ALL)
_HISTORY_DUE = _history_candidates(_CANDIDATES_DUE)
# The new summaries, each only over the generation its days were read with: a change of a
# closed day meanwhile (the trigger's bump) wins, and that walker waits for the next run.
_HISTORY_WRITE = text(
    """
    WITH written AS (
        INSERT INTO achievement_history AS h (user_id, generation, through, total_steps,
            approved_days, best_day, thresholds, longest, latest_length, latest_end, computed_at)
        SELECT v.user_id, v.generation, :through, v.total_steps, v.approved_days, v.best_day,
               CAST(:thresholds AS integer[]), v.longest, v.latest_length, v.latest_end, now()
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(user_id uuid, generation bigint,
            total_steps bigint, approved_days integer, best_day integer, longest integer[],
            latest_length integer[], latest_end integer[])
        ON CONFLICT (user_id) DO UPDATE SET
            through = excluded.through, total_steps = excluded.total_steps,
            approved_days = excluded.approved_days, best_day = excluded.best_day,
            thresholds = excluded.thresholds, longest = excluded.longest,
            latest_length = excluded.latest_length, latest_end = excluded.latest_end,
            computed_at = excluded.computed_at
        WHERE h.generation = excluded.generation
        RETURNING 1
    )
    SELECT count(*) FROM written
    """
)


async def history_candidates(
    session: AsyncSession,
    *,
    after: uuid.UUID | None,
    limit: int,
    target: date,
    stale_before: date,
    thresholds: Sequence[int],
    full: bool = True,
) -> list[Any]:
    """The next `limit` walkers to summarise after `after` (see _CANDIDATES_ALL), or, with
    `full` False, only those whose summary was dropped or is behind (_CANDIDATES_DUE)."""
    if not full:
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    rows = await session.execute(
        _HISTORY_CANDIDATES if full else _HISTORY_DUE,
        {
            "after": after or uuid.UUID(int=0),  # a range of the key's index, from the first
            "limit": limit,
            "target": target,
            "stale_before": stale_before,
            "thresholds": list(thresholds),
        },
    )
    return list(rows.mappings())


async def write_history(
    session: AsyncSession,
    through: date,
    thresholds: Sequence[int],
    folds: Sequence[tuple[uuid.UUID, int, Fold]],
) -> int:
    """Write the summaries through `through`; how many were written (a walker whose generation
    moved since it was read is left out)."""
    if not folds:
        return 0
    rows = []
    for user_id, generation, done in folds:
        runs = [done.run(t) for t in thresholds]
        rows.append(
            {
                "user_id": str(user_id),
                "generation": generation,
                "total_steps": done.total_steps,
                "approved_days": done.approved_days,
                "best_day": done.best_day,
                "longest": [r[0] for r in runs],
                "latest_length": [r[1] for r in runs],
                "latest_end": [r[2] for r in runs],
            }
        )
    result = await session.execute(
        _HISTORY_WRITE,
        {"through": through, "thresholds": list(thresholds), "rows": orjson.dumps(rows).decode()},
    )
    return int(result.scalar_one())

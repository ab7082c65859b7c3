"""Leaderboard SQL: the set-based rebuild and the one-statement read. Flushes, never commits."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.leaderboards.periods import Board

REBUILD_LOCK = "stepcoin:leaderboards:rebuild"
MAX_LIMIT = 100
# Sorting a million totals for RANK() and hashing a million users fit in memory with this;
# SET LOCAL ends with the rebuild's transaction.
REBUILD_WORK_MEM = "256MB"


@dataclass(frozen=True, slots=True)
class BuildInfo:
    computed_at: datetime  # the last refresh or build
    entries: int
    is_final: bool
    rebuilt_at: datetime | None = None  # the last full build (None: before migration 0018)


@dataclass(frozen=True, slots=True)
class RebuildStats:
    boards: int
    entries: int
    inserted: int
    updated: int
    deleted: int
    ranking_ms: int  # the set-based ranking statement
    writing_ms: int  # replacing the changed rows


def _literal(day: date) -> str:
    """A date as an SQL literal (a `date` object only: no text from outside reaches here).

    The ranking statement is a CREATE TABLE AS, which takes no bind parameters, and which
    PostgreSQL may run with parallel workers (a plain INSERT ... SELECT never is).
    """
    assert isinstance(day, date)
    return f"DATE '{day.isoformat()}'"


def _ranking_sql(boards: Sequence[Board]) -> str:
    """The one set-based statement that totals every planned board and compares it with what
    the cache holds; it keeps only the differences.

    `totals`: one pass over step_days for all boards (a FILTER per board; inactive users left
    out; a parallel aggregate). Per board: the positive totals full-joined by user with the
    board's cached rows: `insert` (new on the board), `update` (total moved), `delete` (no
    longer on it), and one `count` row (its entries). Ranks are not stored (read_board_sql).
    """
    sums = []
    parts = []
    counts = []
    bounded = True
    lowest: date | None = None
    highest: date | None = None
    for i, board in enumerate(boards):
        assert board.period in ("daily", "weekly", "monthly", "all_time")
        end = board.end
        if end is None:
            bounded = False
            sums.append(f"sum(d.credited_steps) AS t{i}")
        else:
            sums.append(
                f"sum(d.credited_steps) FILTER (WHERE d.recorded_date BETWEEN "
                f"{_literal(board.start)} AND {_literal(end)}) AS t{i}"
            )
            lowest = board.start if lowest is None else min(lowest, board.start)
            highest = end if highest is None else max(highest, end)
        key = f"CAST('{board.period}' AS varchar(16)), {_literal(board.start)}"
        parts.append(
            f"""
            SELECT CASE WHEN o.user_id IS NULL THEN 'insert'
                        WHEN n.user_id IS NULL THEN 'delete' ELSE 'update' END,
                   {key}, coalesce(n.user_id, o.user_id), n.total_steps
            FROM (SELECT user_id, t{i} AS total_steps FROM totals WHERE t{i} > 0) n
            FULL JOIN (SELECT user_id, total_steps FROM leaderboard_cache
                       WHERE period = '{board.period}'
                         AND period_start = {_literal(board.start)}) o
                   ON o.user_id = n.user_id
            WHERE o.user_id IS NULL OR n.user_id IS NULL OR o.total_steps <> n.total_steps"""
        )
        counts.append(
            f"SELECT 'count', {key}, CAST(NULL AS uuid), "
            f"count(*) FILTER (WHERE t{i} > 0) FROM totals"
        )
    where = "d.credited_steps > 0"
    if bounded and lowest is not None and highest is not None:
        where += f" AND d.recorded_date BETWEEN {_literal(lowest)} AND {_literal(highest)}"
    return f"""
        CREATE TEMP TABLE leaderboard_changes
            (change, period, period_start, user_id, total_steps) ON COMMIT DROP AS
        WITH totals AS MATERIALIZED (
            SELECT d.user_id, {", ".join(sums)}
            FROM step_days d
            WHERE {where}
              AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = d.user_id AND NOT u.is_active)
            GROUP BY d.user_id
        )
        {" UNION ALL ".join(parts + counts)}
    """


# Apply the differences: rows whose total moved are updated, new users inserted in board
# order, users no longer on a board deleted (the statement triggers of migration 0015 carry
# each into leaderboard_rank_counts). Disjoint rows, one statement,
# and the same transaction as the ranking: a reader sees the whole old board or the new one.
# The board keys bound the cache side to the rebuilt boards (an index range, not a scan of
# every kept snapshot).
_APPLY = text(
    """
    WITH updated AS (
        UPDATE leaderboard_cache c
        SET total_steps = x.total_steps, computed_at = :as_of
        FROM leaderboard_changes x
        WHERE x.change = 'update' AND c.period = x.period
          AND c.period_start = x.period_start AND c.user_id = x.user_id
          AND c.period = ANY(CAST(:periods AS varchar[]))
          AND c.period_start = ANY(CAST(:starts AS date[]))
        RETURNING 1
    ),
    inserted AS (
        INSERT INTO leaderboard_cache (period, period_start, user_id, total_steps, computed_at)
        SELECT x.period, x.period_start, x.user_id, x.total_steps, :as_of
        FROM leaderboard_changes x WHERE x.change = 'insert'
        ORDER BY x.period, x.period_start, x.total_steps DESC, x.user_id
        RETURNING 1
    ),
    deleted AS (
        DELETE FROM leaderboard_cache c
        USING leaderboard_changes x
        WHERE x.change = 'delete' AND c.period = x.period
          AND c.period_start = x.period_start AND c.user_id = x.user_id
          AND c.period = ANY(CAST(:periods AS varchar[]))
          AND c.period_start = ANY(CAST(:starts AS date[]))
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM updated) AS updated,
           (SELECT count(*) FROM inserted) AS inserted,
           (SELECT count(*) FROM deleted) AS deleted,
           (SELECT coalesce(sum(total_steps), 0) FROM leaderboard_changes
            WHERE change = 'count') AS entries
    """
)

_RECORD_BUILDS = text(
    """
    INSERT INTO leaderboard_builds AS lb (period, period_start, computed_at, entries, is_final,
                                          duration_ms, rebuilt_at)
    SELECT b.period, b.period_start, :as_of, coalesce(n.total_steps, 0), b.is_final,
           CAST(extract(epoch FROM clock_timestamp() - :as_of) * 1000 AS integer), :as_of
    FROM unnest(CAST(:periods AS varchar[]), CAST(:starts AS date[]), CAST(:finals AS boolean[]))
         AS b(period, period_start, is_final)
    LEFT JOIN leaderboard_changes n
           ON n.change = 'count' AND n.period = b.period AND n.period_start = b.period_start
    ON CONFLICT (period, period_start) DO UPDATE
    SET computed_at = EXCLUDED.computed_at, entries = EXCLUDED.entries,
        is_final = EXCLUDED.is_final, duration_ms = EXCLUDED.duration_ms,
        rebuilt_at = EXCLUDED.rebuilt_at
    """
)


ANALYZE_AFTER_ROWS = 1000  # rows a rebuild inserted or deleted that make it refresh statistics


async def rebuild(session: AsyncSession, plan: Sequence[tuple[Board, bool]]) -> RebuildStats | None:
    """Rebuild the planned boards (board, make it final) in the caller's transaction.

    Rebuilds run one at a time (an advisory lock); a board that is already final is left as it
    is. Returns None when nothing was left to do.
    """
    as_of = (
        await session.execute(
            text("SELECT clock_timestamp() FROM (SELECT pg_advisory_xact_lock(hashtext(:k))) l"),
            {"k": REBUILD_LOCK},
        )
    ).scalar_one()
    finals = await _final_boards(session, [board for board, _ in plan])
    todo = sorted({board: final for board, final in plan if board not in finals}.items())
    if not todo:
        return None
    boards = [board for board, _ in todo]
    await session.execute(text(f"SET LOCAL work_mem = '{REBUILD_WORK_MEM}'"))
    started = time.perf_counter()
    await session.execute(text(_ranking_sql(boards)))
    await session.execute(text("ANALYZE leaderboard_changes"))
    ranked = time.perf_counter()
    keys = {
        "periods": [b.period for b in boards],
        "starts": [b.start for b in boards],
    }
    counts = (await session.execute(_APPLY, {**keys, "as_of": as_of})).one()
    if int(counts.inserted) + int(counts.deleted) >= ANALYZE_AFTER_ROWS:
        # a new period's board (or a big change) written at once: fresh statistics now, not
        # when autovacuum gets to it. Statistics that still said "empty" made every estimate
        # one row, and a generic plan of the board read then filtered the whole board
        # (tests/leaderboards/test_schedule.py). A sample: ~0.1-0.3 s at a million rows.
        await session.execute(text("ANALYZE leaderboard_cache"))
    await session.execute(_RANK_ABOVE, keys)
    await session.execute(
        _RECORD_BUILDS, {**keys, "finals": [final for _, final in todo], "as_of": as_of}
    )
    await session.execute(text("DROP TABLE leaderboard_changes"))
    # the log of changes up to now: added to the other live boards, recounted on these (their
    # rows are as of this build's snapshot, which the log's older rows are already in)
    await refresh(session, recount=set(boards))
    written = time.perf_counter()
    return RebuildStats(
        boards=len(boards),
        entries=int(counts.entries),
        inserted=int(counts.inserted),
        updated=int(counts.updated),
        deleted=int(counts.deleted),
        ranking_ms=round((ranked - started) * 1000),
        writing_ms=round((written - ranked) * 1000),
    )


@dataclass(frozen=True, slots=True)
class RefreshStats:
    boards: int  # live boards brought up to date
    changes: int  # change log rows drained
    walkers: int  # distinct walkers among them
    recomputed: int  # (board, walker) totals recomputed
    inserted: int
    updated: int
    deleted: int
    took_ms: int


# Drain the change log and compute the new total of every (live board, logged walker) in ONE
# statement, so in one snapshot: a change committed before it is both drained and seen, one
# committed after it stays in the log for the next refresh. A board's rows are the totals as
# of the last refresh's snapshot, so the new total is the row's total plus the logged deltas
# of the walker's days in the period. Recounted from step_days instead (one index range per
# walker, summed per board in the same pass): a board built in full in this transaction
# (`recount`: its rows are as of the build's snapshot, not the last refresh's), and a walker
# whose is_active flipped (a NULL day). Zero for a walker who is inactive or gone.
_RECOMPUTE = text(
    """
    WITH drained AS (
        DELETE FROM leaderboard_dirty RETURNING user_id, recorded_date, steps_delta
    ),
    boards AS (
        SELECT * FROM unnest(CAST(:periods AS varchar[]), CAST(:starts AS date[]),
                             CAST(:ends AS date[]), CAST(:recount AS boolean[]))
                      AS b(period, period_start, period_end, recount)
    ),
    touched AS (
        SELECT b.period, b.period_start, d.user_id,
               bool_or(b.recount OR d.recorded_date IS NULL) AS recount,
               coalesce(sum(d.steps_delta), 0) AS delta
        FROM drained d JOIN boards b
          ON d.recorded_date IS NULL
          OR (d.recorded_date >= b.period_start
              AND (b.period_end IS NULL OR d.recorded_date <= b.period_end))
        GROUP BY b.period, b.period_start, d.user_id
    ),
    totals AS (
        SELECT s.period, s.period_start, w.user_id, s.total_steps
        FROM (SELECT DISTINCT user_id FROM touched WHERE recount) w
        CROSS JOIN LATERAL (
            SELECT b.period, b.period_start, sum(d.credited_steps) AS total_steps
            FROM step_days d
            JOIN boards b ON d.recorded_date >= b.period_start
                         AND (b.period_end IS NULL OR d.recorded_date <= b.period_end)
            WHERE d.user_id = w.user_id AND d.recorded_date >= :lowest
            GROUP BY b.period, b.period_start
        ) s
    ),
    walkers AS (
        SELECT w.user_id,
               coalesce((SELECT u.is_active FROM users u WHERE u.id = w.user_id), false)
                   AS active
        FROM (SELECT DISTINCT user_id FROM touched) w
    ),
    recomputed AS (
        INSERT INTO leaderboard_refresh (period, period_start, user_id, old_total, total_steps)
        SELECT t.period, t.period_start, t.user_id, c.total_steps,
               CASE WHEN NOT w.active THEN 0
                    WHEN t.recount THEN coalesce(x.total_steps, 0)
                    ELSE coalesce(c.total_steps, 0) + t.delta
               END
        FROM touched t
        JOIN walkers w ON w.user_id = t.user_id
        -- a primary-key probe per pair, never a scan of the board (OFFSET 0: not flattened)
        LEFT JOIN LATERAL (SELECT c.total_steps FROM leaderboard_cache c
                           WHERE c.period = t.period AND c.period_start = t.period_start
                             AND c.user_id = t.user_id OFFSET 0) c ON true
        LEFT JOIN totals x ON x.period = t.period AND x.period_start = t.period_start
                          AND x.user_id = t.user_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM drained) AS changes,
           (SELECT count(DISTINCT user_id) FROM drained) AS walkers,
           (SELECT count(*) FROM recomputed) AS recomputed
    """
)

# Bring the board rows of the recomputed walkers in line: one statement, disjoint rows (the
# row's total before, old_total, was read with the new one: no second look-up per row).
_APPLY_REFRESH = text(
    """
    WITH updated AS (
        UPDATE leaderboard_cache c
        SET total_steps = r.total_steps, computed_at = :as_of
        FROM leaderboard_refresh r
        WHERE r.old_total IS NOT NULL AND r.total_steps > 0 AND r.total_steps <> r.old_total
          AND c.period = r.period AND c.period_start = r.period_start AND c.user_id = r.user_id
        RETURNING 1
    ),
    inserted AS (
        INSERT INTO leaderboard_cache (period, period_start, user_id, total_steps, computed_at)
        SELECT r.period, r.period_start, r.user_id, r.total_steps, :as_of
        FROM leaderboard_refresh r
        WHERE r.old_total IS NULL AND r.total_steps > 0
        ORDER BY r.period, r.period_start, r.total_steps DESC, r.user_id
        RETURNING 1
    ),
    deleted AS (
        DELETE FROM leaderboard_cache c
        USING leaderboard_refresh r
        WHERE r.old_total IS NOT NULL AND r.total_steps <= 0
          AND c.period = r.period AND c.period_start = r.period_start AND c.user_id = r.user_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM updated) AS updated,
           (SELECT count(*) FROM inserted) AS inserted,
           (SELECT count(*) FROM deleted) AS deleted
    """
)

# Every live board is now as of the refresh: its time, and its entries from the counts.
_MARK_REFRESHED = text(
    """
    UPDATE leaderboard_builds b
    SET computed_at = :as_of,
        entries = (SELECT coalesce(sum(k.walkers), 0) FROM leaderboard_rank_counts k
                   WHERE k.period = b.period AND k.period_start = b.period_start),
        duration_ms = CAST(extract(epoch FROM clock_timestamp() - :as_of) * 1000 AS integer)
    FROM unnest(CAST(:periods AS varchar[]), CAST(:starts AS date[])) AS x(period, period_start)
    WHERE b.period = x.period AND b.period_start = x.period_start AND NOT b.is_final
    """
)


# The walkers of the buckets above each bucket, for the given boards: per board a window over
# its buckets (a few thousand rows) read backwards along the primary key (the window's order,
# so no sort), and only the buckets whose figure moved are written. A refresh runs it every
# 6-9 seconds even when nothing changed: the earlier form (one window over all the boards,
# sorted by the board's text key, then joined back to every bucket) took 22 ms of PostgreSQL
# for 3,300 buckets, this one 5 ms (issue 13).
_RANK_ABOVE = text(
    """
    UPDATE leaderboard_rank_counts k SET walkers_above = x.above
    FROM (
        SELECT w.period, w.period_start, w.bucket, w.above
        FROM unnest(CAST(:periods AS varchar[]), CAST(:starts AS date[])) AS b(period, period_start)
        CROSS JOIN LATERAL (
            SELECT b.period, b.period_start, r.bucket, r.walkers_above,
                   CAST(coalesce(sum(r.walkers) OVER (ORDER BY r.bucket DESC
                                                      ROWS BETWEEN UNBOUNDED PRECEDING
                                                               AND 1 PRECEDING), 0)
                        AS bigint) AS above
            FROM leaderboard_rank_counts r
            WHERE r.period = b.period AND r.period_start = b.period_start
            ORDER BY r.bucket DESC
        ) w
        WHERE w.walkers_above <> w.above
    ) x
    WHERE k.period = x.period AND k.period_start = x.period_start AND k.bucket = x.bucket
    """
)


async def live_boards(session: AsyncSession) -> list[Board]:
    """The boards built and not final: the ones a refresh keeps up to date."""
    rows = await session.execute(
        text("SELECT period, period_start FROM leaderboard_builds WHERE NOT is_final")
    )
    return sorted(Board(r.period, r.period_start) for r in rows)


async def refresh(session: AsyncSession, recount: Set[Board] = frozenset()) -> RefreshStats:
    """Bring every live board up to date with the change log, in the caller's transaction:
    cost in proportion to the walkers logged, not to the board (see _RECOMPUTE).

    `recount`: boards built in full earlier in this transaction, whose logged walkers are
    recounted from step_days rather than moved by their deltas. Runs under the rebuild's
    advisory lock (one writer of the boards at a time). Equal to a full rebuild of the same
    boards (tests/leaderboards/test_live.py, the differential test).
    """
    as_of = (
        await session.execute(
            text("SELECT clock_timestamp() FROM (SELECT pg_advisory_xact_lock(hashtext(:k))) l"),
            {"k": REBUILD_LOCK},
        )
    ).scalar_one()
    started = time.perf_counter()
    boards = await live_boards(session)
    keys = {"periods": [b.period for b in boards], "starts": [b.start for b in boards]}
    await session.execute(
        text(
            "CREATE TEMP TABLE leaderboard_refresh (period varchar(16), period_start date, "
            "user_id uuid, old_total bigint, total_steps bigint) ON COMMIT DROP"
        )
    )
    lowest = min((b.start for b in boards), default=date.max)
    params = {
        **keys,
        "ends": [b.end for b in boards],
        "recount": [b in recount for b in boards],
        "lowest": lowest,
    }
    found = (await session.execute(_RECOMPUTE, params)).one()
    counts = (await session.execute(_APPLY_REFRESH, {"as_of": as_of})).one()
    if boards:
        await session.execute(_RANK_ABOVE, keys)
        await session.execute(_MARK_REFRESHED, {**keys, "as_of": as_of})
    await session.execute(text("DROP TABLE leaderboard_refresh"))
    return RefreshStats(
        boards=len(boards),
        changes=int(found.changes),
        walkers=int(found.walkers),
        recomputed=int(found.recomputed),
        inserted=int(counts.inserted),
        updated=int(counts.updated),
        deleted=int(counts.deleted),
        took_ms=round((time.perf_counter() - started) * 1000),
    )


async def _final_boards(session: AsyncSession, boards: Sequence[Board]) -> set[Board]:
    if not boards:
        return set()
    rows = await session.execute(
        text(
            "SELECT period, period_start FROM leaderboard_builds WHERE is_final AND "
            "(period, period_start) IN (SELECT * FROM unnest(CAST(:periods AS varchar[]), "
            "CAST(:starts AS date[])))"
        ),
        {"periods": [b.period for b in boards], "starts": [b.start for b in boards]},
    )
    return {Board(r.period, r.period_start) for r in rows}


async def builds_since(session: AsyncSession, since: date) -> dict[Board, BuildInfo]:
    """Every board that is not final yet, and every board starting on or after `since`."""
    rows = await session.execute(
        text(
            "SELECT period, period_start, computed_at, entries, is_final, rebuilt_at "
            "FROM leaderboard_builds "
            "WHERE NOT is_final OR period_start >= :since"
        ),
        {"since": since},
    )
    return {
        Board(r.period, r.period_start): BuildInfo(
            r.computed_at, r.entries, r.is_final, r.rebuilt_at
        )
        for r in rows
    }


async def prune(session: AsyncSession, *, daily_before: date, others_before: date) -> int:
    """Delete closed boards older than the retention (all time is never pruned)."""
    deleted = 0
    for period, before in (
        ("daily", daily_before),
        ("weekly", others_before),
        ("monthly", others_before),
    ):
        result = await session.execute(
            text(
                "WITH gone AS (DELETE FROM leaderboard_cache WHERE period = :p "
                "AND period_start < :before RETURNING 1), "
                "builds AS (DELETE FROM leaderboard_builds WHERE period = :p "
                "AND period_start < :before) "
                "SELECT count(*) FROM gone"
            ),
            {"p": period, "before": before},
        )
        deleted += int(result.scalar_one())
    return deleted


# GET /v1/leaderboards/{period} reads a board in two parts: the caller's part on every read
# (_READ_MINE) and the top N (_READ_TOP), which the API keeps per process and reads again only
# when the board's key moved: (leaderboard_builds.computed_at, leaderboard_names.generation).
# Both parts carry the key, read in their own snapshot; the service puts them together only when
# the keys are equal, else it reads the whole answer in one statement (read_board_sql): under
# READ COMMITTED a reader always sees one board, all of the old rows, counts and build time, or
# all of the new ones. Every part is an index scan without a sort: the caller and the build by
# primary key; the top N and the neighbours as ranges of ix_leaderboard_cache_board_order
# (period, period_start, total_steps DESC, user_id), which is the order of the ranks (ties by
# user id). A neighbour above is a tie earlier by user id or the nearest higher totals; below
# likewise. The caller's total enters the ranges as a scalar subquery (a parameter of the index
# scan).
#
# Ranks are counted, not stored (a walker moving would shift everyone they pass):
# - in the top N, a walker's rank is 1 + the entries above them with a higher total, all of
#   which are in the top N too: RANK() over the N rows (so the top n < N is a prefix of it);
# - the caller and the neighbours are five consecutive entries of the board (the window: up to
#   two above, the caller, up to two below). Only the window's first entry (the `lead`) is
#   counted: its rank is 1 + the walkers of the buckets above its total's bucket
#   (leaderboard_rank_counts.walkers_above: one probe) + the walkers of its own bucket with a
#   higher total (a short index-only range; the ORDER BY keeps it on the board-order index:
#   with the board's rows estimated at one, a generic plan took the primary key and filtered
#   the whole board, 10 ms a read at 2,000 walkers), and its `ties` are the entries of its
#   total before it (a range of the same index, usually empty). rank_window() walks on from
#   there: each next entry is one position further, and its rank is its position unless it ties
#   the entry before it. Until run 26 each of the window's distinct totals was counted in SQL
#   (up to five probes and five ranges: ~20 % more of PostgreSQL's CPU a read).
_MINE_CTES = """
    me AS MATERIALIZED (
        SELECT u.is_active, c.total_steps
        FROM users u
        LEFT JOIN leaderboard_cache c
               ON c.period = $1 AND c.period_start = $2 AND c.user_id = u.id
        WHERE u.id = $3
    ),
    above AS MATERIALIZED (
        SELECT * FROM (
            (SELECT c.user_id, c.total_steps FROM leaderboard_cache c
             WHERE c.period = $1 AND c.period_start = $2
               AND c.total_steps = (SELECT total_steps FROM me) AND c.user_id < $3
             ORDER BY c.user_id DESC LIMIT 2)
            UNION ALL
            (SELECT c.user_id, c.total_steps FROM leaderboard_cache c
             WHERE c.period = $1 AND c.period_start = $2
               AND c.total_steps > (SELECT total_steps FROM me)
             ORDER BY c.total_steps, c.user_id DESC LIMIT 2)
        ) a
        ORDER BY a.total_steps, a.user_id DESC LIMIT 2
    ),
    below AS MATERIALIZED (
        SELECT * FROM (
            (SELECT c.user_id, c.total_steps FROM leaderboard_cache c
             WHERE c.period = $1 AND c.period_start = $2
               AND c.total_steps = (SELECT total_steps FROM me) AND c.user_id > $3
             ORDER BY c.user_id LIMIT 2)
            UNION ALL
            (SELECT c.user_id, c.total_steps FROM leaderboard_cache c
             WHERE c.period = $1 AND c.period_start = $2
               AND c.total_steps < (SELECT total_steps FROM me)
             ORDER BY c.total_steps DESC, c.user_id LIMIT 2)
        ) b
        ORDER BY b.total_steps DESC, b.user_id LIMIT 2
    ),
    lead AS MATERIALIZED (
        SELECT f.user_id, f.total_steps FROM (
            (SELECT a.user_id, a.total_steps FROM above a
             ORDER BY a.total_steps DESC, a.user_id LIMIT 1)
            UNION ALL
            (SELECT CAST($3 AS uuid), m.total_steps FROM me m WHERE m.total_steps IS NOT NULL)
        ) f LIMIT 1
    )"""

_TOP_CTE = """
    top AS (
        SELECT c.user_id, c.total_steps FROM leaderboard_cache c
        WHERE c.period = $1 AND c.period_start = $2
        ORDER BY c.total_steps DESC, c.user_id LIMIT {limit}
    )"""

_ME_PART = """
    SELECT 'me' AS part, CAST(NULL AS integer) AS rank, CAST(NULL AS uuid) AS user_id,
           m.total_steps, CAST(NULL AS text) AS full_name, m.is_active AS flag,
           CAST(NULL AS timestamptz) AS at
    FROM me m"""

_BUILD_PART = """
    SELECT 'build' AS part, CAST(NULL AS integer) AS rank, CAST(NULL AS uuid) AS user_id,
           CAST(b.entries AS bigint) AS total_steps, CAST(NULL AS text) AS full_name,
           b.is_final AS flag, b.computed_at AS at
    FROM leaderboard_builds b WHERE b.period = $1 AND b.period_start = $2"""

_GENERATION_PART = """
    SELECT 'generation', NULL, NULL,
           coalesce((SELECT n.generation FROM leaderboard_names n WHERE n.id = 1), 0),
           NULL, NULL, NULL"""

_TOP_PART = """
    SELECT 'top', CAST(rank() OVER (ORDER BY t.total_steps DESC) AS integer), t.user_id,
           t.total_steps, u.full_name, NULL, NULL
    FROM top t JOIN users u ON u.id = t.user_id"""

_NEIGHBOUR_PARTS = """
    SELECT 'lead', CAST(1 + coalesce((SELECT k.walkers_above FROM leaderboard_rank_counts k
                                      WHERE k.period = $1 AND k.period_start = $2
                                        AND k.bucket = stepcoin_board_bucket(l.total_steps)), 0)
                          + (SELECT count(*) FROM (
                                SELECT FROM leaderboard_cache c
                                WHERE c.period = $1 AND c.period_start = $2
                                  AND c.total_steps > l.total_steps
                                  AND c.total_steps < stepcoin_board_bucket_end(l.total_steps)
                                ORDER BY c.period, c.period_start, c.total_steps DESC) w)
                        AS integer), l.user_id, l.total_steps, NULL, NULL, NULL
    FROM lead l
    UNION ALL
    SELECT 'ties', CAST((SELECT count(*) FROM (
                            SELECT FROM leaderboard_cache c
                            WHERE c.period = $1 AND c.period_start = $2
                              AND c.total_steps = l.total_steps AND c.user_id < l.user_id
                            ORDER BY c.period, c.period_start, c.total_steps DESC, c.user_id) w)
                        AS integer), NULL, NULL, NULL, NULL, NULL
    FROM lead l
    UNION ALL
    SELECT 'above', NULL, a.user_id, a.total_steps, u.full_name, NULL, NULL
    FROM above a JOIN users u ON u.id = a.user_id
    UNION ALL
    SELECT 'below', NULL, b.user_id, b.total_steps, u.full_name, NULL, NULL
    FROM below b JOIN users u ON u.id = b.user_id"""

# The whole answer in one statement (one snapshot): the fallback when the parts' keys differ.
_READ_BOARD = (
    f"WITH {_MINE_CTES},{_TOP_CTE}\n{_ME_PART}\nUNION ALL{_BUILD_PART}\nUNION ALL"
    f"{_GENERATION_PART}\nUNION ALL{_TOP_PART}\nUNION ALL{_NEIGHBOUR_PARTS}\n"
)
# The caller's part: the caller, the board's key, the neighbours.
READ_MINE = (
    f"WITH {_MINE_CTES}\n{_ME_PART}\nUNION ALL{_BUILD_PART}\nUNION ALL{_GENERATION_PART}"
    f"\nUNION ALL{_NEIGHBOUR_PARTS}\n"
)
# The top MAX_LIMIT of a board with its key (two parameters: period, start).
READ_TOP = (
    f"WITH {_TOP_CTE.replace('{limit}', str(MAX_LIMIT))}\n{_BUILD_PART}\nUNION ALL"
    f"{_GENERATION_PART}\nUNION ALL{_TOP_PART}\n"
)


@functools.cache
def read_board_sql(limit: int) -> str:
    """The whole answer of GET /v1/leaderboards/{period} for a top-`limit` board (1..100).

    The limit is part of the text, not a parameter: with LIMIT $n PostgreSQL cannot cost a
    generic plan and re-plans the statement on every call (about half of its time); with
    the limit in the text it settles on the cached generic plan of the prepared statement.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_LIMIT}")
    return _READ_BOARD.replace("{limit}", str(int(limit)))


def _board_order(row: dict[str, Any]) -> tuple[int, uuid.UUID]:
    return -row["total_steps"], row["user_id"]


def rank_window(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """The rows of READ_MINE or read_board_sql with every rank filled in: the caller's (`me`,
    None when they are not on the board) and the neighbours' (`above`, `below`), walked on from
    the window's first entry (`lead`: its rank; `ties`: the entries of its total before it,
    in the rank column), which this drops. The other parts come back as they were read."""
    out = [dict(row) for row in rows]
    lead = next((r for r in out if r["part"] == "lead"), None)
    ties = next((r["rank"] for r in out if r["part"] == "ties"), 0)
    parts = [r for r in out if r["part"] not in ("lead", "ties")]
    me = next((r for r in parts if r["part"] == "me"), None)
    if lead is None or me is None or me["total_steps"] is None:  # not on the board (or gone)
        return parts
    above = sorted((r for r in parts if r["part"] == "above"), key=_board_order)
    below = sorted((r for r in parts if r["part"] == "below"), key=_board_order)
    window = [*above, me, *below]
    rank = int(lead["rank"])
    position = rank + int(ties)
    previous = None
    for at, entry in enumerate(window):
        if at:
            position += 1
            if entry["total_steps"] != previous:  # the first of its total: rank = position
                rank = position
        entry["rank"] = rank
        previous = entry["total_steps"]
    return parts


async def read_board(
    driver: Any, period: str, start: date, user_id: uuid.UUID, limit: int
) -> list[dict[str, Any]]:
    """The whole board answer in one statement, on a bare asyncpg connection (a prepared
    statement, cached per connection), ranked (rank_window)."""
    return rank_window(await driver.fetch(read_board_sql(limit), period, start, user_id))


async def read_mine(
    driver: Any, period: str, start: date, user_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The caller's part of a board and the board's key (READ_MINE), ranked (rank_window)."""
    return rank_window(await driver.fetch(READ_MINE, period, start, user_id))


async def read_top(driver: Any, period: str, start: date) -> list[Any]:
    """The top MAX_LIMIT of a board and its key (READ_TOP)."""
    rows: list[Any] = await driver.fetch(READ_TOP, period, start)
    return rows


# The friend and group boards (issue 17, item 3): the same board rows, read over a set of
# walkers that social names by a query (`scope`: a walker's friends and the walker, a group's
# members). One statement, one snapshot: each walker of the set is one primary-key probe of
# leaderboard_cache (a set is at most a group's member cap), ranked over the set (ties share a
# rank, as on the global board); the top `limit`, the caller and two neighbours each side,
# and the board's build.
_READ_SCOPED = """
    WITH scope AS MATERIALIZED ({scope}),
    board AS MATERIALIZED (
        SELECT c.user_id, c.total_steps,
               CAST(rank() OVER (ORDER BY c.total_steps DESC) AS integer) AS rank,
               row_number() OVER (ORDER BY c.total_steps DESC, c.user_id) AS pos
        FROM scope s
        CROSS JOIN LATERAL (SELECT c.user_id, c.total_steps FROM leaderboard_cache c
                            WHERE c.period = :period AND c.period_start = :start
                              AND c.user_id = s.user_id OFFSET 0) c
    ),
    mine AS (SELECT pos FROM board WHERE user_id = :user_id)
    SELECT 'top' AS part, b.rank, b.user_id, b.total_steps, u.full_name, b.pos,
           CAST(NULL AS timestamptz) AS at, CAST(NULL AS boolean) AS flag
    FROM board b JOIN users u ON u.id = b.user_id WHERE b.pos <= :limit
    UNION ALL
    SELECT 'near', b.rank, b.user_id, b.total_steps, u.full_name, b.pos, NULL, NULL
    FROM board b JOIN mine m ON b.pos BETWEEN m.pos - 2 AND m.pos + 2
    JOIN users u ON u.id = b.user_id
    UNION ALL
    SELECT 'build', NULL, NULL, NULL, NULL, NULL, lb.computed_at, lb.is_final
    FROM leaderboard_builds lb WHERE lb.period = :period AND lb.period_start = :start
"""


async def read_scoped(
    session: AsyncSession,
    period: str,
    start: date,
    user_id: uuid.UUID,
    *,
    scope: str,
    scope_params: dict[str, Any],
    limit: int,
) -> list[Any]:
    """A board over the walkers of `scope` (SQL selecting `user_id`, from social)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_LIMIT}")
    result = await session.execute(
        text(_READ_SCOPED.replace("{scope}", scope)),
        {**scope_params, "period": period, "start": start, "user_id": user_id, "limit": limit},
    )
    return list(result.mappings().all())


async def walker_active(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return (
        await session.execute(
            text("SELECT 1 FROM users WHERE id = :u AND is_active AND deleted_at IS NULL"),
            {"u": user_id},
        )
    ).first() is not None


# A group's board (issue 17, item 3) from leaderboard_group_entries, the group's own copy of
# its members' board rows (migration 0033), in one statement: the top `limit` (an index range
# of ix_leaderboard_group_entries_order; RANK() over it is exact, as on the global board), the
# caller and up to two walkers each side (short index ranges around the caller's total), the
# number of entries ahead of the first of those (one index-only count: its total's rank and
# position; the service counts the others from it) and the board's build.
_GROUP_KEY = "e.group_id = :group_id AND e.period = :period AND e.period_start = :start"
_READ_GROUP = f"""
    WITH me AS MATERIALIZED (
        SELECT e.total_steps FROM leaderboard_group_entries e
        WHERE {_GROUP_KEY} AND e.user_id = :user_id
    ),
    above AS MATERIALIZED (
        SELECT * FROM (
            (SELECT e.user_id, e.total_steps FROM leaderboard_group_entries e
             WHERE {_GROUP_KEY} AND e.total_steps = (SELECT total_steps FROM me)
               AND e.user_id < :user_id
             ORDER BY e.total_steps DESC, e.user_id DESC LIMIT 2)
            UNION ALL
            (SELECT e.user_id, e.total_steps FROM leaderboard_group_entries e
             WHERE {_GROUP_KEY} AND e.total_steps > (SELECT total_steps FROM me)
             ORDER BY e.total_steps, e.user_id DESC LIMIT 2)
        ) a
        ORDER BY a.total_steps, a.user_id DESC LIMIT 2
    ),
    below AS MATERIALIZED (
        SELECT * FROM (
            (SELECT e.user_id, e.total_steps FROM leaderboard_group_entries e
             WHERE {_GROUP_KEY} AND e.total_steps = (SELECT total_steps FROM me)
               AND e.user_id > :user_id
             ORDER BY e.total_steps DESC, e.user_id LIMIT 2)
            UNION ALL
            (SELECT e.user_id, e.total_steps FROM leaderboard_group_entries e
             WHERE {_GROUP_KEY} AND e.total_steps < (SELECT total_steps FROM me)
             ORDER BY e.total_steps DESC, e.user_id LIMIT 2)
        ) b
        ORDER BY b.total_steps DESC, b.user_id LIMIT 2
    ),
    near AS MATERIALIZED (
        SELECT user_id, total_steps FROM above
        UNION ALL SELECT CAST(:user_id AS uuid), total_steps FROM me
        UNION ALL SELECT user_id, total_steps FROM below
    ),
    first AS MATERIALIZED (
        SELECT user_id, total_steps FROM near ORDER BY total_steps DESC, user_id LIMIT 1
    )
    SELECT 'top' AS part, CAST(rank() OVER (ORDER BY t.total_steps DESC) AS integer) AS rank,
           t.user_id, t.total_steps, u.full_name, CAST(NULL AS timestamptz) AS at,
           CAST(NULL AS boolean) AS flag
    FROM (SELECT e.user_id, e.total_steps FROM leaderboard_group_entries e
          WHERE {_GROUP_KEY} ORDER BY e.total_steps DESC, e.user_id LIMIT :limit) t
    JOIN users u ON u.id = t.user_id
    UNION ALL
    SELECT 'near', NULL, n.user_id, n.total_steps, u.full_name, NULL, NULL
    FROM near n JOIN users u ON u.id = n.user_id
    UNION ALL
    SELECT 'ahead',
           CAST((SELECT count(*) FROM leaderboard_group_entries e
                 WHERE {_GROUP_KEY} AND e.total_steps > f.total_steps) AS integer),
           f.user_id,
           (SELECT count(*) FROM leaderboard_group_entries e
            WHERE {_GROUP_KEY} AND e.total_steps = f.total_steps AND e.user_id < f.user_id),
           NULL, NULL, NULL
    FROM first f
    UNION ALL
    SELECT 'build', NULL, NULL, NULL, NULL, lb.computed_at, lb.is_final
    FROM leaderboard_builds lb WHERE lb.period = :period AND lb.period_start = :start
"""


async def read_group(
    session: AsyncSession, period: str, start: date, group_id: int, user_id: uuid.UUID, limit: int
) -> list[Any]:
    """A group's board (_READ_GROUP): parts top, near, ahead, build."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_LIMIT}")
    result = await session.execute(
        text(_READ_GROUP),
        {
            "group_id": group_id,
            "period": period,
            "start": start,
            "user_id": user_id,
            "limit": limit,
        },
    )
    return list(result.mappings().all())

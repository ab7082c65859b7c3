"""The challenges' queries. Flushes, never commits.

The scores read the steps domain's `step_records` (the approved steps of every source of a
day, and how each was entered): the one place that says whether a day's steps were typed in
by hand, which `step_days` does not keep."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CHALLENGE_COLUMNS = (
    "c.id, c.template, c.name, c.creator_id, c.by_staff, c.audience, c.group_id, c.timezone, "
    "c.starts_on, c.ends_on, c.params, c.daily_cap, c.entry_fee_coins, c.house_prize_coins, "
    "c.min_participants, c.late_join, c.grace_hours, c.status, c.outcome, c.escrow_coins, "
    "c.pool_coins, c.cancel_reason, c.created_at, c.published_at, c.started_at, c.ended_at, "
    "c.finished_at, c.scores_at, "
    "(SELECT count(*) FROM challenge_participants p WHERE p.challenge_id = c.id "
    "AND p.status = 'joined') AS participants"
)


def _one(result: Any) -> dict[str, Any] | None:
    row = result.mappings().one_or_none()
    return dict(row) if row is not None else None


def _all(result: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in result.mappings()]


async def insert_challenge(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(
        text(
            "INSERT INTO challenges (id, template, name, creator_id, by_staff, audience, "
            "group_id, timezone, starts_on, ends_on, params, daily_cap, entry_fee_coins, "
            "house_prize_coins, min_participants, late_join, grace_hours, status, published_at) "
            "VALUES (:id, :template, :name, :creator_id, :by_staff, :audience, :group_id, "
            ":timezone, :starts_on, :ends_on, CAST(:params AS jsonb), :daily_cap, "
            ":entry_fee_coins, :house_prize_coins, :min_participants, :late_join, "
            ":grace_hours, :status, :published_at)"
        ),
        {
            **values,
            "params": orjson.dumps(values["params"]).decode(),
            "published_at": values["created_at"] if values["status"] == "scheduled" else None,
        },
    )


async def insert_invitees(
    session: AsyncSession, challenge_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> None:
    if user_ids:
        await session.execute(
            text(
                "INSERT INTO challenge_invitees (challenge_id, user_id) "
                "SELECT :c, unnest(CAST(:u AS uuid[])) ON CONFLICT DO NOTHING"
            ),
            {"c": challenge_id, "u": list(user_ids)},
        )


async def challenge(
    session: AsyncSession, challenge_id: uuid.UUID, *, for_update: bool = False
) -> dict[str, Any] | None:
    lock = " FOR UPDATE OF c" if for_update else ""
    return _one(
        await session.execute(
            text(f"SELECT {CHALLENGE_COLUMNS} FROM challenges c WHERE c.id = :id{lock}"),
            {"id": challenge_id},
        )
    )


async def is_invited(session: AsyncSession, challenge_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return (
        await session.execute(
            text("SELECT 1 FROM challenge_invitees WHERE challenge_id = :c AND user_id = :u"),
            {"c": challenge_id, "u": user_id},
        )
    ).first() is not None


async def invitees(session: AsyncSession, challenge_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.execute(
        text("SELECT user_id FROM challenge_invitees WHERE challenge_id = :c ORDER BY user_id"),
        {"c": challenge_id},
    )
    return [r[0] for r in rows]


async def participant(
    session: AsyncSession, challenge_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    return _one(
        await session.execute(
            text(
                "SELECT * FROM challenge_participants WHERE challenge_id = :c AND user_id = :u"
                + lock
            ),
            {"c": challenge_id, "u": user_id},
        )
    )


async def participants(session: AsyncSession, challenge_id: uuid.UUID) -> list[dict[str, Any]]:
    return _all(
        await session.execute(
            text(
                "SELECT p.*, u.full_name, u.email, u.deleted_at IS NOT NULL AS deleted "
                "FROM challenge_participants p JOIN users u ON u.id = p.user_id "
                "WHERE p.challenge_id = :c ORDER BY p.joined_at, p.user_id"
            ),
            {"c": challenge_id},
        )
    )


async def join(
    session: AsyncSession,
    challenge_id: uuid.UUID,
    user_id: uuid.UUID,
    fee: int,
    team: int | None,
) -> int:
    """Insert or rejoin; the entry number (1 for the first join)."""
    entry = (
        await session.execute(
            text(
                "INSERT INTO challenge_participants AS p (challenge_id, user_id, status, "
                "entries, fee_held, team) VALUES (:c, :u, 'joined', 1, :fee, :team) "
                "ON CONFLICT (challenge_id, user_id) DO UPDATE SET status = 'joined', "
                "entries = p.entries + 1, fee_held = :fee, team = :team, joined_at = now(), "
                "left_at = NULL WHERE p.status = 'left' RETURNING entries"
            ),
            {"c": challenge_id, "u": user_id, "fee": fee, "team": team},
        )
    ).scalar_one_or_none()
    if entry is None:
        raise RuntimeError("join of a walker who is in already")  # checked before
    await add_escrow(session, challenge_id, fee)
    return int(entry)


async def leave(
    session: AsyncSession, challenge_id: uuid.UUID, user_id: uuid.UUID, *, keep_fee: bool
) -> None:
    """Out of the challenge, their days gone; keep_fee: the fee stays held in escrow (a leave
    after the start: it is refunded only if nobody wins or the challenge is cancelled)."""
    await session.execute(
        text(
            "UPDATE challenge_participants SET status = 'left', left_at = now(), "
            "fee_held = CASE WHEN :keep THEN fee_held ELSE 0 END "
            "WHERE challenge_id = :c AND user_id = :u"
        ),
        {"c": challenge_id, "u": user_id, "keep": keep_fee},
    )
    await session.execute(
        text("DELETE FROM challenge_scores WHERE challenge_id = :c AND user_id = :u"),
        {"c": challenge_id, "u": user_id},
    )


async def add_escrow(session: AsyncSession, challenge_id: uuid.UUID, coins: int) -> None:
    if coins:
        await session.execute(
            text("UPDATE challenges SET escrow_coins = escrow_coins + :n WHERE id = :c"),
            {"c": challenge_id, "n": coins},
        )


async def set_status(
    session: AsyncSession, challenge_id: uuid.UUID, status: str, **extra: Any
) -> None:
    """The new status and the columns that go with it (started_at, outcome, ...)."""
    allowed = {
        "published_at",
        "started_at",
        "ended_at",
        "finished_at",
        "outcome",
        "pool_coins",
        "cancel_reason",
    }
    assert set(extra) <= allowed
    sets = "".join(f", {k} = :{k}" for k in extra)
    await session.execute(
        text(f"UPDATE challenges SET status = :s{sets} WHERE id = :c"),
        {"c": challenge_id, "s": status, **extra},
    )


async def set_teams(
    session: AsyncSession, challenge_id: uuid.UUID, teams: dict[uuid.UUID, int]
) -> None:
    if teams:
        await session.execute(
            text(
                "UPDATE challenge_participants p SET team = x.team FROM unnest("
                "CAST(:u AS uuid[]), CAST(:t AS smallint[])) AS x(user_id, team) "
                "WHERE p.challenge_id = :c AND p.user_id = x.user_id"
            ),
            {"c": challenge_id, "u": list(teams), "t": list(teams.values())},
        )


_COUNTED_DAYS = """
    SELECT DISTINCT ON (r.user_id, r.recorded_date) r.user_id, r.recorded_date AS day,
           r.approved_steps AS steps
    FROM challenge_participants p
    JOIN step_records r ON r.user_id = p.user_id
     AND r.recorded_date BETWEEN :starts AND :ends
    WHERE p.challenge_id = :c AND p.status = 'joined'
      AND NOT r.is_deleted AND NOT r.is_manual AND r.source <> 'manual'
      AND r.status <> 'rejected' AND r.approved_steps > 0
    ORDER BY r.user_id, r.recorded_date,
             CASE r.source WHEN 'healthkit' THEN 3 WHEN 'health_connect' THEN 3
                           WHEN 'google_fit' THEN 2 ELSE 1 END DESC,
             (r.intervals IS NOT NULL) DESC, r.approved_steps DESC
"""


async def recompute_scores(session: AsyncSession, ch: dict[str, Any]) -> int:
    """Every joined participant's days from the step records, in one statement: changed days
    rewritten, days that no longer count removed. Returns the rows changed."""
    params = {
        "c": ch["id"],
        "starts": ch["starts_on"],
        "ends": ch["ends_on"],
        "cap": ch["daily_cap"],
    }
    changed = (
        await session.execute(
            text(
                f"""
                WITH counted AS MATERIALIZED ({_COUNTED_DAYS}),
                capped AS (
                    SELECT user_id, day, least(steps, coalesce(CAST(:cap AS integer), steps))
                        AS steps FROM counted
                ), gone AS (
                    DELETE FROM challenge_scores s WHERE s.challenge_id = :c
                      AND NOT EXISTS (SELECT 1 FROM capped x
                                      WHERE x.user_id = s.user_id AND x.day = s.day)
                    RETURNING 1
                ), written AS (
                    INSERT INTO challenge_scores AS s (challenge_id, user_id, day, steps)
                    SELECT :c, user_id, day, steps FROM capped
                    ON CONFLICT (challenge_id, user_id, day) DO UPDATE
                        SET steps = EXCLUDED.steps WHERE s.steps <> EXCLUDED.steps
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM written)
                """
            ),
            params,
        )
    ).scalar_one()
    await session.execute(
        text("UPDATE challenges SET scores_at = now() WHERE id = :c"), {"c": ch["id"]}
    )
    return int(changed)


async def score_rows(
    session: AsyncSession, challenge_id: uuid.UUID, target_steps: int, target_total: int
) -> list[dict[str, Any]]:
    """Each joined participant's total, days at or above target_steps, and the day their
    running total reached target_total (NULL: not reached)."""
    return _all(
        await session.execute(
            text(
                """
                SELECT p.user_id, p.joined_at, p.team, u.full_name,
                       u.deleted_at IS NOT NULL AS deleted,
                       coalesce(sum(s.steps), 0) AS total_steps,
                       count(s.day) FILTER (WHERE s.steps >= :target) AS good_days,
                       (SELECT min(day) FROM (
                            SELECT x.day, sum(x.steps) OVER (ORDER BY x.day) AS running
                            FROM challenge_scores x
                            WHERE x.challenge_id = p.challenge_id AND x.user_id = p.user_id
                        ) r WHERE r.running >= :total) AS reached_on
                FROM challenge_participants p
                JOIN users u ON u.id = p.user_id
                LEFT JOIN challenge_scores s
                  ON s.challenge_id = p.challenge_id AND s.user_id = p.user_id
                WHERE p.challenge_id = :c AND p.status = 'joined'
                GROUP BY p.challenge_id, p.user_id, p.joined_at, p.team, u.full_name,
                         u.deleted_at
                """
            ),
            {"c": challenge_id, "target": target_steps, "total": target_total},
        )
    )


async def days_of(
    session: AsyncSession, challenge_id: uuid.UUID, user_id: uuid.UUID
) -> list[dict[str, Any]]:
    return _all(
        await session.execute(
            text(
                "SELECT day, steps FROM challenge_scores WHERE challenge_id = :c "
                "AND user_id = :u ORDER BY day"
            ),
            {"c": challenge_id, "u": user_id},
        )
    )


async def fix_payouts(
    session: AsyncSession,
    challenge_id: uuid.UUID,
    rows: Sequence[dict[str, Any]],
) -> None:
    """Each participant's final rank, steps, win and payout (kind, coins, house coins)."""
    if not rows:
        return
    await session.execute(
        text(
            "UPDATE challenge_participants p SET final_rank = x.rank, final_steps = x.steps, "
            "winner = x.winner, payout_kind = x.kind, payout_coins = x.coins, "
            "house_coins = x.house FROM unnest(CAST(:u AS uuid[]), CAST(:r AS int[]), "
            "CAST(:s AS bigint[]), CAST(:w AS boolean[]), CAST(:k AS text[]), "
            "CAST(:n AS bigint[]), CAST(:h AS bigint[])) AS x(user_id, rank, steps, winner, "
            "kind, coins, house) WHERE p.challenge_id = :c AND p.user_id = x.user_id"
        ),
        {
            "c": challenge_id,
            "u": [r["user_id"] for r in rows],
            "r": [r["rank"] for r in rows],
            "s": [r["steps"] for r in rows],
            "w": [r["winner"] for r in rows],
            "k": [r["kind"] for r in rows],
            "n": [r["coins"] for r in rows],
            "h": [r["house"] for r in rows],
        },
    )


async def unpaid_chunk(
    session: AsyncSession, challenge_id: uuid.UUID, limit: int
) -> list[dict[str, Any]]:
    """The next payouts to make, locked (user-id order, as the wallets are locked)."""
    return _all(
        await session.execute(
            text(
                "SELECT user_id, payout_kind, payout_coins, house_coins, entries "
                "FROM challenge_participants WHERE challenge_id = :c "
                "AND payout_kind IS NOT NULL AND paid_at IS NULL "
                "ORDER BY user_id LIMIT :n FOR UPDATE"
            ),
            {"c": challenge_id, "n": limit},
        )
    )


async def mark_paid(
    session: AsyncSession, challenge_id: uuid.UUID, user_ids: Sequence[uuid.UUID], coins: int
) -> None:
    await session.execute(
        text(
            "UPDATE challenge_participants SET paid_at = now(), fee_held = 0 "
            "WHERE challenge_id = :c AND user_id = ANY(CAST(:u AS uuid[]))"
        ),
        {"c": challenge_id, "u": list(user_ids)},
    )
    await add_escrow(session, challenge_id, -coins)


async def open_challenges(session: AsyncSession, starting_by: date) -> list[dict[str, Any]]:
    """Challenges the tick may move: running or settling ones, and scheduled ones starting by
    `starting_by` (UTC tomorrow covers every timezone; the caller compares the exact start)."""
    return _all(
        await session.execute(
            text(
                "SELECT id, status, starts_on, timezone FROM challenges "
                "WHERE status IN ('active', 'grace', 'settling') "
                "OR (status = 'scheduled' AND starts_on <= :by) ORDER BY starts_on, id"
            ),
            {"by": starting_by},
        )
    )


async def clear_fees(session: AsyncSession, challenge_id: uuid.UUID) -> None:
    await session.execute(
        text(
            "UPDATE challenge_participants SET fee_held = 0 WHERE challenge_id = :c "
            "AND fee_held <> 0"
        ),
        {"c": challenge_id},
    )


async def lock_due(session: AsyncSession, challenge_id: uuid.UUID) -> dict[str, Any] | None:
    """The challenge locked, or None when another worker holds it (it does the work)."""
    return _one(
        await session.execute(
            text(
                f"SELECT {CHALLENGE_COLUMNS} FROM challenges c WHERE c.id = :id "
                "FOR UPDATE OF c SKIP LOCKED"
            ),
            {"id": challenge_id},
        )
    )


async def visible_to(
    session: AsyncSession,
    user_id: uuid.UUID,
    today: date,
    limit: int,
    group_ids: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """The walker's challenges (created, joined, invited), those open to everyone that
    still take joins, and every published one of the walker's groups (`group_ids`, from
    social), newest start first."""
    return _all(
        await session.execute(
            text(
                f"""
                SELECT {CHALLENGE_COLUMNS},
                       me.status AS my_status
                FROM challenges c
                LEFT JOIN challenge_participants me
                  ON me.challenge_id = c.id AND me.user_id = :u
                WHERE (c.status <> 'draft' OR c.creator_id = :u)
                  AND (c.creator_id = :u OR me.user_id IS NOT NULL
                       OR EXISTS (SELECT 1 FROM challenge_invitees i
                                  WHERE i.challenge_id = c.id AND i.user_id = :u)
                       OR (c.audience = 'everyone' AND c.status IN ('scheduled', 'active'))
                       OR c.group_id = ANY(CAST(:g AS bigint[])))
                ORDER BY c.starts_on DESC, c.id LIMIT :n
                """
            ),
            {"u": user_id, "n": limit, "g": list(group_ids)},
        )
    )


async def admin_list(session: AsyncSession, status: str | None, limit: int) -> list[dict[str, Any]]:
    return _all(
        await session.execute(
            text(
                f"SELECT {CHALLENGE_COLUMNS}, u.email AS creator_email FROM challenges c "
                "LEFT JOIN users u ON u.id = c.creator_id "
                "WHERE CAST(:s AS text) IS NULL OR c.status = :s "
                "ORDER BY c.created_at DESC, c.id LIMIT :n"
            ),
            {"s": status, "n": limit},
        )
    )


async def status_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(text("SELECT status, count(*) FROM challenges GROUP BY status"))
    return {r[0]: int(r[1]) for r in rows}


async def memberships(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every challenge the walker is or was in, for the export and the deletion."""
    return _all(
        await session.execute(
            text(
                "SELECT c.id, c.name, c.template, c.status, c.starts_on, c.ends_on, "
                "c.entry_fee_coins, p.status AS my_status, p.joined_at, p.left_at, p.team, "
                "p.final_rank, p.final_steps, p.winner, p.payout_kind, p.payout_coins, "
                "p.house_coins, p.paid_at, p.fee_held "
                "FROM challenge_participants p JOIN challenges c ON c.id = p.challenge_id "
                "WHERE p.user_id = :u ORDER BY c.starts_on, c.id"
            ),
            {"u": user_id},
        )
    )


async def forget_invitations(session: AsyncSession, user_id: uuid.UUID) -> int:
    result = await session.execute(
        text("DELETE FROM challenge_invitees WHERE user_id = :u"), {"u": user_id}
    )
    return int(getattr(result, "rowcount", 0) or 0)

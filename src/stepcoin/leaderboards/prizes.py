"""Leaderboard prizes: a prize table per period, paid once per closed board.

An admin sets a period's table (rank ranges -> coins). When a closed board gets its final
snapshot (service.rebuild_if_due), the same transaction fixes its prize round: the table as it
is then and the winners, ranked as the board ranks them (1 + the walkers with more steps: ties
share a rank and each gets that rank's prize, so a tie at the last prized rank pays everyone in
it). Staff, deactivated and deleted walkers win nothing (their rank is not passed on).
Winners are paid by the job leaderboards:pay_prizes, queued with the final build and run every
minute: a walker with a flagged day in the period (waiting for review) waits; the first run
after the review settles (approved or rejected) pays them. Each prize is one ledger row with
the reference prize:<period>:<period start>:<user id>, so it is paid once whatever re-runs.
See docs/economy.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.errors import InvalidInput
from stepcoin.leaderboards.periods import Board
from stepcoin.leaderboards.schemas import PrizeLine
from stepcoin.notify import service as notify
from stepcoin.wallet import budgets
from stepcoin.wallet.service import PRIZE_REWARD, Entry

PAY_BATCH = 1_000


def reference(period: str, period_start: Any, user_id: uuid.UUID) -> str:
    return f"prize:{period}:{period_start}:{user_id}"


def check_table(lines: Sequence[PrizeLine]) -> list[PrizeLine]:
    """The lines sorted by rank; overlapping or reversed ranges are 422 invalid_prizes."""
    ordered = sorted(lines, key=lambda line: line.from_rank)
    last = 0
    for line in ordered:
        if line.to_rank < line.from_rank:
            raise InvalidInput(
                f"Ranks {line.from_rank} to {line.to_rank}: to_rank is below from_rank.",
                code="invalid_prizes",
            )
        if line.from_rank <= last:
            raise InvalidInput(
                f"Ranks {line.from_rank} to {line.to_rank} overlap the line before.",
                code="invalid_prizes",
            )
        last = line.to_rank
    return ordered


async def get_table(session: AsyncSession, period: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT from_rank, to_rank, coins FROM leaderboard_prizes WHERE period = :p "
            "ORDER BY from_rank"
        ),
        {"p": period},
    )
    return [dict(r) for r in rows.mappings()]


async def put_table(
    session: AsyncSession, period: str, lines: Sequence[PrizeLine], *, admin_id: uuid.UUID
) -> list[dict[str, Any]]:
    """Replace the period's table (an empty list: no prizes); audited. Boards already final
    keep the round they got; the new table counts from the next final snapshot."""
    ordered = check_table(lines)
    before = await get_table(session, period)
    await session.execute(text("DELETE FROM leaderboard_prizes WHERE period = :p"), {"p": period})
    if ordered:
        await session.execute(
            text(
                "INSERT INTO leaderboard_prizes (period, from_rank, to_rank, coins, updated_by) "
                "SELECT :p, f, t, c, :by FROM unnest(CAST(:f AS int[]), CAST(:t AS int[]), "
                "CAST(:c AS bigint[])) AS x(f, t, c)"
            ),
            {
                "p": period,
                "f": [line.from_rank for line in ordered],
                "t": [line.to_rank for line in ordered],
                "c": [line.coins for line in ordered],
                "by": admin_id,
            },
        )
    after = await get_table(session, period)
    await audit.record(
        session,
        admin_id=admin_id,
        action="leaderboard.prizes_set",
        entity_type="leaderboard_prizes",
        entity_id=period,
        before={"prizes": before},
        after={"prizes": after},
    )
    return after


async def open_rounds(session: AsyncSession, boards: Sequence[Board]) -> int:
    """Fix the prize round of each board made final in the caller's transaction (the final
    build's): the period's table and the winners of the final snapshot. A board with a round
    already, or whose period has no table, gets none. Returns the winners added."""
    added = 0
    for board in boards:
        table = await get_table(session, board.period)
        if not table:
            continue
        created = (
            await session.execute(
                text(
                    "INSERT INTO leaderboard_prize_rounds (period, period_start, prizes) "
                    "VALUES (:p, :s, CAST(:t AS jsonb)) ON CONFLICT DO NOTHING RETURNING 1"
                ),
                {"p": board.period, "s": board.start, "t": orjson.dumps(table).decode()},
            )
        ).scalar_one_or_none()
        if created is None:
            continue
        max_rank = max(line["to_rank"] for line in table)
        # the walkers ranked up to max_rank: those with at least the total of the max_rank-th
        # (an index range of the board's order), ranked as the board ranks (1 + those above)
        result = await session.execute(
            text(
                """
                WITH cut AS (
                    SELECT coalesce((SELECT total_steps FROM leaderboard_cache
                                     WHERE period = :p AND period_start = :s
                                     ORDER BY total_steps DESC, user_id
                                     OFFSET :max_rank - 1 LIMIT 1), 0) AS steps
                ), ranked AS (
                    SELECT c.user_id, c.total_steps,
                           rank() OVER (ORDER BY c.total_steps DESC) AS rank
                    FROM leaderboard_cache c, cut
                    WHERE c.period = :p AND c.period_start = :s AND c.total_steps > 0
                      AND c.total_steps >= cut.steps
                ), prized AS (
                    SELECT r.user_id, r.rank, r.total_steps, t.coins
                    FROM ranked r
                    JOIN unnest(CAST(:f AS int[]), CAST(:t AS int[]), CAST(:c AS bigint[]))
                        AS t(from_rank, to_rank, coins)
                      ON r.rank BETWEEN t.from_rank AND t.to_rank
                    JOIN users u ON u.id = r.user_id
                    WHERE u.role = 'user' AND u.is_active AND u.deleted_at IS NULL
                ), inserted AS (
                    INSERT INTO leaderboard_prize_awards (period, period_start, user_id,
                        period_end, rank, total_steps, coins)
                    SELECT :p, :s, user_id, :e, rank, total_steps, coins FROM prized
                    ON CONFLICT DO NOTHING
                    RETURNING coins
                )
                UPDATE leaderboard_prize_rounds SET
                    winners = (SELECT count(*) FROM inserted),
                    coins = (SELECT coalesce(sum(coins), 0) FROM inserted)
                WHERE period = :p AND period_start = :s
                RETURNING winners
                """
            ),
            {
                "p": board.period,
                "s": board.start,
                "e": board.end,
                "max_rank": max_rank,
                "f": [line["from_rank"] for line in table],
                "t": [line["to_rank"] for line in table],
                "c": [line["coins"] for line in table],
            },
        )
        added += int(result.scalar_one())
    return added


async def pay_waiting(session: AsyncSession, *, limit: int = PAY_BATCH) -> tuple[int, int]:
    """Pay up to `limit` waiting prizes whose walker has no flagged day in the period, in the
    caller's transaction: (paid, coins). Awards are locked (SKIP LOCKED: two runs share the
    work), the coins move through the wallet's one door, and a replay moves nothing. Awards a
    prizes budget held are marked paid here once the budget's release has paid them."""
    await session.execute(
        text(
            "UPDATE leaderboard_prize_awards a SET status = 'paid', paid_at = c.created_at, "
            "transaction_id = c.id FROM coin_transactions c WHERE a.status = 'held' "
            "AND c.user_id = a.user_id AND c.transaction_type = 'prize_reward' "
            "AND c.reference_id = format('prize:%s:%s:%s', a.period, a.period_start, a.user_id)"
        )
    )
    rows = (
        (
            await session.execute(
                text(
                    """
                    SELECT a.period, a.period_start, a.user_id, a.rank, a.coins
                    FROM leaderboard_prize_awards a
                    JOIN users u ON u.id = a.user_id
                    WHERE a.status = 'waiting' AND u.is_active AND u.deleted_at IS NULL
                      AND NOT EXISTS (
                          SELECT 1 FROM step_records r
                          WHERE r.user_id = a.user_id
                            AND r.recorded_date BETWEEN a.period_start AND a.period_end
                            AND r.status = 'flagged' AND NOT r.is_deleted)
                    ORDER BY a.user_id, a.period, a.period_start
                    LIMIT :limit
                    FOR UPDATE OF a SKIP LOCKED
                    """
                ),
                {"limit": limit},
            )
        )
        .mappings()
        .all()
    )
    if not rows:
        return 0, 0
    entries: dict[uuid.UUID, list[Entry]] = {}
    for row in rows:
        note = (
            f"Leaderboard prize: rank {row['rank']} of the {row['period']} board "
            f"of {row['period_start'].isoformat()}"
        )
        entries.setdefault(row["user_id"], []).append(
            Entry(
                row["coins"],
                PRIZE_REWARD,
                reference(row["period"], row["period_start"], row["user_id"]),
                note,
            )
        )
    # under the prizes' issuance budgets: a prize a budget at its cap holds is pending for
    # the walker, its award `held`, paid by wallet:release_held when there is room
    issued = await budgets.issue_many(session, "prizes", entries)
    by_reference = {p.reference_id: p for items in issued.paid.values() for p in items}
    keyed = [(row, reference(row["period"], row["period_start"], row["user_id"])) for row in rows]
    paid = [(row, by_reference[ref]) for row, ref in keyed if ref in by_reference]
    held = [row for row, ref in keyed if ref not in by_reference]
    if held:
        await session.execute(
            text(
                "UPDATE leaderboard_prize_awards a SET status = 'held' FROM unnest("
                "CAST(:p AS text[]), CAST(:s AS date[]), CAST(:u AS uuid[])) AS x(p, s, u) "
                "WHERE a.period = x.p AND a.period_start = x.s AND a.user_id = x.u"
            ),
            {
                "p": [row["period"] for row in held],
                "s": [row["period_start"] for row in held],
                "u": [row["user_id"] for row in held],
            },
        )
    await session.execute(
        text(
            "UPDATE leaderboard_prize_awards a SET status = 'paid', paid_at = now(), "
            "transaction_id = x.tx FROM unnest(CAST(:p AS text[]), CAST(:s AS date[]), "
            "CAST(:u AS uuid[]), CAST(:tx AS bigint[])) AS x(p, s, u, tx) "
            "WHERE a.period = x.p AND a.period_start = x.s AND a.user_id = x.u"
        ),
        {
            "p": [row["period"] for row, _ in paid],
            "s": [row["period_start"] for row, _ in paid],
            "u": [row["user_id"] for row, _ in paid],
            "tx": [p.id for _, p in paid],
        },
    )
    # each winner hears of it once (a held prize too: its coins show as pending)
    await notify.notify_many(
        session,
        [
            notify.Note(
                user_id=row["user_id"],
                type="leaderboard_prize",
                title="You won a leaderboard prize",
                body=f"Rank {row['rank']} on the {row['period']} board: {row['coins']} coins.",
                dedupe_key=ref,
                data={
                    "screen": "leaderboards",
                    "period": row["period"],
                    "period_start": row["period_start"].isoformat(),
                    "rank": row["rank"],
                    "coins": row["coins"],
                },
            )
            for row, ref in keyed
        ],
    )
    new = [(row, p) for row, p in paid if not p.replayed]
    return len(new), sum(row["coins"] for row, _ in new)


async def list_awards(
    session: AsyncSession, period: str, *, limit: int = 100
) -> list[dict[str, Any]]:
    """The latest awards of a period (the console's table), newest board first."""
    rows = await session.execute(
        text(
            "SELECT a.period_start, a.user_id, u.full_name, a.rank, a.total_steps, a.coins, "
            "a.status, a.paid_at FROM leaderboard_prize_awards a JOIN users u ON u.id = a.user_id "
            "WHERE a.period = :p ORDER BY a.period_start DESC, a.rank, a.user_id LIMIT :limit"
        ),
        {"p": period, "limit": limit},
    )
    return [dict(r) for r in rows.mappings()]


async def awards_of_user(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """A walker's prizes, newest board first (their data export)."""
    rows = await session.execute(
        text(
            "SELECT period, period_start, rank, total_steps, coins, status, paid_at "
            "FROM leaderboard_prize_awards WHERE user_id = :u "
            "ORDER BY period_start DESC, period"
        ),
        {"u": user_id},
    )
    return [dict(r) for r in rows.mappings()]

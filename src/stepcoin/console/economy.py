"""Read-only figures for the console's overview: the review queue, orders, steps and coins.

Each function is one aggregate statement (one round trip). The costs quoted are for about
1M users, ~300k walkers a day and a ledger of a few hundred million rows; "index" names an
index that exists today (see the models), "scan" a full pass over the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.shop.models import ORDER_STATUSES

ECONOMY_DAYS = 90

# The ledger's transaction types (wallet.models.TRANSACTION_TYPES) as the overview counts them.
ISSUED_TYPES = ("step_reward", "achievement_reward", "admin_adjustment")  # positive rows only
CLAWBACK_TYPES = ("reversal", "admin_adjustment")  # negative rows only


@dataclass(frozen=True, slots=True)
class Queue:
    size: int
    oldest: datetime | None

    def age(self, now: datetime | None = None) -> str:
        """How long the oldest record has waited: '3 d 4 h', '2 h 5 min', '7 min' ('—': none)."""
        if self.oldest is None:
            return "—"
        elapsed = (now or datetime.now(UTC)) - self.oldest
        minutes = max(0, int(elapsed.total_seconds() // 60))
        days, rest = divmod(minutes, 24 * 60)
        hours, mins = divmod(rest, 60)
        if days:
            return f"{days} d {hours} h"
        if hours:
            return f"{hours} h {mins} min"
        return f"{mins} min"


@dataclass(frozen=True, slots=True)
class EconomyDay:
    day: date
    issued: int  # positive step_reward + achievement_reward + admin_adjustment
    redeemed: int  # coins spent on orders (redemption rows), gross
    refunded: int  # coins returned for cancelled or failed orders (refund rows)
    clawed_back: int  # reversals of step rewards + negative admin adjustments


@dataclass(frozen=True, slots=True)
class Economy:
    days: list[EconomyDay]
    issued: int
    redeemed: int
    refunded: int
    clawed_back: int

    def chart_points(self) -> list[tuple[str, int, int]]:
        """(UTC day, issued, redeemed) for paired_bar_chart."""
        return [(d.day.isoformat(), d.issued, d.redeemed) for d in self.days]


def utc_today() -> date:
    return datetime.now(UTC).date()


async def review_queue(session: AsyncSession) -> Queue:
    """Flagged records still waiting for a person, and when the oldest arrived.

    The same definition as steps.review.list_validations(status="flagged"): flagged, not
    reviewed, not superseded by a newer sync. Cost: an index-only scan of the partial index
    ix_step_validations_review_queue, proportional to the queue (not to the table).
    """
    row = (
        await session.execute(
            text(
                "SELECT count(*) AS size, min(created_at) AS oldest FROM step_validations "
                "WHERE status = 'flagged' AND reviewed_at IS NULL AND superseded_by IS NULL"
            )
        )
    ).one()
    return Queue(size=int(row.size), oldest=row.oldest)


async def orders_by_status(session: AsyncSession) -> list[tuple[str, int]]:
    """Every order status with its count (zero included), in the lifecycle's order.

    Cost: an index-only scan of ix_orders_status_created, i.e. all orders (a few million at
    1M users: some hundreds of ms; the Prometheus collector runs the same query).
    """
    rows = await session.execute(text("SELECT status, count(*) AS n FROM orders GROUP BY status"))
    counts = {row.status: int(row.n) for row in rows}
    known = [(status, counts.pop(status, 0)) for status in ORDER_STATUSES]
    return known + sorted(counts.items())


async def approved_steps_on(session: AsyncSession, day: date) -> tuple[int, int]:
    """(walkers, steps) credited for `day`: the sum of step_days.credited_steps, i.e. each
    walker's credited source's last approved count (sources are never added up).

    `day` is the records' own date (each walker's local day); the overview passes the current
    UTC date. Driven from step_records (partition pruning + ix_step_records_recorded_date)
    with one primary-key probe of step_days per walker of that day, because step_days has no
    index on recorded_date alone: ~300k probes at 1M users, well under a second.
    """
    row = (
        await session.execute(
            text(
                """
                SELECT count(*) AS walkers, coalesce(sum(steps), 0) AS steps FROM (
                    SELECT (SELECT d.credited_steps FROM step_days d
                            WHERE d.user_id = r.user_id AND d.recorded_date = :day) AS steps
                    FROM (SELECT DISTINCT user_id FROM step_records
                          WHERE recorded_date = :day) r
                ) x WHERE steps > 0
                """
            ),
            {"day": day},
        )
    ).one()
    return int(row.walkers), int(row.steps)


async def wallet_totals(session: AsyncSession) -> tuple[int, int]:
    """(outstanding, pending): sums of wallets.available_coins (the liability: coins walkers
    can spend) and wallets.pending_coins (held for records in review).

    Cost: a sequential scan of wallets, one narrow row per user (~100 ms at 1M users).
    """
    row = (
        await session.execute(
            text(
                "SELECT coalesce(sum(available_coins), 0) AS available, "
                "coalesce(sum(pending_coins), 0) AS pending FROM wallets"
            )
        )
    ).one()
    return int(row.available), int(row.pending)


async def top_earners(session: AsyncSession, limit: int = 10) -> list[dict[str, Any]]:
    """The `limit` wallets with the most coins ever earned (lifetime_earned), with the user.

    Cost: a sequential scan of wallets with a top-N heap sort (~100 ms at 1M users; there is
    no index on lifetime_earned), then `limit` primary-key probes of users.
    """
    rows = await session.execute(
        text(
            """
            SELECT t.user_id, u.email, u.full_name, u.is_active, t.lifetime_earned,
                   t.available_coins
            FROM (SELECT user_id, lifetime_earned, available_coins FROM wallets
                  WHERE lifetime_earned > 0
                  ORDER BY lifetime_earned DESC, user_id LIMIT :limit) t
            JOIN users u ON u.id = t.user_id
            ORDER BY t.lifetime_earned DESC, t.user_id
            """
        ),
        {"limit": limit},
    )
    return [dict(row) for row in rows.mappings()]


async def economy(
    session: AsyncSession, *, days: int = ECONOMY_DAYS, today: date | None = None
) -> Economy:
    """Coins issued, redeemed, refunded and clawed back per UTC day over the last `days` days
    (today included), every day present (zeros where nothing moved), with the totals.

    Cost: the BRIN index ix_coin_transactions_created_brin (the ledger is append-only,
    created_at follows insertion) limits the read to the block ranges of the last 90 days;
    the aggregate still reads those rows (tens of millions at a million walkers: seconds).
    The next step at that scale is a daily roll-up table or caching the closed days.
    """
    last = today or utc_today()
    first = last - timedelta(days=days - 1)
    since = datetime.combine(first, time(0), tzinfo=UTC)
    rows = await session.execute(
        text(
            """
            SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
                   coalesce(sum(amount) FILTER (WHERE amount > 0
                       AND transaction_type = ANY(:issued)), 0) AS issued,
                   coalesce(-sum(amount) FILTER (WHERE transaction_type = 'redemption'), 0)
                       AS redeemed,
                   coalesce(sum(amount) FILTER (WHERE transaction_type = 'refund'), 0)
                       AS refunded,
                   coalesce(-sum(amount) FILTER (WHERE amount < 0
                       AND transaction_type = ANY(:clawback)), 0) AS clawed_back
            FROM coin_transactions
            WHERE created_at >= :since
            GROUP BY 1
            """
        ),
        {"since": since, "issued": list(ISSUED_TYPES), "clawback": list(CLAWBACK_TYPES)},
    )
    by_day = {row.day: row for row in rows}
    series: list[EconomyDay] = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = by_day.get(day)
        series.append(
            EconomyDay(
                day=day,
                issued=int(row.issued) if row else 0,
                redeemed=int(row.redeemed) if row else 0,
                refunded=int(row.refunded) if row else 0,
                clawed_back=int(row.clawed_back) if row else 0,
            )
        )
    return Economy(
        days=series,
        issued=sum(d.issued for d in series),
        redeemed=sum(d.redeemed for d in series),
        refunded=sum(d.refunded for d in series),
        clawed_back=sum(d.clawed_back for d in series),
    )

"""Reports on wallets and the ledger for the people who run StepCoin: the coins outstanding
and pending, the top earners, coins issued and redeemed per day, one user's ledger.

Reading only (the settled days' cache in economy_days aside, which is written here and by the
daily job): every balance change goes through the wallet's posting function, never through
this module. The costs quoted are for about 1M users and a ledger of a few hundred million
rows; "index" names an index that exists today, "scan" a full pass over the table.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.wallet.repository import LEDGER_COLUMNS
from stepcoin.wallet.service import SHOP_TYPES

ECONOMY_DAYS = 90

# The ledger's transaction types (wallet.models.TRANSACTION_TYPES) as the overview counts them.
ISSUED_TYPES = (  # positive rows only
    "step_reward",
    "achievement_reward",
    "admin_adjustment",
    "campaign_reward",
    "prize_reward",
    "referral_reward",
)
CLAWBACK_TYPES = ("reversal", "admin_adjustment")  # negative rows only


@dataclass(frozen=True, slots=True)
class EconomyDay:
    day: date
    issued: int  # positive rows of ISSUED_TYPES
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


# One UTC day's ledger movements as the overview counts them (the parameters :issued and
# :clawback are ISSUED_TYPES and CLAWBACK_TYPES).
_DAY_TOTALS = """
    (created_at AT TIME ZONE 'UTC')::date AS day,
    coalesce(sum(amount) FILTER (WHERE amount > 0 AND transaction_type = ANY(:issued)), 0)
        AS issued,
    coalesce(-sum(amount) FILTER (WHERE transaction_type = 'redemption'), 0) AS redeemed,
    coalesce(sum(amount) FILTER (WHERE transaction_type = 'refund'), 0) AS refunded,
    coalesce(-sum(amount) FILTER (WHERE amount < 0 AND transaction_type = ANY(:clawback)), 0)
        AS clawed_back
"""
_TYPES = {"issued": list(ISSUED_TYPES), "clawback": list(CLAWBACK_TYPES)}

# A UTC day is settled (its totals can no longer change) once it ended more than this long
# ago: ledger rows are stamped with the database's clock inside their transaction, so only a
# transaction still open across midnight could add to a day that has ended.
SETTLE_AFTER = timedelta(hours=1)


def settled_before(now: datetime | None = None) -> date:
    """The first UTC day that is not settled yet (days before it are)."""
    return ((now or datetime.now(UTC)) - SETTLE_AFTER).date()


async def settle_days(session: AsyncSession, first: date, before: date) -> int:
    """Store the totals of every settled day in [first, before) that is not stored yet.

    One aggregate over the ledger rows of the missing range (the BRIN index on created_at
    finds them), one row per day, zeros included, so a quiet day is not recomputed. Run by the
    daily job for yesterday and lazily by the overview for anything missing (first use).
    """
    missing = (
        await session.execute(
            text(
                "SELECT min(d)::date FROM generate_series(CAST(:first AS date), "
                "CAST(:before AS date) - 1, interval '1 day') AS d "
                "WHERE NOT EXISTS (SELECT 1 FROM economy_days e WHERE e.day = d::date)"
            ),
            {"first": first, "before": before},
        )
    ).scalar_one_or_none()
    if missing is None:
        return 0
    result = await session.execute(
        text(
            f"""
            WITH totals AS (
                SELECT {_DAY_TOTALS} FROM coin_transactions
                WHERE created_at >= CAST(:start AS date) AT TIME ZONE 'UTC'
                  AND created_at < CAST(:before AS date) AT TIME ZONE 'UTC'
                GROUP BY 1
            )
            INSERT INTO economy_days (day, issued, redeemed, refunded, clawed_back)
            SELECT d::date, coalesce(t.issued, 0), coalesce(t.redeemed, 0),
                   coalesce(t.refunded, 0), coalesce(t.clawed_back, 0)
            FROM generate_series(CAST(:start AS date), CAST(:before AS date) - 1,
                                 interval '1 day') AS d
            LEFT JOIN totals t ON t.day = d::date
            ON CONFLICT (day) DO NOTHING
            """
        ),
        {"start": missing, "before": before, **_TYPES},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def economy(
    session: AsyncSession,
    *,
    days: int = ECONOMY_DAYS,
    today: date | None = None,
    now: datetime | None = None,
) -> Economy:
    """Coins issued, redeemed, refunded and clawed back per UTC day over the last `days` days
    (today included), every day present (zeros where nothing moved), with the totals.

    Settled days come from economy_days (90 small rows); only the open day (and, in the first
    hour after midnight, yesterday) is summed from the ledger, through the BRIN index on
    coin_transactions(created_at): about one day of ledger rows. Days missing from the table
    (first use, a missed daily job) are settled here once.
    """
    last = today or utc_today()
    first = last - timedelta(days=days - 1)
    boundary = max(min(settled_before(now), last + timedelta(days=1)), first)
    if boundary > first:
        await settle_days(session, first, boundary)
    rows = list(
        await session.execute(
            text(
                "SELECT day, issued, redeemed, refunded, clawed_back FROM economy_days "
                "WHERE day >= :first AND day < :boundary"
            ),
            {"first": first, "boundary": boundary},
        )
    )
    rows += list(
        await session.execute(
            text(
                f"SELECT {_DAY_TOTALS} FROM coin_transactions "
                "WHERE created_at >= CAST(:boundary AS date) AT TIME ZONE 'UTC' GROUP BY 1"
            ),
            {"boundary": boundary, **_TYPES},
        )
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


async def ledger_page(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, int] | None,
) -> list[dict[str, Any]]:
    """Up to `limit` ledger rows of a user, newest first, strictly after the cursor, whether
    the user is active or not (the walker's own reader, list_transactions, skips inactive)."""
    params: dict[str, Any] = {"u": user_id, "limit": limit}
    position = ""
    if after is not None:
        params["after_at"], params["after_id"] = after
        position = "AND (created_at, id) < (:after_at, :after_id)"
    rows = await session.execute(
        text(
            f"SELECT {LEDGER_COLUMNS} FROM coin_transactions WHERE user_id = :u {position} "
            "ORDER BY created_at DESC, id DESC LIMIT :limit"
        ),
        params,
    )
    return [dict(r) for r in rows.mappings()]


async def movements_by_reference(
    session: AsyncSession, user_id: uuid.UUID, references: Sequence[str]
) -> list[dict[str, Any]]:
    """A user's ledger rows with one of the given references (an order and its refund),
    oldest first."""
    rows = await session.execute(
        text(
            "SELECT created_at, amount, transaction_type, reference_id, balance_after, note "
            "FROM coin_transactions WHERE user_id = :u AND reference_id = ANY(:refs) "
            "ORDER BY created_at, id"
        ),
        {"u": user_id, "refs": list(references)},
    )
    return [dict(r) for r in rows.mappings()]


# --- the liability (issue 15, item 5) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cohort:
    """The walkers who signed up in one UTC month, and their coins at the report's end."""

    month: str  # YYYY-MM
    walkers: int
    earned: int  # every movement but the shop's (rewards net of clawbacks and adjustments)
    redeemed: int  # spent in the shop, net of refunds

    @property
    def unredeemed(self) -> int:
        """The coins still held: the cohort's share of the liability."""
        return self.earned - self.redeemed

    @property
    def breakage_rate(self) -> float | None:
        """The share of the coins earned that were never redeemed (None: nothing earned)."""
        return None if self.earned <= 0 else round(self.unredeemed / self.earned, 4)


@dataclass(frozen=True, slots=True)
class Liability:
    as_of: date  # through the end of this UTC day
    outstanding: int  # coins walkers could spend then (the sum of balances)
    pending: int | None  # coins held for review; known now only (no history is kept)
    cohorts: list[Cohort]


_COHORT = "to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM')"


async def liability(session: AsyncSession, as_of: date, *, today: date | None = None) -> Liability:
    """The coins outstanding at the end of UTC day `as_of`, by sign-up month.

    Exact and type-agnostic: today's counters (wallets: lifetime_earned, lifetime_spent) minus
    the ledger rows written after the end of `as_of`. Cost: a scan of wallets joined to users
    (~0.5 s at 1M walkers) and the ledger's tail after `as_of` through the BRIN index on
    created_at (nothing for today; a month back, a month of rows).
    """
    end = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    params = {"end": end, "shop": sorted(SHOP_TYPES)}
    now_rows = await session.execute(
        text(
            f"""
            SELECT {_COHORT} AS month, count(*) AS walkers,
                   coalesce(sum(w.lifetime_earned), 0) AS earned,
                   coalesce(sum(w.lifetime_spent), 0) AS spent,
                   coalesce(sum(w.pending_coins), 0) AS pending
            FROM wallets w JOIN users u ON u.id = w.user_id
            WHERE u.created_at < :end
            GROUP BY 1
            """
        ),
        params,
    )
    tail_rows = await session.execute(
        text(
            f"""
            SELECT {_COHORT} AS month,
                   coalesce(sum(t.amount) FILTER (WHERE t.transaction_type <> ALL(:shop)), 0)
                       AS earned,
                   coalesce(-sum(t.amount) FILTER (WHERE t.transaction_type = ANY(:shop)), 0)
                       AS spent
            FROM coin_transactions t JOIN users u ON u.id = t.user_id
            WHERE t.created_at >= :end AND u.created_at < :end
            GROUP BY 1
            """
        ),
        params,
    )
    later = {row.month: row for row in tail_rows}
    cohorts = []
    pending = 0
    for row in sorted(now_rows, key=lambda r: r.month):
        after = later.get(row.month)
        cohorts.append(
            Cohort(
                month=row.month,
                walkers=int(row.walkers),
                earned=int(row.earned) - (int(after.earned) if after else 0),
                redeemed=int(row.spent) - (int(after.spent) if after else 0),
            )
        )
        pending += int(row.pending)
    current = as_of >= (today or utc_today())
    return Liability(
        as_of=as_of,
        outstanding=sum(c.unredeemed for c in cohorts),
        pending=pending if current else None,
        cohorts=cohorts,
    )


CENT = Decimal("0.01")


def money(coins: int, coins_per_unit: int) -> str:
    """Coins as an amount of the shop's currency, to the cent, as a decimal string (exact:
    no float on the way). A coin is worth 1 / shop.coins_per_currency_unit of a unit, the
    rate products are priced at."""
    return str((Decimal(coins) / Decimal(coins_per_unit)).quantize(CENT, ROUND_HALF_EVEN))

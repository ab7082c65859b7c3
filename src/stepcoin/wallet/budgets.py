"""Issuance budgets (issue 15, item 2): caps on the coins a source issues per period.

A budget is a cap an admin sets on one source of coins (`steps`, `achievements`, `campaigns`,
`prizes`, `referrals`) for one period (`day`, `week` from Monday, `month`; UTC). A source with
no budget issues freely.

`issue_many` is how a batch source pays rewards under its budgets, in the caller's transaction:
it locks the source's counters for the current periods (`issuance_usage`, one row per budget),
pays the walkers whose rewards fit under every cap through the wallet's one door
(`service.post_many`) and counts them, and HOLDS the rest: one `issuance_holds` row per reward
(unique by its type and reference, like the ledger, so a retried payout holds once) and the
coins added to the walker's pending coins (`stepcoin_wallet_hold_many`): nothing is lost, the
walker sees it coming. The check is atomic: the counters are locked until the paying
transaction ends, so two payouts never both fit in the last room. A walker's rewards of one
call are paid or held together.

`release_held` (the job `wallet:release_held`, every minute) pays the holds, oldest first,
when there is room again (a new period, a higher cap, a removed budget): the same ledger row
the reward would have written (its type, reference and note), the pending coins given back.

Alerts: when a counter crosses its budget's `alert_percent`, and when a budget stops paying
(its cap reached), a WARNING is logged once per period (`issuance_usage.alerted_at`,
`exhausted_at`); `/metrics` exposes `stepcoin_issuance_budget_used_ratio`; the console shows it.

The step sync pays inside one SQL statement on its hot path (stepcoin_apply_sync v6), so its
budgets (`steps`) are checked there: `steps_shares` gives the function this walker's stripe's
share of each cap (the counters are split over STRIPES rows, walkers by their id, so that
concurrent syncs do not queue on one row), read through a per-process cache (no round trip per
sync). A sync whose new coins do not fit holds them as a review of reason `issuance_budget`
(stepcoin.steps), paid by the job `steps:release_budget_holds` when there is room.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.errors import InvalidInput, NotFound
from stepcoin.wallet import service
from stepcoin.wallet.models import BUDGET_PERIODS, BUDGET_SOURCES

logger = logging.getLogger("stepcoin.wallet.budgets")

RELEASE_CHUNK = 500
STRIPES = 16  # the step sync's counters per budget (see steps_shares)
CACHE_TTL_SECONDS = 5.0


def period_start(period: str, day: date) -> date:
    """The first day of the UTC period holding `day` (weeks start on Monday)."""
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown period {period!r}")


def utc_today() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True, slots=True)
class Budget:
    source: str
    period: str
    cap_coins: int
    alert_percent: int


@dataclass(slots=True)
class Issued:
    """What issue_many did: the ledger rows written (or replayed) per walker, and the coins it
    held per walker."""

    paid: dict[uuid.UUID, list[service.Posted]] = field(default_factory=dict)
    held: dict[uuid.UUID, int] = field(default_factory=dict)


async def budgets_of(session: AsyncSession, source: str) -> list[Budget]:
    rows = await session.execute(
        text(
            "SELECT source, period, cap_coins, alert_percent FROM issuance_budgets "
            "WHERE source = :s ORDER BY period"
        ),
        {"s": source},
    )
    return [Budget(r.source, r.period, int(r.cap_coins), int(r.alert_percent)) for r in rows]


async def _lock_wallets(session: AsyncSession, users: Sequence[uuid.UUID]) -> None:
    """The one lock order: the walkers' wallets (by user id), then the counters. The step loop
    and post_many lock wallets first; a payout that locked a counter first could deadlock with
    one that holds a wallet (a re-lock of a wallet already held is free)."""
    await session.execute(
        text(
            "SELECT 1 FROM wallets WHERE user_id = ANY(CAST(:u AS uuid[])) "
            "ORDER BY user_id FOR UPDATE"
        ),
        {"u": sorted(set(users))},
    )


async def _lock_counters(
    session: AsyncSession, budgets: Sequence[Budget], today: date
) -> dict[str, int]:
    """Lock this period's counter of each budget (made at 0 when new); period -> issued."""
    keys = [(b.source, b.period, period_start(b.period, today)) for b in budgets]
    await session.execute(
        text(
            "INSERT INTO issuance_usage (source, period, period_start) "
            "SELECT * FROM unnest(CAST(:s AS text[]), CAST(:p AS text[]), CAST(:d AS date[])) "
            "ON CONFLICT DO NOTHING"
        ),
        {"s": [k[0] for k in keys], "p": [k[1] for k in keys], "d": [k[2] for k in keys]},
    )
    rows = await session.execute(
        text(
            "SELECT u.period, u.issued FROM issuance_usage u "
            "JOIN unnest(CAST(:s AS text[]), CAST(:p AS text[]), CAST(:d AS date[])) "
            "AS k(source, period, period_start) USING (source, period, period_start) "
            "WHERE u.stripe = 0 ORDER BY u.period FOR UPDATE OF u"
        ),
        {"s": [k[0] for k in keys], "p": [k[1] for k in keys], "d": [k[2] for k in keys]},
    )
    return {r.period: int(r.issued) for r in rows}


async def _count(
    session: AsyncSession,
    budgets: Sequence[Budget],
    issued: Mapping[str, int],
    coins: int,
    today: date,
) -> None:
    """Add `coins` to every locked counter; log each alert and exhaustion once a period."""
    if coins <= 0 or not budgets:
        return
    for budget in budgets:
        before = issued[budget.period]
        after = before + coins
        threshold = budget.cap_coins * budget.alert_percent / 100
        crossed = before < threshold <= after
        full = after >= budget.cap_coins
        await session.execute(
            text(
                "UPDATE issuance_usage SET issued = issued + :coins, "
                "alerted_at = CASE WHEN :crossed AND alerted_at IS NULL THEN now() "
                "ELSE alerted_at END, "
                "exhausted_at = CASE WHEN :full AND exhausted_at IS NULL THEN now() "
                "ELSE exhausted_at END "
                "WHERE source = :s AND period = :p AND period_start = :d AND stripe = 0"
            ),
            {
                "coins": coins,
                "crossed": crossed,
                "full": full,
                "s": budget.source,
                "p": budget.period,
                "d": period_start(budget.period, today),
            },
        )
        if crossed:
            _log_alert(budget.source, budget.period, after, budget.cap_coins)


def _log_alert(source: str, period: str, issued: int, cap: int) -> None:
    """A period's issuance crossed its budget's alert percentage (logged once a period)."""
    logger.warning(
        "issuance budget alert: %s of its %s cap issued",
        f"{issued / max(cap, 1):.0%}",
        period,
        extra={"source": source, "period": period, "issued": issued},
    )


def _log_reached(source: str, period: str) -> None:
    """A budget held its first reward of the period (logged once a period)."""
    logger.warning(
        "issuance budget reached: rewards are held until there is room",
        extra={"source": source, "period": period},
    )


def _room(budgets: Sequence[Budget], issued: Mapping[str, int]) -> int:
    return min(max(0, b.cap_coins - issued[b.period]) for b in budgets)


async def _exhausted(session: AsyncSession, budgets: Sequence[Budget], today: date) -> None:
    """A budget held a reward: say so once a period."""
    for budget in budgets:
        result = await session.execute(
            text(
                "UPDATE issuance_usage SET exhausted_at = now() WHERE source = :s AND period = :p "
                "AND period_start = :d AND stripe = 0 AND exhausted_at IS NULL"
            ),
            {"s": budget.source, "p": budget.period, "d": period_start(budget.period, today)},
        )
        if getattr(result, "rowcount", 0):
            _log_reached(budget.source, budget.period)


# Which of a payout's (walker, type, reference) triples a table holds already; both tables are
# unique by the triple (the ledger's UNIQUE key, issuance_holds' own: a reference is unique per
# walker, docs/scale-out.md "Ledger references per user").
_FOUND_IN = {
    "holds": "issuance_holds",
    "ledger": "coin_transactions",
}


async def _found(
    session: AsyncSession, entries: Mapping[uuid.UUID, Sequence[service.Entry]], where: str
) -> set[tuple[uuid.UUID, str, str]]:
    """The (walker, type, reference) of these entries already in the holds (a budget held
    them, paid since or not: a retried payout leaves them to the release, which pays each
    once) or in the ledger (post_many replays them)."""
    keys = [(u, e.transaction_type, e.reference_id) for u, items in entries.items() for e in items]
    if not keys:
        return set()
    rows = await session.execute(
        text(
            "SELECT k.u, k.kind, k.ref FROM unnest(CAST(:u AS uuid[]), CAST(:t AS text[]), "
            f"CAST(:r AS text[])) AS k(u, kind, ref) WHERE EXISTS (SELECT 1 FROM "
            f"{_FOUND_IN[where]} x WHERE x.transaction_type = k.kind AND x.reference_id = k.ref "
            "AND x.user_id = k.u)"
        ),
        {"u": [k[0] for k in keys], "t": [k[1] for k in keys], "r": [k[2] for k in keys]},
    )
    return {(r.u, str(r.kind), str(r.ref)) for r in rows}


async def issue_many(
    session: AsyncSession,
    source: str,
    entries: Mapping[uuid.UUID, Sequence[service.Entry]],
    *,
    today: date | None = None,
) -> Issued:
    """Pay rewards of one source under its budgets (see the module's docstring): the walkers
    whose rewards fit are paid (through post_many), the others' rewards are held."""
    if source not in BUDGET_SOURCES:
        raise ValueError(f"unknown source {source!r}")
    day = today or utc_today()
    budgets = await budgets_of(session, source)
    result = Issued()
    held = await _found(session, entries, "holds")  # held once: the release pays it
    if not budgets:
        result.paid = await service.post_many(
            session,
            {
                u: [e for e in items if (u, e.transaction_type, e.reference_id) not in held]
                for u, items in entries.items()
            },
        )
        return result
    await _lock_wallets(session, list(entries))
    issued = await _lock_counters(session, budgets, day)
    room = _room(budgets, issued)
    paid = await _found(session, entries, "ledger")
    to_pay: dict[uuid.UUID, list[service.Entry]] = {}
    to_hold: list[tuple[uuid.UUID, service.Entry]] = []
    for user in sorted(entries):
        items = [e for e in entries[user] if (user, e.transaction_type, e.reference_id) not in held]
        new = [e for e in items if (user, e.transaction_type, e.reference_id) not in paid]
        need = sum(e.amount for e in new if e.amount > 0)
        if need <= room:
            to_pay[user] = items
            room -= need
        else:
            to_pay[user] = [e for e in items if e not in new]  # replays only
            to_hold += [(user, e) for e in new]
    result.paid = await service.post_many(session, {u: i for u, i in to_pay.items() if i})
    paid_coins = sum(
        p.amount for rows in result.paid.values() for p in rows if not p.replayed and p.amount > 0
    )
    await _count(session, budgets, issued, paid_coins, day)
    if to_hold:
        result.held = await _hold(session, source, to_hold)
        await _exhausted(session, budgets, day)
    return result


async def _hold(
    session: AsyncSession, source: str, held: Sequence[tuple[uuid.UUID, service.Entry]]
) -> dict[uuid.UUID, int]:
    """Write the holds (once each) and add their coins to the walkers' pending coins."""
    rows = await session.execute(
        text(
            "INSERT INTO issuance_holds (user_id, source, amount, transaction_type, "
            "reference_id, note) "
            "SELECT * FROM unnest(CAST(:u AS uuid[]), CAST(:s AS text[]), "
            "CAST(:a AS bigint[]), CAST(:t AS text[]), CAST(:r AS text[]), "
            "CAST(:n AS text[])) "
            "ON CONFLICT (transaction_type, reference_id, user_id) DO NOTHING "
            "RETURNING user_id, amount"
        ),
        {
            "u": [u for u, _ in held],
            "s": [source] * len(held),
            "a": [e.amount for _, e in held],
            "t": [e.transaction_type for _, e in held],
            "r": [e.reference_id for _, e in held],
            "n": [e.note for _, e in held],
        },
    )
    by_user: dict[uuid.UUID, int] = {}
    for row in rows:
        by_user[row.user_id] = by_user.get(row.user_id, 0) + int(row.amount)
    await _move_pending(session, by_user)
    return by_user


async def _move_pending(session: AsyncSession, deltas: Mapping[uuid.UUID, int]) -> None:
    users = sorted(u for u, d in deltas.items() if d)
    if users:
        await session.execute(
            text("SELECT stepcoin_wallet_hold_many(CAST(:u AS uuid[]), CAST(:d AS bigint[]))"),
            {"u": users, "d": [deltas[u] for u in users]},
        )


async def release_held(
    session: AsyncSession, *, today: date | None = None, limit: int = RELEASE_CHUNK
) -> int:
    """Pay the oldest waiting holds that fit their source's budgets now (one chunk, in the
    caller's transaction); returns how many were paid. Holds of a source are paid in the
    order they were held: one that does not fit stops that source's chunk."""
    day = today or utc_today()
    waiting = (
        await session.execute(
            text(
                "SELECT id, user_id, source, amount, transaction_type, reference_id, note "
                "FROM issuance_holds WHERE released_at IS NULL ORDER BY source, id "
                "LIMIT :limit FOR UPDATE SKIP LOCKED"
            ),
            {"limit": limit},
        )
    ).all()
    paid = 0
    if waiting:
        await _lock_wallets(session, [h.user_id for h in waiting])
    for source in sorted({h.source for h in waiting}):
        holds = [h for h in waiting if h.source == source]
        budgets = await budgets_of(session, source)
        if budgets:
            issued = await _lock_counters(session, budgets, day)
            room = _room(budgets, issued)
        else:
            issued, room = {}, sum(h.amount for h in holds)
        chosen = []
        for hold in holds:
            if hold.amount > room:
                break
            chosen.append(hold)
            room -= hold.amount
        if not chosen:
            continue
        entries: dict[uuid.UUID, list[service.Entry]] = {}
        for hold in chosen:
            entries.setdefault(hold.user_id, []).append(
                service.Entry(hold.amount, hold.transaction_type, hold.reference_id, hold.note)
            )
        posted = await service.post_many(session, entries)
        coins = sum(p.amount for rows in posted.values() for p in rows if not p.replayed)
        await _count(session, budgets, issued, coins, day)
        back: dict[uuid.UUID, int] = {}
        for hold in chosen:
            back[hold.user_id] = back.get(hold.user_id, 0) - int(hold.amount)
        await _move_pending(session, back)
        await session.execute(
            text("UPDATE issuance_holds SET released_at = now() WHERE id = ANY(:ids)"),
            {"ids": [h.id for h in chosen]},
        )
        paid += len(chosen)
    return paid


# --- the step sync's budgets (stepcoin_apply_sync v6) -------------------------------------------


def stripe_of(user_id: uuid.UUID) -> int:
    """The counter a walker's syncs count on: one of STRIPES, by the user id's low bits."""
    return user_id.int % STRIPES


def stripe_share(cap: int, stripe: int) -> int:
    """A stripe's share of a cap: the cap split as evenly as whole coins allow (the shares add
    up to the cap exactly)."""
    return cap // STRIPES + (1 if stripe < cap % STRIPES else 0)


class _StepsBudgets:
    """The steps budgets, per process, refreshed at most every CACHE_TTL_SECONDS (a change
    takes effect within seconds everywhere, as runtime settings do)."""

    def __init__(self) -> None:
        self._at = float("-inf")
        self._budgets: list[tuple[str, int]] = []

    def invalidate(self) -> None:
        self._at = float("-inf")

    async def load(self, driver: Any) -> list[tuple[str, int]]:
        if time.monotonic() - self._at < CACHE_TTL_SECONDS:
            return self._budgets
        rows = await driver.fetch(
            "SELECT period, cap_coins FROM issuance_budgets WHERE source = 'steps' ORDER BY period"
        )
        self._budgets = [(str(r[0]), int(r[1])) for r in rows]
        self._at = time.monotonic()
        return self._budgets


steps_budgets = _StepsBudgets()


def _shares(
    budgets: Sequence[tuple[str, int]], user_id: uuid.UUID, today: date | None
) -> list[dict[str, Any]] | None:
    if not budgets:
        return None
    day = today or utc_today()
    stripe = stripe_of(user_id)
    return [
        {
            "period": period,
            "start": period_start(period, day).isoformat(),
            "stripe": stripe,
            "share": stripe_share(cap, stripe),
        }
        for period, cap in budgets
    ]


async def steps_shares(
    driver: Any, user_id: uuid.UUID, *, today: date | None = None
) -> list[dict[str, Any]] | None:
    """The payload's `budget` for a sync of this walker: each steps budget of the current UTC
    period as this walker's stripe's share; None when steps have no budget. Cached."""
    return _shares(await steps_budgets.load(driver), user_id, today)


def steps_shares_of(
    budgets: Sequence[Sequence[Any]], user_id: uuid.UUID, *, today: date | None = None
) -> list[dict[str, Any]] | None:
    """The same from (period, cap_coins) pairs the caller read in its transaction (a review's
    decision reads them with the decision, stepcoin_review_open)."""
    return _shares([(str(period), int(cap)) for period, cap in budgets], user_id, today)


async def note_alerts(
    session: AsyncSession, source: str, *, holding: bool, today: date | None = None
) -> None:
    """For a source that counts on stripes inside its own statement and logs nothing (the step
    sync): log each budget's alert and exhaustion once a period, from the stripes' sum (stamped
    on stripe 0's row). `holding`: the source holds rewards now (its caller knows how)."""
    day = today or utc_today()
    for budget in await budgets_of(session, source):
        start = period_start(budget.period, day)
        key = {"s": source, "p": budget.period, "d": start}
        await session.execute(
            text(
                "INSERT INTO issuance_usage (source, period, period_start) "
                "VALUES (:s, :p, :d) ON CONFLICT DO NOTHING"
            ),
            key,
        )
        row = (
            await session.execute(
                text(
                    "SELECT (SELECT sum(issued) FROM issuance_usage WHERE source = :s "
                    "AND period = :p AND period_start = :d) AS issued, alerted_at, exhausted_at "
                    "FROM issuance_usage WHERE source = :s AND period = :p "
                    "AND period_start = :d AND stripe = 0 FOR UPDATE"
                ),
                key,
            )
        ).one()
        issued = int(row.issued or 0)
        alert = row.alerted_at is None and issued >= budget.cap_coins * budget.alert_percent / 100
        full = row.exhausted_at is None and holding
        if alert or full:
            await session.execute(
                text(
                    "UPDATE issuance_usage SET "
                    "alerted_at = CASE WHEN :alert THEN now() ELSE alerted_at END, "
                    "exhausted_at = CASE WHEN :full THEN now() ELSE exhausted_at END "
                    "WHERE source = :s AND period = :p AND period_start = :d AND stripe = 0"
                ),
                {"alert": alert, "full": full, **key},
            )
        if alert:
            _log_alert(source, budget.period, issued, budget.cap_coins)
        if full:
            _log_reached(source, budget.period)


# --- what admins see and set -------------------------------------------------------------------


async def overview(session: AsyncSession, *, today: date | None = None) -> list[dict[str, Any]]:
    """Every budget with this period's use, and the coins held for its source."""
    day = today or utc_today()
    rows = await session.execute(
        text(
            """
            SELECT b.source, b.period, b.cap_coins, b.alert_percent, b.updated_at,
                   coalesce(u.issued, 0) AS issued, u.alerted_at, u.exhausted_at,
                   (SELECT coalesce(sum(h.amount), 0) FROM issuance_holds h
                    WHERE h.source = b.source AND h.released_at IS NULL) AS held_coins,
                   (SELECT count(*) FROM issuance_holds h
                    WHERE h.source = b.source AND h.released_at IS NULL) AS held_rewards
            FROM issuance_budgets b
            LEFT JOIN LATERAL (
                -- every stripe of the period (the step sync counts on several)
                SELECT sum(x.issued) AS issued, max(x.alerted_at) AS alerted_at,
                       max(x.exhausted_at) AS exhausted_at
                FROM issuance_usage x
                WHERE x.source = b.source AND x.period = b.period
                  AND x.period_start = CASE b.period WHEN 'day' THEN CAST(:day AS date)
                      WHEN 'week' THEN CAST(date_trunc('week', CAST(:day AS date)) AS date)
                      ELSE CAST(date_trunc('month', CAST(:day AS date)) AS date) END
            ) u ON true
            ORDER BY b.source, b.period
            """
        ),
        {"day": day},
    )
    return [
        {
            "source": r.source,
            "period": r.period,
            "period_start": period_start(r.period, day),
            "cap_coins": int(r.cap_coins),
            "alert_percent": int(r.alert_percent),
            "issued_coins": int(r.issued),
            "used_ratio": round(int(r.issued) / r.cap_coins, 4) if r.cap_coins else None,
            "alerted_at": r.alerted_at,
            "exhausted_at": r.exhausted_at,
            "held_coins": int(r.held_coins),
            "held_rewards": int(r.held_rewards),
            "updated_at": r.updated_at,
        }
        for r in rows
    ]


def _check(source: str, period: str) -> None:
    if source not in BUDGET_SOURCES or period not in BUDGET_PERIODS:
        raise NotFound(
            f"No budget kind {source}/{period}: sources are {', '.join(BUDGET_SOURCES)}; "
            f"periods are {', '.join(BUDGET_PERIODS)}.",
            code="budget_not_found",
        )


async def set_budget(
    session: AsyncSession,
    *,
    source: str,
    period: str,
    cap_coins: int,
    alert_percent: int,
    admin_id: uuid.UUID,
) -> dict[str, Any]:
    """Create or change a budget (audited with its before and after)."""
    _check(source, period)
    if cap_coins < 0 or not 1 <= alert_percent <= 100:
        raise InvalidInput(
            "cap_coins must be 0 or more and alert_percent 1 to 100.", code="invalid_budget"
        )
    before = (
        await session.execute(
            text(
                "SELECT cap_coins, alert_percent FROM issuance_budgets "
                "WHERE source = :s AND period = :p FOR UPDATE"
            ),
            {"s": source, "p": period},
        )
    ).first()
    await session.execute(
        text(
            "INSERT INTO issuance_budgets (source, period, cap_coins, alert_percent, updated_by) "
            "VALUES (:s, :p, :c, :a, :by) ON CONFLICT (source, period) DO UPDATE SET "
            "cap_coins = EXCLUDED.cap_coins, alert_percent = EXCLUDED.alert_percent, "
            "updated_by = EXCLUDED.updated_by, updated_at = now()"
        ),
        {"s": source, "p": period, "c": cap_coins, "a": alert_percent, "by": admin_id},
    )
    steps_budgets.invalidate()  # this process at once; the others within CACHE_TTL_SECONDS
    await audit.record(
        session,
        admin_id=admin_id,
        action="economy.budget_set",
        entity_type="issuance_budget",
        entity_id=f"{source}/{period}",
        before=None
        if before is None
        else {"cap_coins": int(before.cap_coins), "alert_percent": int(before.alert_percent)},
        after={"cap_coins": cap_coins, "alert_percent": alert_percent},
    )
    return next(
        b for b in await overview(session) if (b["source"], b["period"]) == (source, period)
    )


async def remove_budget(
    session: AsyncSession, *, source: str, period: str, admin_id: uuid.UUID
) -> None:
    """Remove a budget (audited): the source issues without that cap; its held rewards are
    paid by the next release."""
    _check(source, period)
    removed = (
        await session.execute(
            text(
                "DELETE FROM issuance_budgets WHERE source = :s AND period = :p "
                "RETURNING cap_coins, alert_percent"
            ),
            {"s": source, "p": period},
        )
    ).first()
    if removed is None:
        raise NotFound(f"There is no {period} budget for {source}.", code="budget_not_found")
    steps_budgets.invalidate()
    await audit.record(
        session,
        admin_id=admin_id,
        action="economy.budget_removed",
        entity_type="issuance_budget",
        entity_id=f"{source}/{period}",
        before={"cap_coins": int(removed.cap_coins), "alert_percent": int(removed.alert_percent)},
        after=None,
    )

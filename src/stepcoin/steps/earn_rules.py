"""Earn rules: what a step day is worth, versioned by day (docs/economy.md, "Earn rules").

A rule (coins per 1,000 steps, daily step cap, daily coin cap) applies from its
`effective_from` day until the day before the next live rule's. A day is always priced by the
rule in force on that day, also when it is re-synced or reviewed weeks later, so a rule change
never re-prices a day that was already paid. Rules are only added for days that have not begun
anywhere yet (`earliest_effective_from`), never changed; an announced rule may be withdrawn
before its day comes. Every change is audited.

Readers go through `earn_rules` (a per-process cache like the runtime settings'): the sync
reads no table for them. A new rule shows in another process within CACHE_TTL_SECONDS, far
less than the hour a rule is announced at least before its day begins anywhere, so every
process prices the day by the same rule.
"""

from __future__ import annotations

import bisect
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from stepcoin import audit
from stepcoin.errors import Conflict, InvalidInput, NotFound, account_gone
from stepcoin.steps.settlement import EarnRule

CACHE_TTL_SECONDS = 60.0
BEGINNING = date(1970, 1, 1)  # the first rule's day: before any step day (validation.CalendarDay)
# The first rule when the table holds none (a fresh database is seeded with it by migration
# 0023 from the settings coins.per_1000_steps and coins.daily_cap it replaced).
FIRST_RULE = EarnRule(
    coins_per_1000_steps=10, daily_step_cap=None, daily_coin_cap=200, effective_from=BEGINNING
)
# Step days are the walker's calendar days (steps.service.local_today, in the walker's time
# zone), so "today" ends last on the Line Islands (UTC+14): a rule's day must not have begun
# there, and not begin there within LEAD (several cache lifetimes), when the rule is made.
EARLIEST_ZONE = timedelta(hours=14)
LATEST_ZONE = timedelta(hours=12)  # where a day ends last (UTC-12)
LEAD = timedelta(hours=1)
PREVIEW_DAYS = 30
MAX_RATE = 10_000
MAX_CAP = 10_000_000

_RULES_SQL = (
    "SELECT id, effective_from, coins_per_1000_steps, daily_step_cap, daily_coin_cap "
    "FROM earn_rules WHERE withdrawn_at IS NULL ORDER BY effective_from"
)


def earliest_effective_from(now: datetime | None = None) -> date:
    """The first day a new rule may start: the day after the latest calendar day that has
    begun anywhere on Earth, or will within LEAD."""
    return ((now or datetime.now(UTC)).astimezone(UTC) + EARLIEST_ZONE + LEAD).date() + timedelta(
        days=1
    )


class EarnRules:
    """The live rules in day order; `for_day` is a bisect (no I/O)."""

    __slots__ = ("_days", "rules")

    def __init__(self, rules: Iterable[EarnRule]) -> None:
        ordered = sorted(rules, key=lambda r: r.effective_from)
        self.rules: tuple[EarnRule, ...] = tuple(ordered) or (FIRST_RULE,)
        self._days = [r.effective_from for r in self.rules]

    def _index(self, day: date) -> int:
        # a day before the first rule (none in practice: it starts in 1970) takes the first
        return max(0, bisect.bisect_right(self._days, day) - 1)

    def for_day(self, day: date) -> EarnRule:
        """The rule in force on `day`."""
        return self.rules[self._index(day)]

    def following(self, rule: EarnRule) -> EarnRule | None:
        index = self._index(rule.effective_from) + 1
        return self.rules[index] if index < len(self.rules) else None

    def last_day(self, rule: EarnRule) -> date | None:
        """The last day `rule` applies to; None while no later rule is announced."""
        after = self.following(rule)
        return after.effective_from - timedelta(days=1) if after else None


def _rule(row: Sequence[Any]) -> EarnRule:
    return EarnRule(
        id=int(row[0]),
        effective_from=row[1],
        coins_per_1000_steps=int(row[2]),
        daily_step_cap=None if row[3] is None else int(row[3]),
        daily_coin_cap=int(row[4]),
    )


class EarnRulesCache:
    """The live rules, reloaded with one query when older than the TTL (per process)."""

    def __init__(self, ttl_seconds: float = CACHE_TTL_SECONDS) -> None:
        self.ttl_seconds = ttl_seconds
        self._rules = EarnRules(())
        self._loaded_at = float("-inf")

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    def _fresh(self) -> bool:
        return time.monotonic() - self._loaded_at <= self.ttl_seconds

    def _load(self, rows: Iterable[Sequence[Any]]) -> EarnRules:
        self._rules = EarnRules(_rule(row) for row in rows)
        self._loaded_at = time.monotonic()
        return self._rules

    async def all(self, session: AsyncSession) -> EarnRules:
        if self._fresh():
            return self._rules
        return self._load((await session.execute(text(_RULES_SQL))).all())

    async def all_raw(self, driver: Any) -> EarnRules:
        """The same over a bare asyncpg connection (the sync's fast path)."""
        if self._fresh():
            return self._rules
        return self._load(await driver.fetch(_RULES_SQL))


earn_rules = EarnRulesCache()


def _invalidate_after_commit(_session: Session) -> None:
    earn_rules.invalidate()


def _invalidate_on_commit(session: AsyncSession) -> None:
    event.listen(session.sync_session, "after_commit", _invalidate_after_commit, once=True)


# ---- what walkers see -----------------------------------------------------------------------


def rule_json(rule: EarnRule, rules: EarnRules) -> dict[str, Any]:
    return {
        "effective_from": rule.effective_from,
        "effective_until": rules.last_day(rule),
        "coins_per_1000_steps": rule.coins_per_1000_steps,
        "daily_step_cap": rule.daily_step_cap,
        "daily_coin_cap": rule.daily_coin_cap,
    }


def _local_today(timezone: str | None, now: datetime | None = None) -> date:
    try:
        zone = ZoneInfo(timezone or "UTC")
    except Exception:  # an unknown zone in old data: UTC, as the sync does
        zone = ZoneInfo("UTC")
    return (now or datetime.now(UTC)).astimezone(zone).date()


async def announced(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """GET /v1/economy/earn-rules: the rule in force on the walker's today and the next one
    (an account deactivated since its token was issued is refused, as everywhere)."""
    walker = (
        await session.execute(
            text("SELECT timezone, is_active FROM users WHERE id = :id"), {"id": user_id}
        )
    ).one_or_none()
    if walker is None or not walker.is_active:
        raise account_gone()
    rules = await earn_rules.all(session)
    today = _local_today(walker.timezone)
    in_force = rules.for_day(today)
    after = rules.following(in_force)
    return {
        "today": today,
        "in_force": rule_json(in_force, rules),
        "next": rule_json(after, rules) if after else None,
    }


# ---- what admins do -------------------------------------------------------------------------


def _check_caps(rate: int, step_cap: int | None, coin_cap: int) -> None:
    """The table's CHECKs as readable 422s (the API's model checks the same)."""
    if not 0 <= rate <= MAX_RATE:
        raise InvalidInput(
            f"coins_per_1000_steps must be 0 to {MAX_RATE}.", code="invalid_earn_rule"
        )
    if step_cap is not None and not 0 <= step_cap <= MAX_CAP:
        raise InvalidInput(f"daily_step_cap must be 0 to {MAX_CAP}.", code="invalid_earn_rule")
    if not 0 <= coin_cap <= MAX_CAP:
        raise InvalidInput(f"daily_coin_cap must be 0 to {MAX_CAP}.", code="invalid_earn_rule")


def _status(row: Any, rules: EarnRules, first_today: date, last_today: date) -> str:
    """Walkers live up to three calendar days at once (UTC-12 to UTC+14): a rule is in force
    while its days meet today's anywhere, so two rules can be in force on a change day."""
    if row.withdrawn_at is not None:
        return "withdrawn"
    if row.effective_from > last_today:
        return "announced"
    last_day = rules.last_day(_rule(row))
    return "past" if last_day is not None and last_day < first_today else "in_force"


async def list_rules(session: AsyncSession, now: datetime | None = None) -> dict[str, Any]:
    """Every rule ever made (withdrawn ones too), newest day first, with its range and state.

    A rule whose day has begun somewhere (UTC+14) is no longer announced; it is in force
    until its last day has ended everywhere (UTC-12).
    """
    rows = (
        await session.execute(
            text(
                "SELECT r.id, r.effective_from, r.coins_per_1000_steps, r.daily_step_cap, "
                "r.daily_coin_cap, r.created_at, r.created_by, c.email AS created_by_email, "
                "r.withdrawn_at, r.withdrawn_by FROM earn_rules r "
                "LEFT JOIN users c ON c.id = r.created_by "
                "ORDER BY r.effective_from DESC, r.id DESC"
            )
        )
    ).all()
    live = EarnRules(_rule(row) for row in rows if row.withdrawn_at is None)
    moment = now or datetime.now(UTC)
    first_today = (moment.astimezone(UTC) - LATEST_ZONE).date()
    last_today = (moment.astimezone(UTC) + EARLIEST_ZONE).date()
    items = []
    for row in rows:
        rule = _rule(row)
        items.append(
            {
                "id": row.id,
                "effective_from": row.effective_from,
                "effective_until": live.last_day(rule) if row.withdrawn_at is None else None,
                "coins_per_1000_steps": rule.coins_per_1000_steps,
                "daily_step_cap": rule.daily_step_cap,
                "daily_coin_cap": rule.daily_coin_cap,
                "status": _status(row, live, first_today, last_today),
                "created_at": row.created_at,
                "created_by": row.created_by,
                "created_by_email": row.created_by_email,
                "withdrawn_at": row.withdrawn_at,
                "withdrawn_by": row.withdrawn_by,
            }
        )
    return {"items": items, "earliest_effective_from": earliest_effective_from(moment)}


async def _one(session: AsyncSession, rule_id: int, now: datetime | None) -> dict[str, Any]:
    listed = await list_rules(session, now)
    return next(item for item in listed["items"] if item["id"] == rule_id)


async def _lock(session: AsyncSession) -> None:
    """One rule change at a time (readers are not blocked): the checks below see every rule
    made before, so two admins cannot announce overlapping rules at once."""
    await session.execute(text("LOCK TABLE earn_rules IN SHARE ROW EXCLUSIVE MODE"))


async def create_rule(
    session: AsyncSession,
    *,
    effective_from: date,
    coins_per_1000_steps: int,
    daily_step_cap: int | None,
    daily_coin_cap: int,
    admin_id: uuid.UUID,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Announce a rule for a future day; audited. 422 `earn_rule_backdated` for a day that has
    begun somewhere (or will within the hour), 422 `earn_rule_overlaps` for a day on or before
    a live rule already announced (a later rule is appended; withdraw the announced one to
    change it)."""
    _check_caps(coins_per_1000_steps, daily_step_cap, daily_coin_cap)
    earliest = earliest_effective_from(now)
    if effective_from < earliest:
        raise InvalidInput(
            f"A rule starts on a day that has not begun anywhere yet: {earliest.isoformat()} "
            "at the earliest; days already paid keep their rule.",
            code="earn_rule_backdated",
            extra={"earliest_effective_from": earliest.isoformat()},
        )
    await _lock(session)
    latest = (
        await session.execute(
            text("SELECT max(effective_from) FROM earn_rules WHERE withdrawn_at IS NULL")
        )
    ).scalar_one_or_none()
    if latest is not None and effective_from <= latest:
        raise InvalidInput(
            f"A rule is already announced from {latest.isoformat()}: a new rule starts after "
            "it, or withdraw that one first.",
            code="earn_rule_overlaps",
            extra={"latest_effective_from": latest.isoformat()},
        )
    row = (
        await session.execute(
            text(
                "INSERT INTO earn_rules (effective_from, coins_per_1000_steps, daily_step_cap, "
                "daily_coin_cap, created_by) VALUES (:day, :rate, :steps, :coins, :by) "
                "RETURNING id, created_at"
            ),
            {
                "day": effective_from,
                "rate": coins_per_1000_steps,
                "steps": daily_step_cap,
                "coins": daily_coin_cap,
                "by": admin_id,
            },
        )
    ).one()
    after = {
        "effective_from": effective_from.isoformat(),
        "coins_per_1000_steps": coins_per_1000_steps,
        "daily_step_cap": daily_step_cap,
        "daily_coin_cap": daily_coin_cap,
    }
    await audit.record(
        session,
        admin_id=admin_id,
        action="earn_rule.create",
        entity_type="earn_rule",
        entity_id=str(row.id),
        before=None,
        after=after,
    )
    _invalidate_on_commit(session)
    return await _one(session, row.id, now)


async def withdraw_rule(
    session: AsyncSession, rule_id: int, *, admin_id: uuid.UUID, now: datetime | None = None
) -> dict[str, Any]:
    """Withdraw an announced rule before its day comes (the same hour's lead as a new rule);
    audited. The row stays (append-only), marked withdrawn."""
    await _lock(session)
    row = (
        await session.execute(
            text("SELECT id, effective_from, withdrawn_at FROM earn_rules WHERE id = :id"),
            {"id": rule_id},
        )
    ).one_or_none()
    if row is None:
        raise NotFound("No such earn rule.", code="earn_rule_not_found")
    if row.withdrawn_at is not None:
        raise Conflict("This rule was already withdrawn.", code="earn_rule_withdrawn")
    if row.effective_from < earliest_effective_from(now):
        raise Conflict(
            "This rule's day has begun somewhere (or will within the hour): it pays days "
            "now and stays; announce a new rule instead.",
            code="earn_rule_in_force",
        )
    await session.execute(
        text("UPDATE earn_rules SET withdrawn_at = now(), withdrawn_by = :by WHERE id = :id"),
        {"id": rule_id, "by": admin_id},
    )
    await audit.record(
        session,
        admin_id=admin_id,
        action="earn_rule.withdraw",
        entity_type="earn_rule",
        entity_id=str(rule_id),
        before={"effective_from": row.effective_from.isoformat(), "withdrawn": False},
        after={"withdrawn": True},
    )
    _invalidate_on_commit(session)
    return await _one(session, rule_id, now)


# ---- the preview ----------------------------------------------------------------------------

# Per day of the window: the walkers with credited steps, what the rules in force pay for
# those steps (each day by its own rule: the same formula as settlement.coins_for), what the
# proposed rule would pay, and the walkers whose day would change; the last row (day NULL) is
# the window's total, its walkers counted once. One statement over step_days (the credited
# steps of each walker's day), no loop per walker.
_PREVIEW_SQL = """
WITH live AS (
    SELECT effective_from,
           lead(effective_from) OVER (ORDER BY effective_from) AS until,
           coins_per_1000_steps AS rate, daily_step_cap AS step_cap, daily_coin_cap AS coin_cap
    FROM earn_rules WHERE withdrawn_at IS NULL
), priced AS (
    SELECT d.recorded_date AS day, d.user_id,
           least(r.coin_cap, least(d.credited_steps, coalesce(r.step_cap, d.credited_steps))
                 ::bigint * r.rate / 1000) AS now_coins,
           least(CAST(:coin_cap AS bigint),
                 least(d.credited_steps, coalesce(CAST(:step_cap AS integer), d.credited_steps))
                 ::bigint * CAST(:rate AS bigint) / 1000) AS new_coins
    FROM step_days d
    JOIN live r ON d.recorded_date >= r.effective_from
               AND (r.until IS NULL OR d.recorded_date < r.until)
    WHERE d.recorded_date BETWEEN :first AND :last AND d.credited_steps > 0
), days AS (
    SELECT CAST(g AS date) AS day
    FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') AS g
)
SELECT days.day, count(p.user_id) AS walkers,
       coalesce(sum(p.now_coins), 0) AS coins_paid,
       coalesce(sum(p.new_coins), 0) AS coins_proposed,
       count(p.user_id) FILTER (WHERE p.now_coins <> p.new_coins) AS walkers_affected
FROM days LEFT JOIN priced p ON p.day = days.day
GROUP BY days.day
UNION ALL
SELECT NULL, count(DISTINCT user_id), coalesce(sum(now_coins), 0), coalesce(sum(new_coins), 0),
       count(DISTINCT user_id) FILTER (WHERE now_coins <> new_coins)
FROM priced
ORDER BY 1 NULLS LAST
"""


async def preview(
    session: AsyncSession,
    *,
    coins_per_1000_steps: int,
    daily_step_cap: int | None,
    daily_coin_cap: int,
    today: date | None = None,
) -> dict[str, Any]:
    """What a proposed rule would have paid over the last PREVIEW_DAYS days (the UTC days up to
    yesterday) against what the rules in force pay for the same credited steps."""
    _check_caps(coins_per_1000_steps, daily_step_cap, daily_coin_cap)
    last = (today or datetime.now(UTC).date()) - timedelta(days=1)
    first = last - timedelta(days=PREVIEW_DAYS - 1)
    rows = (
        await session.execute(
            text(_PREVIEW_SQL),
            {
                "first": first,
                "last": last,
                "rate": coins_per_1000_steps,
                "step_cap": daily_step_cap,
                "coin_cap": daily_coin_cap,
            },
        )
    ).all()
    *per_day, total = rows

    def figures(row: Any) -> dict[str, Any]:
        paid, proposed = int(row.coins_paid), int(row.coins_proposed)
        return {
            "walkers": int(row.walkers),
            "coins_paid": paid,
            "coins_proposed": proposed,
            "difference": proposed - paid,
            "walkers_affected": int(row.walkers_affected),
        }

    return {
        "rule": {
            "coins_per_1000_steps": coins_per_1000_steps,
            "daily_step_cap": daily_step_cap,
            "daily_coin_cap": daily_coin_cap,
        },
        "from": first,
        "to": last,
        "days": [{"date": row.day, **figures(row)} for row in per_day],
        "total": figures(total),
    }


def rule_changes(rules: dict[str, Any], through: date) -> list[dict[str, Any]]:
    """The earn rules that took effect on or before `through` (the first one of 1970 aside,
    which is where the books begin), oldest first, and the next one if announced."""
    live = [r for r in rules["items"] if r["status"] != "withdrawn"]
    live.sort(key=lambda r: r["effective_from"])
    changes = []
    for position, rule in enumerate(live):
        if position == 0:
            continue  # the rule every day started with, not a change
        changes.append(
            {
                "effective_from": rule["effective_from"],
                "coins_per_1000_steps": rule["coins_per_1000_steps"],
                "daily_step_cap": rule["daily_step_cap"],
                "daily_coin_cap": rule["daily_coin_cap"],
                "announced": rule["effective_from"] > through,
            }
        )
    return changes

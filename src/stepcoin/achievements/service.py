"""Achievement rules: evaluate a user, show progress, backfill a new achievement, admin edits.

A reward is paid exactly once: the unlock row is UNIQUE (user, achievement), its ledger row
(posted through the wallet, reference achievement:<id>:<user>) is UNIQUE (type, reference,
user), and both are written under the wallet row lock (the one lock order everywhere: the
wallet first) in the caller's transaction. Unlocks are permanent: steps clawed back later (a
lower re-sync, a deletion) never take a badge or its reward away.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.achievements import repository
from stepcoin.achievements.criteria import (
    Criteria,
    is_met,
    parse_criteria,
    progress,
    streak_thresholds,
)
from stepcoin.db import Database, session_scope
from stepcoin.errors import Conflict, NotFound
from stepcoin.notify import service as notify
from stepcoin.queue import ACHIEVEMENTS_BACKFILL, defer_in_transaction
from stepcoin.wallet import budgets
from stepcoin.wallet import service as wallet

logger = logging.getLogger("stepcoin.achievements")

BACKFILL_BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class Unlocked:
    user_id: uuid.UUID
    achievement_id: int
    code: str
    name: str
    reward_coins: int
    unlocked_at: datetime


def _parsed(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Criteria]]:
    """Rows with their criteria; a row whose stored criteria no longer parse is skipped."""
    parsed = []
    for row in rows:
        try:
            parsed.append((row, parse_criteria(row["unlock_criteria"])))
        except ValidationError:
            logger.warning("achievement with invalid criteria skipped", extra={"id": row["id"]})
    return parsed


def _unlocked(rows: list[dict[str, Any]]) -> list[Unlocked]:
    return [
        Unlocked(
            user_id=r["user_id"],
            achievement_id=int(r["achievement_id"]),
            code=r["code"],
            name=r["name"],
            reward_coins=int(r["reward_coins"]),
            unlocked_at=r["unlocked_at"],
        )
        for r in rows
    ]


async def _unlock_and_pay(
    session: AsyncSession, pairs: list[tuple[uuid.UUID, int]]
) -> list[dict[str, Any]]:
    """Record the unlocks and pay each new one's reward through the wallet (the caller holds
    those wallet locks): two statements for any number of walkers."""
    unlocked = await repository.unlock(session, pairs)
    rewards: dict[uuid.UUID, list[wallet.Entry]] = {}
    for row in unlocked:
        if row["reward_coins"] > 0:
            rewards.setdefault(row["user_id"], []).append(
                wallet.Entry(
                    int(row["reward_coins"]),
                    wallet.ACHIEVEMENT_REWARD,
                    f"achievement:{row['achievement_id']}:{row['user_id']}",
                    f"Achievement: {row['name']}"[:500],
                )
            )
    # one round trip for every walker's rewards, under the achievements' issuance budgets
    # (a reward a budget at its cap holds is pending for the walker, paid when there is room)
    await budgets.issue_many(session, "achievements", rewards)
    await notify.notify_many(
        session,
        [
            notify.Note(
                row["user_id"],
                "achievement",
                f"Achievement unlocked: {row['name']}",
                f"{row['reward_coins']} coins are yours." if row["reward_coins"] else "Well done!",
                f"achievement:{row['achievement_id']}",
                {"code": row["code"], "reward_coins": int(row["reward_coins"])},
            )
            for row in unlocked
        ],
    )
    return unlocked


async def evaluate_user(session: AsyncSession, user_id: uuid.UUID) -> list[Unlocked]:
    """Unlock every active achievement the user now meets and pay its reward once.

    Two reads when nothing is new (the locked candidates, then the user's facts in one
    set-based query); when something is met, the wallet lock and one unlock statement. Safe to
    run again or concurrently: a second run finds nothing new. Inactive users unlock nothing.
    """
    candidates = _parsed(await repository.locked_candidates(session, user_id))
    if not candidates:
        return []
    thresholds = streak_thresholds([c for _, c in candidates])
    facts = (await repository.user_facts(session, [user_id], thresholds)).get(user_id)
    if facts is None or not facts.is_active:
        return []
    met = [int(row["id"]) for row, criteria in candidates if is_met(criteria, facts)]
    if not met:
        return []
    if not await repository.lock_wallets(session, [user_id]):
        return []
    unlocked = _unlocked(await _unlock_and_pay(session, [(user_id, a) for a in met]))
    if unlocked:
        logger.info(
            "achievements unlocked",
            extra={"user_id": str(user_id), "codes": [u.code for u in unlocked]},
        )
    return unlocked


DIRTY_BATCH_SIZE = 1000
DIRTY_CLAIM_STALE_SECONDS = 60
PAY_CHUNK_WALKERS = 50


async def evaluate_users(session: AsyncSession, user_ids: Sequence[uuid.UUID]) -> list[Unlocked]:
    """evaluate_user for many users at once (the dirty-mark batch): one read of the active
    achievements, one of the users' unlocks, one facts query for all of them; then the wallet
    locks (user-id order), one unlock statement and one payment for the users who meet
    something new, all in the caller's transaction."""
    return await _pay(session, await _met(session, user_ids))


async def _met(session: AsyncSession, user_ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, int]]:
    """The (user, achievement) pairs the users meet and have not unlocked: reads only."""
    if not user_ids:
        return []
    candidates = _parsed(await repository.active_achievements(session))
    if not candidates:
        return []
    have = await repository.unlocked_pairs(session, user_ids)
    # what each walker has left to unlock: a walker with nothing left is not read at all, and
    # streak runs are computed only for thresholds somebody in the batch still needs (the
    # facts read every credited day of the walker: the batch's largest cost)
    locked = {
        user_id: [
            (int(row["id"]), c) for row, c in candidates if (user_id, int(row["id"])) not in have
        ]
        for user_id in user_ids
    }
    needed = [u for u in user_ids if locked[u]]
    if not needed:
        return []
    thresholds = streak_thresholds([c for u in needed for _, c in locked[u]])
    facts = await repository.user_facts(session, needed, thresholds)
    met: list[tuple[uuid.UUID, int]] = []
    for user_id in needed:
        f = facts.get(user_id)
        if f is None or not f.is_active:
            continue
        met += [(user_id, a) for a, criteria in locked[user_id] if is_met(criteria, f)]
    return met


async def _pay(session: AsyncSession, met: list[tuple[uuid.UUID, int]]) -> list[Unlocked]:
    """Lock the wallets of `met`'s users, record the unlocks and pay them (once: a pair already
    unlocked meanwhile is left out by the unlock statement)."""
    if not met:
        return []
    with_wallet = set(await repository.lock_wallets(session, sorted({u for u, _ in met})))
    unlocked = _unlocked(await _unlock_and_pay(session, [p for p in met if p[0] in with_wallet]))
    for user_id in sorted({u.user_id for u in unlocked}):
        logger.info(
            "achievements unlocked",
            extra={
                "user_id": str(user_id),
                "codes": [u.code for u in unlocked if u.user_id == user_id],
            },
        )
    return unlocked


def _by_walkers(
    pairs: list[tuple[uuid.UUID, int]], walkers: int
) -> Iterator[list[tuple[uuid.UUID, int]]]:
    """`pairs` in user-id order, cut into runs of at most `walkers` walkers each."""
    chunk: list[tuple[uuid.UUID, int]] = []
    seen: set[uuid.UUID] = set()
    for pair in sorted(pairs):
        if pair[0] not in seen and len(seen) == walkers:
            yield chunk
            chunk, seen = [], set()
        seen.add(pair[0])
        chunk.append(pair)
    if chunk:
        yield chunk


@dataclass(frozen=True, slots=True)
class DirtyBatch:
    users: int
    unlocked: list[Unlocked]


async def evaluate_dirty(database: Database, *, batch_size: int = DIRTY_BATCH_SIZE) -> DirtyBatch:
    """One batch of the users the step loop marked dirty (issue 13: no job per sync).

    Short transactions: (1) claim up to `batch_size` marks (committed at once); (2) read what
    those users meet, then pay it PAY_CHUNK_WALKERS walkers per transaction; (3) delete the
    claimed marks that no sync re-dirtied meanwhile. A sync that commits after (1) released its
    mark (claimed_at NULL: the next batch evaluates it again), or, while (3) deletes the mark,
    waits for that short DELETE and then writes a new one; so every paid sync is evaluated by a
    batch that sees it. A failed (2) gives its claims back (chunks paid before stay paid); a
    dead one's claims are taken again after DIRTY_CLAIM_STALE_SECONDS. Unlocks pay once (the
    unlock statement under the wallet locks).
    """
    async with session_scope(database) as session:
        users, claimed_at = await repository.claim_dirty(
            session, batch_size, DIRTY_CLAIM_STALE_SECONDS
        )
    if not users or claimed_at is None:
        return DirtyBatch(0, [])
    unlocked: list[Unlocked] = []
    try:
        async with session_scope(database) as session:
            met = await _met(session, users)
        # the payments in short transactions of PAY_CHUNK_WALKERS walkers: a sync of one of
        # them waits for its chunk's few statements, never for the whole batch's
        for chunk in _by_walkers(met, PAY_CHUNK_WALKERS):
            async with session_scope(database) as session:
                unlocked += await _pay(session, chunk)
    except Exception:
        async with session_scope(database) as session:
            await repository.release_dirty(session, users, claimed_at)
        raise
    # (3) on its own, after (2) committed: a DELETE in (2) would hold the marks' row locks for
    # the whole evaluation, and every sync of a claimed walker would wait for it (issue 13:
    # Lock:transactionid was 37% of the sync's waits). Dying between (2) and (3) only makes
    # the next batch evaluate these users again (unlocks pay once).
    async with session_scope(database) as session:
        await repository.consume_dirty(session, users, claimed_at)
    return DirtyBatch(len(users), unlocked)


async def list_for_user(
    session: AsyncSession, user_id: uuid.UUID, *, now: datetime | None = None
) -> list[dict[str, Any]] | None:
    """Every active achievement with the caller's unlocked_at and progress; None when the user
    is missing or deactivated."""
    rows = _parsed(await repository.active_with_unlocks(session, user_id))
    thresholds = streak_thresholds([c for row, c in rows if row["unlocked_at"] is None])
    facts = (await repository.user_facts(session, [user_id], thresholds)).get(user_id)
    if facts is None or not facts.is_active:
        return None
    return [_item(row, criteria, criteria.model_dump(), facts, now) for row, criteria in rows]


def _item(
    row: Any, criteria: Criteria, shape: dict[str, Any], facts: Any, now: datetime | None
) -> dict[str, Any]:
    """One achievement as GET /v1/achievements shows it to the walker whose facts these are."""
    shown = progress(criteria, facts, unlocked=row["unlocked_at"] is not None, now=now)
    return {
        "id": row["id"],
        "code": row["code"],
        "name": row["name"],
        "description": row["description"],
        "reward_coins": row["reward_coins"],
        "unlock_criteria": shape,
        "unlocked_at": row["unlocked_at"],
        "progress": None if shown is None else {"current": shown.current, "target": shown.target},
    }


@dataclass(frozen=True, slots=True)
class _Shown:
    """What an achievement says, as GET /v1/achievements shows it (parsed once per version)."""

    code: str
    name: str
    description: str | None
    reward_coins: int
    criteria: Criteria
    shape: dict[str, Any]


# What each achievement says, per process, by (id, updated_at): every edit moves updated_at
# (repository.update), so a changed achievement is read and parsed again. None: stored criteria
# that no longer parse (skipped, as _parsed does).
_CATALOGUE: dict[tuple[int, datetime], _Shown | None] = {}
CATALOGUE_CACHE_SIZE = 1024


def _remember(row: Any) -> _Shown | None:
    stored = row["unlock_criteria"]
    if isinstance(stored, str):
        stored = orjson.loads(stored)
    parsed = _parsed([{"id": row["id"], "unlock_criteria": stored}])
    shown = None
    if parsed:
        criteria = parsed[0][1]
        shown = _Shown(
            code=row["code"],
            name=row["name"],
            description=row["description"],
            reward_coins=row["reward_coins"],
            criteria=criteria,
            shape=criteria.model_dump(),
        )
    if len(_CATALOGUE) >= CATALOGUE_CACHE_SIZE:
        _CATALOGUE.clear()
    _CATALOGUE[(row["id"], row["updated_at"])] = shown
    return shown


async def _shown(
    driver: Any, row: Any
) -> tuple[list[int], list[datetime | None], list[_Shown | None], list[int]]:
    """A _MINE_SQL row's achievements as shown (the catalogue cache, read on a miss) and the
    streak thresholds of those still locked."""
    ids: list[int] = row["ids"] or []
    unlocked: list[datetime | None] = row["unlocked"] or []
    keys = list(zip(ids, row["versions"] or [], strict=True))
    missing = [key[0] for key in keys if key not in _CATALOGUE]
    fresh = (
        {r["id"]: _remember(r) for r in await repository.catalogue(driver, missing)}
        if missing
        else {}
    )
    shown = [fresh[key[0]] if key[0] in fresh else _CATALOGUE.get(key) for key in keys]
    thresholds = streak_thresholds(
        [s.criteria for s, at in zip(shown, unlocked, strict=True) if s is not None and at is None]
    )
    return ids, unlocked, shown, thresholds


async def my_achievements(
    driver: Any, user_id: uuid.UUID, *, now: datetime | None = None
) -> list[dict[str, Any]] | None:
    """GET /v1/achievements's items in one statement on a bare asyncpg connection (the route
    and main.HotRoutes; another only when an achievement is new to this process or was edited,
    or when the walker's summarised history lacks a streak threshold: `achievements.history`):
    the same items as list_for_user (tests/achievements/test_reads.py compares them); None when
    the user is missing or deactivated."""
    row = await repository.mine(driver, user_id)
    if row is None or not row["is_active"]:
        return None
    ids, unlocked, shown, thresholds = await _shown(driver, row)
    held = row["h_thresholds"]
    if row["h_through"] is not None and not set(thresholds) <= set(held or ()):
        # the walker's summary lacks a streak threshold (an achievement newer than it): read
        # again without the summary, every day
        row = await repository.mine(driver, user_id, repository.WITHOUT_SUMMARY)
        if row is None or not row["is_active"]:
            return None
        ids, unlocked, shown, thresholds = await _shown(driver, row)
    facts = repository.facts_from_days(user_id, row, thresholds)
    items = []
    for id_, s, at in zip(ids, shown, unlocked, strict=True):
        if s is None:
            continue
        done = progress(s.criteria, facts, unlocked=at is not None, now=now)
        items.append(
            {
                "id": id_,
                "code": s.code,
                "name": s.name,
                "description": s.description,
                "reward_coins": s.reward_coins,
                "unlock_criteria": s.shape,
                "unlocked_at": at,
                "progress": None
                if done is None
                else {"current": done.current, "target": done.target},
            }
        )
    return items


# --- backfill ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackfillBatch:
    users_checked: int
    unlocked: int
    next_after: uuid.UUID | None  # None: the last batch


async def backfill_batch(
    session: AsyncSession,
    achievement_id: int,
    *,
    after_user: uuid.UUID | None,
    batch_size: int = BACKFILL_BATCH_SIZE,
) -> BackfillBatch:
    """Evaluate one achievement for the next `batch_size` active users (keyset by user id).

    One facts query for the whole batch; only the users who meet it get their wallet locked
    (in user-id order) and the unlock written, in the caller's (short) transaction.
    """
    row = await repository.get(session, achievement_id)
    if row is None or not row["is_active"]:
        return BackfillBatch(0, 0, None)
    try:
        criteria = parse_criteria(row["unlock_criteria"])
    except ValidationError:
        logger.warning("backfill skipped: invalid criteria", extra={"id": achievement_id})
        return BackfillBatch(0, 0, None)
    users = await repository.next_backfill_batch(
        session, achievement_id, after_user=after_user, limit=batch_size + 1
    )
    more = len(users) > batch_size  # the extra user only says that another batch follows
    users = users[:batch_size]
    if not users:
        return BackfillBatch(0, 0, None)
    facts = await repository.user_facts(session, users, streak_thresholds([criteria]))
    met = [u for u in users if u in facts and facts[u].is_active and is_met(criteria, facts[u])]
    unlocked: list[dict[str, Any]] = []
    if met:
        with_wallet = await repository.lock_wallets(session, met)
        unlocked = await _unlock_and_pay(session, [(u, achievement_id) for u in with_wallet])
    return BackfillBatch(len(users), len(unlocked), users[-1] if more else None)


# --- admin ------------------------------------------------------------------------------------

AUDITED = ("name", "description", "unlock_criteria", "reward_coins", "is_active")


def _audit_view(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row[key] for key in ("code", *AUDITED)}


async def create(
    session: AsyncSession, values: dict[str, Any], *, admin_id: uuid.UUID
) -> dict[str, Any]:
    """Insert, audit, and (when active) queue the backfill for existing users, all in the
    caller's transaction: the job exists exactly when the achievement does."""
    new_id = await repository.insert(session, values)
    if new_id is None:
        raise Conflict(
            f"An achievement with code {values['code']!r} exists.", code="achievement_code_taken"
        )
    row = await repository.get(session, new_id)
    assert row is not None
    await audit.record(
        session,
        admin_id=admin_id,
        action="achievement.create",
        entity_type="achievement",
        entity_id=str(new_id),
        before=None,
        after=_audit_view(row),
    )
    if row["is_active"]:
        await _queue_backfill(session, new_id)
    return row


async def update(
    session: AsyncSession, achievement_id: int, changes: dict[str, Any], *, admin_id: uuid.UUID
) -> dict[str, Any]:
    """Change, deactivate or reactivate; audited with before and after. New criteria or a
    reactivation queue a backfill; rewards already paid are never changed."""
    before = await repository.get(session, achievement_id, for_update=True)
    if before is None:
        raise NotFound("No such achievement.", code="achievement_not_found")
    changed = {k: v for k, v in changes.items() if before.get(k) != v}
    await repository.update(session, achievement_id, changed)
    after = await repository.get(session, achievement_id)
    assert after is not None
    if changed:
        await audit.record(
            session,
            admin_id=admin_id,
            action="achievement.deactivate"
            if changed.get("is_active") is False
            else "achievement.update",
            entity_type="achievement",
            entity_id=str(achievement_id),
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    if after["is_active"] and ("unlock_criteria" in changed or "is_active" in changed):
        await _queue_backfill(session, achievement_id)
    return after


async def _queue_backfill(session: AsyncSession, achievement_id: int) -> None:
    await defer_in_transaction(
        session,
        ACHIEVEMENTS_BACKFILL,
        {"achievement_id": achievement_id, "after_user": None},
        lock=f"achievement-backfill:{achievement_id}",
    )

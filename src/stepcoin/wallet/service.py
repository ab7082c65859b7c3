"""The wallet: the one door through which coins move, admin adjustments, the reconciliation.

Every change of a balance, from any domain, is `post()` here (in SQL, the step loop calls the
same stepcoin_wallet_post): it locks the wallet, appends the ledger rows with their unique
references (a retry is a replay, never a second movement), keeps the counters by one rule and
refuses a negative balance. src/stepcoin/wallet/sql/post.v3.sql is the function as it runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.distribution import key_slice
from stepcoin.errors import Conflict, Forbidden, InvalidInput, NotFound
from stepcoin.wallet import repository

# Transaction types (coin_transactions.transaction_type). Shop movements (redemption, refund)
# change lifetime_spent; every other type changes lifetime_earned; so that
# available_coins = lifetime_earned - lifetime_spent for every wallet.
STEP_REWARD: Final = "step_reward"
REVERSAL: Final = "reversal"
ACHIEVEMENT_REWARD: Final = "achievement_reward"
REDEMPTION: Final = "redemption"
REFUND: Final = "refund"
ADMIN_ADJUSTMENT: Final = "admin_adjustment"
CAMPAIGN_REWARD: Final = "campaign_reward"  # campaigns: reference campaign:<id>:<user>
PRIZE_REWARD: Final = "prize_reward"  # leaderboard prizes: prize:<period>:<start>:<user>
REFERRAL_REWARD: Final = "referral_reward"  # referrals: referral:<id>:referrer|invitee
# challenges: challenge:<id>:<user>:entry:<n> | refund:<n>|final | prize (fees, not issuance)
CHALLENGE_ENTRY: Final = "challenge_entry"
CHALLENGE_REFUND: Final = "challenge_refund"
CHALLENGE_PRIZE: Final = "challenge_prize"
SHOP_TYPES: Final = frozenset({REDEMPTION, REFUND})

INSUFFICIENT_COINS_SQLSTATE: Final = "SC001"
NO_WALLET_SQLSTATE: Final = "SC002"


@dataclass(frozen=True, slots=True)
class Entry:
    """One coin movement to post: signed amount, its type and a reference unique per type and
    walker (docs/scale-out.md, "Ledger references per user")."""

    amount: int
    transaction_type: str
    reference_id: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Posted:
    """A ledger row the post wrote, or found already written (replayed)."""

    id: int
    amount: int
    transaction_type: str
    reference_id: str
    balance_after: int
    created_at: Any
    note: str | None
    replayed: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "amount": self.amount,
            "transaction_type": self.transaction_type,
            "reference_id": self.reference_id,
            "balance_after": self.balance_after,
            "created_at": self.created_at,
            "note": self.note,
        }


class InsufficientCoins(Conflict):
    """A debit would take the balance below zero; nothing was written."""

    def __init__(self, available: int, amount: int) -> None:
        super().__init__(
            f"The wallet holds {available} coins; a debit of {-amount} would overdraw it.",
            code="insufficient_coins",
            extra={"available_coins": available},
        )


_POST = text(
    "SELECT * FROM stepcoin_wallet_post(:user_id, CAST(:amounts AS bigint[]), "
    "CAST(:types AS text[]), CAST(:refs AS text[]), CAST(:notes AS text[]), :pending)"
)


def _sqlstate(exc: DBAPIError) -> tuple[str | None, str | None]:
    cause = exc.orig.__cause__ if exc.orig is not None else None
    return getattr(exc.orig, "sqlstate", None), getattr(cause, "detail", None)


async def post(
    session: AsyncSession,
    user_id: uuid.UUID,
    entries: Sequence[Entry],
    *,
    pending_delta: int = 0,
) -> list[Posted]:
    """Move coins in the caller's transaction: the only writer of wallets and the ledger.

    Entries already in the ledger (same type and reference) come back with replayed=True and
    move nothing. A balance that would go below zero raises InsufficientCoins (409
    `insufficient_coins`); a missing wallet raises NotFound (`user_not_found`). Either error
    leaves the transaction to be rolled back (session_scope does).
    """
    try:
        result = await session.execute(
            _POST,
            {
                "user_id": user_id,
                "amounts": [e.amount for e in entries],
                "types": [e.transaction_type for e in entries],
                "refs": [e.reference_id for e in entries],
                "notes": [e.note for e in entries],
                "pending": pending_delta,
            },
        )
    except DBAPIError as exc:
        state, detail = _sqlstate(exc)
        if state == INSUFFICIENT_COINS_SQLSTATE:
            debit = sum(e.amount for e in entries)
            raise InsufficientCoins(int(detail or 0), debit) from None
        if state == NO_WALLET_SQLSTATE:
            raise NotFound("No such user.", code="user_not_found") from None
        raise
    return [Posted(**row) for row in result.mappings()]


_POST_MANY = text(
    "SELECT * FROM stepcoin_wallet_post_many(CAST(:users AS uuid[]), "
    "CAST(:amounts AS bigint[]), CAST(:types AS text[]), CAST(:refs AS text[]), "
    "CAST(:notes AS text[]))"
)


async def post_many(
    session: AsyncSession, entries: Mapping[uuid.UUID, Sequence[Entry]]
) -> dict[uuid.UUID, list[Posted]]:
    """`post()` for many wallets in ONE round trip (same rules, walker by walker in user-id
    order, in the caller's transaction): for batches that would otherwise hold many wallet
    locks across a round trip per walker. Errors as `post()`: the first refused walker fails
    the whole call, nothing is written."""
    users = sorted(u for u, items in entries.items() if items)
    flat = [(u, e) for u in users for e in entries[u]]
    if not flat:
        return {}
    try:
        result = await session.execute(
            _POST_MANY,
            {
                "users": [u for u, _ in flat],
                "amounts": [e.amount for _, e in flat],
                "types": [e.transaction_type for _, e in flat],
                "refs": [e.reference_id for _, e in flat],
                "notes": [e.note for _, e in flat],
            },
        )
    except DBAPIError as exc:
        state, detail = _sqlstate(exc)
        if state == INSUFFICIENT_COINS_SQLSTATE:
            raise InsufficientCoins(
                int(detail or 0), sum(min(e.amount, 0) for _, e in flat)
            ) from None
        if state == NO_WALLET_SQLSTATE:
            raise NotFound("No such user.", code="user_not_found") from None
        raise
    posted: dict[uuid.UUID, list[Posted]] = {}
    for row in result.mappings():
        values = dict(row)
        posted.setdefault(values.pop("user_id"), []).append(Posted(**values))
    return posted


@dataclass(frozen=True, slots=True)
class Adjustment:
    transaction: dict[str, Any]
    replayed: bool


async def adjust_balance(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    amount: int,
    reason: str,
    admin_id: uuid.UUID,
    idempotency_key: str | None = None,
) -> Adjustment:
    """Credit (amount > 0) or debit (amount < 0) a wallet by hand, in the caller's transaction.

    The wallet update, its ledger row and the audit row are written together or not at all.
    Like every movement that is not the shop's, an adjustment changes lifetime_earned (a debit
    is an earning taken back). A debit larger than the balance is refused (409
    `insufficient_coins`) and changes nothing. Staff never adjust their own wallet (403
    `own_wallet`), from the API or the console.

    With an idempotency key the ledger reference is `adj:<admin_id>:<key>`: a retry by the same
    admin gets the first ledger row back (replayed=True) instead of a second adjustment; the
    same key for another user or amount is refused (422 `idempotency_key_reused`). That refusal
    is this function's (the lock and the look-up of any walker's row below): the ledger is
    unique per walker and would take the same reference for a second walker.
    """
    if admin_id == user_id:
        raise Forbidden("Staff never adjust their own wallet.", code="own_wallet")
    if idempotency_key is not None:
        reference_id = f"adj:{admin_id}:{idempotency_key}"
        await repository.lock_reference(session, reference_id)
        existing = await repository.find_transaction(session, ADMIN_ADJUSTMENT, reference_id)
        if existing is not None:
            if existing.pop("user_id") != user_id or existing["amount"] != amount:
                raise InvalidInput(
                    "This Idempotency-Key was used for a different adjustment.",
                    code="idempotency_key_reused",
                )
            return Adjustment(existing, replayed=True)
    else:
        reference_id = f"adj:{uuid.uuid4()}"

    (posted,) = await post(
        session, user_id, [Entry(amount, ADMIN_ADJUSTMENT, reference_id, reason)]
    )
    await audit.record(
        session,
        admin_id=admin_id,
        action="wallet.adjust",
        entity_type="wallet",
        entity_id=str(user_id),
        before={"available_coins": posted.balance_after - amount},
        after={"available_coins": posted.balance_after},
        extra={
            "amount": amount,
            "reason": reason,
            "transaction_id": posted.id,
            "reference_id": reference_id,
        },
    )
    return Adjustment(posted.as_dict(), replayed=posted.replayed)


@dataclass
class LedgerReport:
    wallets_checked: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    duplicate_awards: list[dict[str, Any]] = field(default_factory=list)
    bad_balance_chains: list[dict[str, Any]] = field(default_factory=list)
    pending_mismatches: list[dict[str, Any]] = field(default_factory=list)
    counter_mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.mismatches
            or self.duplicate_awards
            or self.bad_balance_chains
            or self.pending_mismatches
            or self.counter_mismatches
        )


# The checks of check_ledger, each listing at most :limit offending rows. `{wallets}` and
# `{rows}` are the walkers a check reads (_scope): every walker, or those of the scoped check.
_LEDGER_CHECKS = {
    "mismatches": """
            SELECT w.user_id, w.available_coins, coalesce(l.total, 0) AS ledger_total
            FROM wallets w
            LEFT JOIN (SELECT user_id, sum(amount) AS total FROM coin_transactions
                       WHERE {rows} GROUP BY user_id) l ON l.user_id = w.user_id
            WHERE {wallets} AND w.available_coins <> coalesce(l.total, 0)
            ORDER BY w.user_id LIMIT :limit
        """,
    "duplicate_awards": """
            SELECT user_id, transaction_type, reference_id, count(*) AS n FROM coin_transactions
            WHERE {rows}
            GROUP BY user_id, transaction_type, reference_id HAVING count(*) > 1 LIMIT :limit
        """,
    "bad_balance_chains": """
            SELECT w.user_id, w.available_coins, last.balance_after
            FROM wallets w
            JOIN LATERAL (SELECT balance_after FROM coin_transactions t
                          WHERE t.user_id = w.user_id
                          ORDER BY t.created_at DESC, t.id DESC LIMIT 1) last ON true
            WHERE {wallets} AND last.balance_after <> w.available_coins
            ORDER BY w.user_id LIMIT :limit
        """,
    "pending_mismatches": """
            SELECT w.user_id, w.pending_coins, coalesce(d.held, 0) AS days_pending,
                   coalesce(h.held, 0) AS budget_held
            FROM wallets w
            LEFT JOIN (SELECT user_id, sum(coins_pending) AS held FROM step_days
                       WHERE {rows} GROUP BY user_id) d ON d.user_id = w.user_id
            LEFT JOIN (SELECT user_id, sum(amount) AS held FROM issuance_holds
                       WHERE released_at IS NULL AND {rows} GROUP BY user_id) h
                   ON h.user_id = w.user_id
            WHERE {wallets} AND w.pending_coins <> coalesce(d.held, 0) + coalesce(h.held, 0)
            ORDER BY w.user_id LIMIT :limit
        """,
    "counter_mismatches": """
            SELECT w.user_id, w.lifetime_earned, w.lifetime_spent,
                   coalesce(l.earned, 0) AS ledger_earned,
                   coalesce(l.spent, 0) AS ledger_spent
            FROM wallets w
            LEFT JOIN (
                SELECT user_id,
                       sum(amount) FILTER (WHERE transaction_type <> ALL(:shop))
                           AS earned,
                       -sum(amount) FILTER (WHERE transaction_type = ANY(:shop))
                           AS spent
                FROM coin_transactions WHERE {rows} GROUP BY user_id
            ) l ON l.user_id = w.user_id
            WHERE {wallets} AND (w.lifetime_earned, w.lifetime_spent)
                  <> (coalesce(l.earned, 0), coalesce(l.spent, 0))
            ORDER BY w.user_id LIMIT :limit
        """,
}


def _scope(scoped: bool) -> dict[str, str]:
    """The walkers a check reads: every one, or those in the transaction's `ledger_scope`
    (then each ledger, days and holds aggregate reads only their rows, by their user_id
    indexes, instead of whole tables)."""
    if not scoped:
        return {"wallets": "true", "rows": "true"}
    return {
        "wallets": "w.user_id IN (SELECT s.user_id FROM ledger_scope s)",
        "rows": "user_id IN (SELECT s.user_id FROM ledger_scope s)",
    }


_CHECKS_OF_ALL = {name: text(sql.format(**_scope(False))) for name, sql in _LEDGER_CHECKS.items()}
_CHECKS_OF_SCOPE = {name: text(sql.format(**_scope(True))) for name, sql in _LEDGER_CHECKS.items()}

SLICES_A_DAY = 24
"""The scoped (hourly) check also reads one of this many slices of every walker, in turn: each
walker's books are checked at least once a day, however long since they last moved."""
RECENT_MINUTES = 65
"""...and every walker with a ledger row this recent (the hourly run, with a margin)."""
WHOLE_FROM_SHARE = 1 / 3
"""When the walkers to check are at least this share of all, the whole check runs instead: its
whole-table aggregates then cost less than reading so many walkers' rows one by one (every
walker moved within the hour: 4.5 s scoped against 2.7 s whole at 11,500 walkers)."""


async def check_ledger(session: AsyncSession, *, limit: int = 100) -> LedgerReport:
    """Every wallet equals its ledger; no (type, reference) twice for a walker; the latest
    balance_after fits; the held coins equal what the user's days hold for review
    (step_days.coins_pending) plus the rewards an issuance budget holds (issuance_holds not
    released); the lifetime counters follow the ledger by their rule (earned - spent =
    available). Every wallet: `stepcoin check-ledger`, the restore drill."""
    report = LedgerReport()
    report.wallets_checked = (
        await session.execute(text("SELECT count(*) FROM wallets"))
    ).scalar_one()
    return await _run_checks(session, report, _CHECKS_OF_ALL, limit)


def slice_bounds(slice_: int) -> tuple[uuid.UUID, uuid.UUID]:
    """The first and last key of slice `slice_` (mod SLICES_A_DAY) of the uuid space."""
    return key_slice(slice_, SLICES_A_DAY)


async def check_recent_ledger(
    session: AsyncSession, *, slice_: int, limit: int = 100
) -> LedgerReport:
    """check_ledger's checks for the walkers whose ledger moved in the last RECENT_MINUTES
    (the BRIN index on created_at) and the walkers of key slice `slice_` (of SLICES_A_DAY:
    a range of the wallets' primary key): the hourly job. Its cost follows the walkers who
    moved and a 24th of the rest, where the whole check reads every ledger row ever written
    (2.7 s an hour at 900,000 rows: minutes at a million walkers; BENCHMARKS.md run 23)."""
    low, high = slice_bounds(slice_)
    await session.execute(
        text("CREATE TEMP TABLE ledger_scope (user_id uuid PRIMARY KEY) ON COMMIT DROP")
    )
    await session.execute(
        text(
            "INSERT INTO ledger_scope (user_id) "
            "SELECT user_id FROM coin_transactions "
            "WHERE created_at > now() - make_interval(mins => :recent) "
            "UNION SELECT user_id FROM wallets WHERE user_id BETWEEN :low AND :high"
        ),
        {"recent": RECENT_MINUTES, "low": low, "high": high},
    )
    await session.execute(text("ANALYZE ledger_scope"))
    report = LedgerReport()
    scoped, every = (
        await session.execute(
            text(
                "SELECT (SELECT count(*) FROM wallets w WHERE "
                + _scope(True)["wallets"]
                + "), (SELECT count(*) FROM wallets)"
            )
        )
    ).one()
    whole = scoped >= every * WHOLE_FROM_SHARE
    report.wallets_checked = every if whole else scoped
    report = await _run_checks(
        session, report, _CHECKS_OF_ALL if whole else _CHECKS_OF_SCOPE, limit
    )
    await session.execute(text("DROP TABLE ledger_scope"))
    return report


async def _run_checks(
    session: AsyncSession, report: LedgerReport, checks: dict[str, Any], limit: int
) -> LedgerReport:
    params = {"limit": limit, "shop": sorted(SHOP_TYPES)}
    for name, query in checks.items():
        rows = await session.execute(query, params)  # a statement ignores keys it lacks
        setattr(report, name, [dict(r) for r in rows.mappings()])
    return report

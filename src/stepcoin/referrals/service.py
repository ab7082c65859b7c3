"""Referrals that reward real walkers (issue 16, item 3; docs/referrals.md).

Every walker has a code (made on first ask). A new walker claims one at sign-up or within the
terms' claim window; the claim keeps a copy of the terms in force (`referrals.terms`), and
everything later about that referral reads its own copy. The job `referrals:settle` (every
minute) moves each open referral on: `pending` until the invitee has the qualifying number of
days with approved steps within the window from the claim day (coins never count, only
step_days.credited_steps), then `held` until the hold ends, then, signals checked again,
`paid`: both sides once, through the wallet's issuance budgets (`issue_many`, source
`referrals`, references `referral:<id>:referrer|invitee`). The referrer's side stops at the
terms' monthly cap (reason `referrer_monthly_cap`); the invitee is still paid.

Self-referral signals (a shared device or address, the same series of step data, a low trust
score, a ring of referrals, a burst of claims of one code) send a referral to `review`, where
staff (never the referrer or the invitee) approve or reject it, audited.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.db import Database, session_scope
from stepcoin.errors import Conflict, Forbidden, InvalidInput, NotFound
from stepcoin.fairplay import links, trust
from stepcoin.pagination import bigint_id, decode_cursor, encode_cursor
from stepcoin.referrals import repository
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.wallet import budgets
from stepcoin.wallet.service import REFERRAL_REWARD, Entry

logger = logging.getLogger("stepcoin.referrals")

TERMS_SETTING = "referrals.terms"
TRUST_SETTING = "referrals.review_below_trust"
BURST_SETTING = "referrals.burst_claims_per_day"
# no 0/O, 1/I/L: a code read aloud or copied by hand cannot be mistaken
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
SETTLE_BATCH = 200
MAX_NOTE = 1000
BUDGET_SOURCE = "referrals"

# the signals (docs/referrals.md); the first three come from stepcoin.fairplay.links
SHARED_DEVICE = "shared_device"
SHARED_ADDRESS = "shared_address"
SAME_SERIES = "same_series"
LOW_TRUST = "low_trust"
RING = "referral_ring"
BURST = "referral_burst"
SIGNALS = (SHARED_DEVICE, SHARED_ADDRESS, SAME_SERIES, LOW_TRUST, RING, BURST)
# reasons that are outcomes, not signals
MONTHLY_CAP = "referrer_monthly_cap"
NOT_ENOUGH_DAYS = "not_enough_days"
ACCOUNT_DELETED = "account_deleted"


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _month_start(moment: datetime) -> datetime:
    at = moment.astimezone(UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def reference(referral_id: int, side: str) -> str:
    """The ledger reference of one side's reward: unique per referral and side."""
    return f"referral:{referral_id}:{side}"


def normalise_code(raw: str) -> str | None:
    """A typed code as stored: upper case, without spaces or dashes; None if it cannot be one."""
    code = "".join(ch for ch in raw.strip().upper() if ch not in " -")
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        return None
    return code


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


async def terms_now(session: AsyncSession) -> dict[str, Any]:
    return dict(await runtime_settings.get(session, TERMS_SETTING))


async def code_of(session: AsyncSession, user_id: uuid.UUID) -> str:
    """The walker's code, made on first ask (a collision with another's draws again)."""
    for _ in range(10):
        code = await repository.code_of(session, user_id)
        if code is not None:
            return code
        made = await repository.insert_code(session, user_id, _new_code())
        if made is not None:
            return made
    raise RuntimeError("no free referral code after 10 draws")  # 31^8: never in practice


async def my_referral(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """GET /v1/me/referral: the walker's code, the terms they can invite under, their claim."""
    code = await code_of(session, user_id)
    terms = await terms_now(session)
    claimed = await repository.by_invitee(session, user_id)
    return {
        "code": code,
        "terms": terms,
        "claimed": (
            {"code": claimed["code"], "status": claimed["status"]} if claimed is not None else None
        ),
    }


# ---- the claim ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    referral: dict[str, Any]
    created: bool


def _unknown() -> NotFound:
    return NotFound("There is no walker with this referral code.", code="referral_code_unknown")


async def claim(
    session: AsyncSession, invitee_id: uuid.UUID, raw_code: str, *, now: datetime | None = None
) -> Claimed:
    """Claim a referrer's code, once: the same code again answers the same referral; another
    code after one is 409; the walker's own code 422; an account older than the claim window
    409. Two claims at once take turns on the invitee's row lock."""
    at = _now(now)
    created_at = await repository.lock_invitee(session, invitee_id)
    if created_at is None:
        raise NotFound("This account is gone.", code="referral_code_unknown")
    code = normalise_code(raw_code)
    existing = await repository.by_invitee(session, invitee_id)
    if existing is not None:
        if code == existing["code"]:
            return Claimed(existing, created=False)
        raise Conflict(
            "You have claimed a referral code already; it cannot be changed.",
            code="referral_already_claimed",
            extra={"claimed_code": existing["code"]},
        )
    if code is None:
        raise _unknown()
    referrer_id = await repository.owner_of(session, code)
    if referrer_id is None:
        raise _unknown()
    if referrer_id == invitee_id:
        raise InvalidInput("This is your own referral code.", code="self_referral")
    terms = await terms_now(session)
    window = int(terms["claim_window_days"])
    if at - created_at > timedelta(days=window):
        raise Conflict(
            f"A referral code is claimed within {window} days of signing up.",
            code="referral_claim_window_closed",
            extra={"claim_window_days": window},
        )
    # claims of one code take turns (the burst count is exact); the settle job locks the same
    # row before the wallets, the claim holds no wallet
    await repository.lock_codes(session, [referrer_id])
    reasons = await signals(session, referrer_id, invitee_id)
    burst = int(await runtime_settings.get(session, BURST_SETTING))
    if await repository.claims_since(session, referrer_id, at - timedelta(hours=24)) >= burst:
        reasons.append(BURST)
    row = await repository.insert(
        session,
        referrer_id=referrer_id,
        invitee_id=invitee_id,
        code=code,
        status="review" if reasons else "pending",
        reasons=reasons,
        terms=terms,
        claimed_at=at,
    )
    if row is None:  # cannot happen under the invitee's row lock; answered as a replay
        again = await repository.by_invitee(session, invitee_id)
        assert again is not None
        return Claimed(again, created=False)
    logger.info(
        "referral claimed",
        extra={"referral_id": row["id"], "status": row["status"], "reasons": reasons},
    )
    return Claimed(row, created=True)


async def signals(
    session: AsyncSession, referrer_id: uuid.UUID, invitee_id: uuid.UUID
) -> list[str]:
    """The self-referral signals between the two walkers now (without the burst, which is
    about the claim's moment): shared device/address/series, low trust, a ring."""
    reasons = [r for r in await links.shared_between(session, referrer_id, invitee_id)]
    floor = int(await runtime_settings.get(session, TRUST_SETTING))
    if floor > 0:
        for user in (referrer_id, invitee_id):
            if await trust.score_of(session, user) < floor:
                reasons.append(LOW_TRUST)
                break
    if await repository.in_ring(session, referrer_id, invitee_id):
        reasons.append(RING)
    return list(dict.fromkeys(reasons))


# ---- settling: qualification, hold, payment -------------------------------------------------


@dataclass
class Settled:
    qualified: int = 0
    expired: int = 0
    to_review: int = 0
    paid: int = 0
    capped: int = 0

    def add(self, other: Settled) -> None:
        self.qualified += other.qualified
        self.expired += other.expired
        self.to_review += other.to_review
        self.paid += other.paid
        self.capped += other.capped

    def as_dict(self) -> dict[str, int]:
        return {
            "qualified": self.qualified,
            "expired": self.expired,
            "to_review": self.to_review,
            "paid": self.paid,
            "capped": self.capped,
        }


async def settle_batch(
    session: AsyncSession, *, after: int, now: datetime, limit: int = SETTLE_BATCH
) -> tuple[Settled, int | None]:
    """Move one batch of open referrals on, in the caller's transaction; the last id seen
    (the next batch starts after it), or None when this was the last batch. Each row is
    locked (another settle skips it), so a referral is paid once however many settles run;
    the ledger references make a replay move nothing anyway."""
    rows = await repository.open_batch(session, after=after, limit=limit, now=now)
    done = Settled()
    payable: list[dict[str, Any]] = []
    for row in rows:
        terms = row["terms"]
        if row["status"] == "pending":
            days = int(row["days_now"])
            if days >= int(terms["qualifying_days"]):
                row = await repository.update(
                    session,
                    row["id"],
                    status="held",
                    approved_days=days,
                    qualified_at=now,
                    hold_until=now + timedelta(days=int(terms["hold_days"])),
                )
                done.qualified += 1
            elif row["invitee_today"] > row["last_day"]:
                await repository.update(
                    session,
                    row["id"],
                    status="expired",
                    approved_days=days,
                    reasons=[*row["reasons"], NOT_ENOUGH_DAYS],
                )
                done.expired += 1
                continue
            else:
                if days != row["approved_days"]:
                    await repository.update(session, row["id"], approved_days=days)
                continue
        if row["status"] == "held" and row["hold_until"] <= now:
            payable.append(row)
    if payable:
        done.add(await _pay(session, payable, now=now))
    last = rows[-1]["id"] if len(rows) == limit else None
    return done, last


async def _new_signals(session: AsyncSession, row: dict[str, Any]) -> list[str]:
    """Signals now that a reviewer has not already accepted for this referral."""
    accepted = set(row["reasons"]) if row["reviewed_by"] is not None else set()
    found = await signals(session, row["referrer_id"], row["invitee_id"])
    return [r for r in found if r not in accepted]


async def _pay(session: AsyncSession, rows: list[dict[str, Any]], *, now: datetime) -> Settled:
    """Pay held referrals whose hold is over (rows locked by the caller): signals again first,
    then the referrer's monthly cap, then both sides through issue_many."""
    done = Settled()
    await repository.lock_codes(session, [r["referrer_id"] for r in rows])
    entries: dict[uuid.UUID, list[Entry]] = {}
    month = _month_start(now)
    paid_this_month: dict[uuid.UUID, int] = {}
    for row in rows:
        fresh = await _new_signals(session, row)
        if fresh:
            await repository.update(
                session,
                row["id"],
                status="review",
                reasons=list(dict.fromkeys([*row["reasons"], *fresh])),
            )
            done.to_review += 1
            continue
        terms = row["terms"]
        referrer = row["referrer_id"]
        if referrer not in paid_this_month:
            paid_this_month[referrer] = await repository.paid_referrer_rewards(
                session, referrer, month
            )
        referrer_coins = int(terms["referrer_coins"])
        reasons = list(row["reasons"])
        if paid_this_month[referrer] >= int(terms["monthly_cap"]):
            referrer_coins = 0
            reasons.append(MONTHLY_CAP)
            done.capped += 1
        elif referrer_coins > 0:
            paid_this_month[referrer] += 1
        invitee_coins = int(terms["invitee_coins"])
        if referrer_coins > 0:
            entries.setdefault(referrer, []).append(
                Entry(
                    referrer_coins,
                    REFERRAL_REWARD,
                    reference(row["id"], "referrer"),
                    "Referral reward: a walker you invited qualified",
                )
            )
        if invitee_coins > 0:
            entries.setdefault(row["invitee_id"], []).append(
                Entry(
                    invitee_coins,
                    REFERRAL_REWARD,
                    reference(row["id"], "invitee"),
                    "Welcome reward: you joined with a referral code",
                )
            )
        await repository.update(
            session,
            row["id"],
            status="paid",
            paid_at=now,
            referrer_coins=referrer_coins,
            invitee_coins=invitee_coins,
            reasons=reasons,
        )
        done.paid += 1
    if entries:
        # a budget at its cap holds the coins (pending for the walker): wallet:release_held
        # pays them when there is room; a replayed reference moves nothing
        await budgets.issue_many(session, BUDGET_SOURCE, entries, today=now.date())
    return done


async def settle(database: Database, *, now: datetime | None = None) -> dict[str, int]:
    """The job's body: batch after batch, each in its own transaction, until every open
    referral has been looked at. Killed midway, the next run starts over: what committed is
    done, what did not is done again (once)."""
    at = _now(now)
    total = Settled()
    after: int | None = 0
    while after is not None:
        async with session_scope(database) as session:
            done, after = await settle_batch(session, after=after, now=at)
        total.add(done)
    result = total.as_dict()
    if any(result.values()):
        logger.info("referrals settled", extra=result)
    return result


# ---- review ---------------------------------------------------------------------------------


def _not_found() -> NotFound:
    return NotFound("No such referral.", code="referral_not_found")


def check_note(note: str | None) -> str | None:
    if not note:
        return None
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"The note is longer than {MAX_NOTE} characters.", code="note")
    return note


async def decide(
    session: AsyncSession,
    referral_id: int,
    *,
    reviewer_id: uuid.UUID,
    approve: bool,
    note: str | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A reviewer approves (back to pending, held, or paid at once when the hold is over) or
    rejects (closed; the note is shown to the referrer) a referral in review. Never one's own
    (403 own_referral); audited in the same transaction."""
    at = _now(now)
    row = await repository.get(session, referral_id, for_update=True)
    if row is None:
        raise _not_found()
    if reviewer_id in (row["referrer_id"], row["invitee_id"]):
        raise Forbidden("Staff do not review their own referrals.", code="own_referral")
    if row["status"] != "review":
        raise Conflict(
            f"This referral is {row['status']}, not in review.",
            code="referral_not_in_review",
            extra={"current_status": row["status"]},
        )
    note = check_note(note)
    if not approve:
        after = await repository.update(
            session,
            referral_id,
            status="rejected",
            reviewed_by=reviewer_id,
            reviewed_at=at,
            note=note,
        )
    else:
        days = await repository.approved_days(session, referral_id)
        status = "pending" if row["qualified_at"] is None else "held"
        after = await repository.update(
            session,
            referral_id,
            status=status,
            approved_days=days,
            reviewed_by=reviewer_id,
            reviewed_at=at,
            note=note,
        )
        if status == "held" and after["hold_until"] is not None and after["hold_until"] <= at:
            # the reviewer accepted today's signals: pay now, under the same rules as the job
            await _pay(session, [after], now=at)
            refreshed = await repository.get(session, referral_id)
            assert refreshed is not None
            after = refreshed
    await audit.record(
        session,
        admin_id=reviewer_id,
        action="referral.approved" if approve else "referral.rejected",
        entity_type="referral",
        entity_id=str(referral_id),
        before={"status": row["status"], "reasons": row["reasons"]},
        after={"status": after["status"], "note": note},
        extra={
            "referrer_id": str(row["referrer_id"]),
            "invitee_id": str(row["invitee_id"]),
        },
    )
    return await _admin_item(session, referral_id)


async def _admin_item(session: AsyncSession, referral_id: int) -> dict[str, Any]:
    row = await repository.get_listed(session, referral_id)
    if row is None:
        raise _not_found()
    return admin_view(row)


def admin_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": row["status"],
        "reasons": row["reasons"],
        "referrer": {
            "id": row["referrer_id"],
            "email": row.get("referrer_email"),
            "full_name": row.get("referrer_name"),
        },
        "invitee": {
            "id": row["invitee_id"],
            "email": row.get("invitee_email"),
            "full_name": row.get("invitee_name"),
        },
        "code": row["code"],
        "terms": row["terms"],
        "terms_version": row["terms_version"],
        "approved_days": row["approved_days"],
        "claimed_at": row["claimed_at"],
        "qualified_at": row["qualified_at"],
        "hold_until": row["hold_until"],
        "paid_at": row["paid_at"],
        "referrer_coins": row["referrer_coins"],
        "invitee_coins": row["invitee_coins"],
        "reviewed_by": row["reviewed_by"],
        "reviewed_at": row["reviewed_at"],
        "note": row["note"],
    }


async def admin_list(
    session: AsyncSession, *, status: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Referrals of a status (the review queue by default), oldest claim first."""
    after = decode_cursor(cursor, bigint_id) if cursor else None
    rows = await repository.list_by_status(session, status=status, limit=limit + 1, after=after)
    items = [admin_view(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last["claimed_at"], last["id"])
    return {"items": items, "next_cursor": next_cursor}


async def status_counts(session: AsyncSession) -> dict[str, int]:
    return await repository.count_by_status(session)


# ---- the referrer's view ---------------------------------------------------------------------


def display_name(full_name: str | None, deleted: bool) -> str:
    """The invitee as the referrer sees them: a first name, never more."""
    if deleted:
        return "A deleted account"
    first = (full_name or "").strip().split(" ")[0] if full_name else ""
    return first[:40] if first else "A walker"


def plain_reason(row: dict[str, Any], *, today: date | None = None) -> str:
    """Why the referral is where it is, in words for the referrer (no signal's detail)."""
    terms = row["terms"]
    status = row["status"]
    need = int(terms["qualifying_days"])
    if status == "pending":
        return (
            f"Waiting for {need} days with approved steps by {row['last_day'].isoformat()} "
            f"({row['approved_days']} so far)."
        )
    if status == "held":
        when = row["hold_until"].date().isoformat() if row["hold_until"] else "soon"
        return f"Qualified. The coins are paid on {when}, after a short hold."
    if status == "review":
        return "We are checking this invitation before paying it; this usually takes a few days."
    if status == "paid":
        if MONTHLY_CAP in row["reasons"]:
            return (
                "Your invitee was paid. Your reward was not: you reached this month's limit of "
                f"{terms['monthly_cap']} paid invitations."
            )
        return "Paid to both of you."
    if status == "rejected":
        return "Not paid after review" + (f": {row['note']}" if row["note"] else ".")
    if status == "expired":
        return (
            f"Not paid: {row['approved_days']} of the {need} days with approved steps were "
            f"walked within {terms['qualifying_window_days']} days of the claim."
        )
    if status == "cancelled":
        return "Not paid: an account was deleted before the reward was due."
    return str(status)


def _referrer_item(row: dict[str, Any]) -> dict[str, Any]:
    terms = row["terms"]
    coins = row["referrer_coins"] if row["status"] == "paid" else int(terms["referrer_coins"])
    return {
        "id": row["id"],
        "invitee": {
            "display_name": display_name(row.get("invitee_name"), bool(row.get("invitee_deleted")))
        },
        "status": row["status"],
        "reason": plain_reason(row),
        "claimed_at": row["claimed_at"],
        "approved_days": row["approved_days"],
        "days_needed": int(terms["qualifying_days"]),
        "qualifies_by": row["last_day"],
        "pays_on": row["hold_until"] if row["status"] in ("held", "paid") else None,
        "coins": coins if row["status"] not in ("rejected", "expired", "cancelled") else 0,
    }


async def my_referrals(
    session: AsyncSession, user_id: uuid.UUID, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """GET /v1/me/referrals: the walker's invitees, newest first, each with its status and why."""
    before = decode_cursor(cursor, bigint_id) if cursor else None
    rows = await repository.list_of_referrer(session, user_id, limit=limit + 1, before=before)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last["claimed_at"], last["id"])
    return {"items": [_referrer_item(r) for r in rows[:limit]], "next_cursor": next_cursor}


# ---- the account's lifecycle -----------------------------------------------------------------


async def forget(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Account deletion: referrals not yet paid end (`cancelled`), the code goes (nobody can
    claim it again); paid referrals stay, as the ledger rows they explain."""
    cancelled = await repository.cancel_open(session, user_id, ACCOUNT_DELETED)
    await repository.delete_code(session, user_id)
    return cancelled


async def export_of(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """The walker's part of the data export: their code, their own claim, their invitees."""
    code = await repository.code_of(session, user_id)
    rows = await repository.of_user(session, user_id)
    claimed = next((r for r in rows if r["invitee_id"] == user_id), None)
    return {
        "code": code,
        "claimed": (
            {
                "code": claimed["code"],
                "status": claimed["status"],
                "claimed_at": claimed["claimed_at"],
                "paid_at": claimed["paid_at"],
                "coins": claimed["invitee_coins"],
                "terms": claimed["terms"],
            }
            if claimed is not None
            else None
        ),
        "invited": [_referrer_item(r) for r in rows if r["referrer_id"] == user_id],
    }

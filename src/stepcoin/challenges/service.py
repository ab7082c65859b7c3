"""Step challenges (issue 17, item 4; docs/challenges.md).

A challenge is made from a template (rules.py) by a walker for friends (invitees) or a group,
or by an admin for everyone or a company. Its days are calendar days in its timezone; its
lifecycle moves in the worker's tick: draft -> scheduled (published) -> active (at the start
in its timezone; cancelled instead with fewer than min_participants) -> grace (after the end,
for grace_hours: late syncs still count) -> settling (payouts fixed) -> settled (or
cancelled). Entry fees leave the walker's wallet through the wallet's one door into the
challenge's escrow (`challenge_entry`), come back on a leave before the start or a
cancellation (`challenge_refund`) and are paid to the winners at the end (`challenge_prize`),
each with a reference unique per challenge, walker and entry: exactly once. An admin's house
prize is issuance (budgets.issue_many, source `prizes`, `prize_reward`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.challenges import repository, rules
from stepcoin.db import Database, session_scope
from stepcoin.errors import Conflict, Forbidden, InvalidInput, NotFound
from stepcoin.notify import service as notify
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.social import groups
from stepcoin.social import service as social
from stepcoin.wallet import budgets
from stepcoin.wallet import service as wallet

logger = logging.getLogger("stepcoin.challenges")

GRACE_HOURS = "challenges.grace_hours"
MIN_PARTICIPANTS = "challenges.min_participants"
MAX_DAYS = "challenges.max_days"
MAX_ENTRY_FEE = "challenges.max_entry_fee_coins"
MAX_HOUSE_PRIZE = "challenges.max_house_prize_coins"
MAX_INVITEES = "challenges.max_invitees"
PAYOUT_CHUNK = "challenges.payout_chunk_walkers"

ENTRY = wallet.CHALLENGE_ENTRY
REFUND = wallet.CHALLENGE_REFUND
PRIZE = wallet.CHALLENGE_PRIZE
STAFF_ROLES = ("admin", "support")
# the "ending soon" notification goes this long before the end, within the window after it
# (ticks run every minute; the dedupe key makes it one per walker anyway)
ENDING_NOTICE = timedelta(hours=3)
ENDING_WINDOW = timedelta(minutes=30)


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def entry_ref(challenge_id: uuid.UUID, user_id: uuid.UUID, entry: int) -> str:
    return f"challenge:{challenge_id}:{user_id}:entry:{entry}"


def refund_ref(challenge_id: uuid.UUID, user_id: uuid.UUID, entry: int | str) -> str:
    return f"challenge:{challenge_id}:{user_id}:refund:{entry}"


def prize_ref(challenge_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"challenge:{challenge_id}:{user_id}:prize"


def house_ref(challenge_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"challenge:{challenge_id}:{user_id}:house"


def not_found() -> NotFound:
    return NotFound("There is no such challenge for you.", code="challenge_not_found")


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone(name: str) -> ZoneInfo:
    """The IANA zone of that name; anything else (a folder such as `America`, a path) is 422."""
    if name not in _zone_names():
        raise InvalidInput(
            f"{name[:64]!r} is not an IANA time zone (e.g. Europe/Berlin).",
            code="invalid_timezone",
        )
    return ZoneInfo(name)


def starts_at(ch: dict[str, Any]) -> datetime:
    return datetime.combine(ch["starts_on"], time(0), tzinfo=zone(ch["timezone"]))


def ends_at(ch: dict[str, Any]) -> datetime:
    """The end: midnight after the last day, in the challenge's timezone."""
    return datetime.combine(ch["ends_on"] + timedelta(days=1), time(0), tzinfo=zone(ch["timezone"]))


def grace_ends_at(ch: dict[str, Any]) -> datetime:
    return ends_at(ch) + timedelta(hours=int(ch["grace_hours"]))


async def _setting(session: AsyncSession, key: str) -> int:
    return int(await runtime_settings.get(session, key))


# ---- templates -------------------------------------------------------------------------------


def templates() -> dict[str, Any]:
    return {
        "items": [
            {
                "code": t.code,
                "name": t.name,
                "description": t.description,
                "late_join": t.late_join,
                "params": [asdict(p) for p in t.params],
            }
            for t in rules.TEMPLATES.values()
        ]
    }


# ---- groups ----------------------------------------------------------------------------------


async def _may_join_group(session: AsyncSession, group_id: int | None, user_id: uuid.UUID) -> bool:
    """Whether the walker belongs to the group (or company) of a challenge: the ONE place that
    asks social. A deleted group (group_id NULL) takes nobody new; its participants stay."""
    return group_id is not None and await groups.is_member(session, group_id, user_id)


async def _check_group_audience(
    session: AsyncSession, audience: str, group_id: int, caller: Caller
) -> None:
    """A walker's group challenge is for a group they are in; an admin's company challenge is
    for a group of kind company (the admin need not be in it)."""
    kind = await groups.kind_of(session, group_id)
    if kind is None:
        raise NotFound("There is no group with this id.", code="group_not_found")
    if audience == "company":
        if kind != "company":
            # social's code, one status everywhere (409, as binding a domain to such a group)
            raise Conflict(
                "A company challenge is for a group of kind company.", code="not_a_company_group"
            )
    elif not await _may_join_group(session, group_id, caller.id):
        raise Forbidden("Only the group's members may do this.", code="not_group_member")


# ---- creating --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    id: uuid.UUID
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


async def create(
    session: AsyncSession, caller: Caller, body: dict[str, Any], *, now: datetime | None = None
) -> dict[str, Any]:
    """A new challenge: checked, stored as a draft or scheduled; a walker's own challenge has
    its creator as first participant (paying the fee) once it is published."""
    at = _now(now)
    template = body["template"]
    params = rules.validate_params(template, body.get("params"))
    tz = zone(body["timezone"])
    starts_on: date = body["starts_on"]
    ends_on: date = body["ends_on"]
    if ends_on < starts_on:
        raise InvalidInput("ends_on is before starts_on.", code="invalid_date_range")
    if starts_on <= at.astimezone(tz).date():
        raise InvalidInput(
            "A challenge starts on a later day than today (in its timezone).",
            code="starts_too_soon",
        )
    max_days = await _setting(session, MAX_DAYS)
    if (ends_on - starts_on).days + 1 > max_days:
        raise InvalidInput(
            f"A challenge lasts {max_days} days at most.",
            code="challenge_too_long",
            extra={"max_days": max_days},
        )
    fee = int(body.get("entry_fee_coins") or 0)
    max_fee = await _setting(session, MAX_ENTRY_FEE)
    if fee > max_fee:
        raise InvalidInput(
            f"The entry fee is {max_fee} coins at most.",
            code="entry_fee_too_high",
            extra={"max_entry_fee_coins": max_fee},
        )
    house = int(body.get("house_prize_coins") or 0)
    group_id: int | None = body.get("group_id")
    invitees: list[uuid.UUID] = sorted(set(body.get("invitees") or []))
    audience = body.get("audience") or (
        ("company" if caller.role == "admin" else "group")
        if group_id is not None
        else ("everyone" if caller.role == "admin" and not invitees else "friends")
    )
    if audience in ("everyone", "company") and caller.role != "admin":
        raise Forbidden(
            "Only an admin creates challenges for everyone or a company.", code="admin_only"
        )
    if audience in ("friends", "group") and house:
        raise InvalidInput(
            "Only challenges of admins for everyone or a company have a house prize.",
            code="house_prize_not_allowed",
        )
    if house > await _setting(session, MAX_HOUSE_PRIZE):
        raise InvalidInput("The house prize is above its maximum.", code="house_prize_too_high")
    if audience in ("group", "company"):
        if group_id is None:
            raise InvalidInput("A group challenge names its group_id.", code="group_required")
        await _check_group_audience(session, audience, group_id, caller)
    elif group_id is not None:
        raise InvalidInput(
            f"A challenge for {audience} has no group_id.", code="group_not_expected"
        )
    if audience == "friends":
        if not invitees:
            raise InvalidInput("Invite at least one friend.", code="invitees_required")
        cap = await _setting(session, MAX_INVITEES)
        if len(invitees) > cap:
            raise InvalidInput(
                f"At most {cap} invitees.", code="too_many_invitees", extra={"max_invitees": cap}
            )
        friends = await social.friends_among(session, caller.id, invitees)
        strangers = [u for u in invitees if u not in friends]
        if strangers:
            raise InvalidInput(
                "Only friends can be invited.",
                code="not_friends",
                extra={"user_ids": [str(u) for u in strangers]},
            )
    elif invitees:
        raise InvalidInput(
            f"A challenge for {audience} has no invitees.", code="invitees_not_expected"
        )
    minimum = await _setting(session, MIN_PARTICIPANTS)
    min_participants = int(body.get("min_participants") or minimum)
    if min_participants < minimum:
        raise InvalidInput(
            f"A challenge needs at least {minimum} participants.",
            code="min_participants_too_low",
            extra={"min_participants": minimum},
        )
    challenge_id = uuid.uuid4()
    draft = bool(body.get("draft"))
    await repository.insert_challenge(
        session,
        {
            "id": challenge_id,
            "template": template,
            "name": body["name"].strip(),
            "creator_id": caller.id,
            "by_staff": audience in ("everyone", "company"),
            "audience": audience,
            "group_id": group_id,
            "timezone": body["timezone"],
            "starts_on": starts_on,
            "ends_on": ends_on,
            "params": params,
            "daily_cap": body.get("daily_cap"),
            "entry_fee_coins": fee,
            "house_prize_coins": house,
            "min_participants": min_participants,
            "late_join": rules.TEMPLATES[template].late_join,
            "grace_hours": await _setting(session, GRACE_HOURS),
            "status": "draft" if draft else "scheduled",
            "created_at": at,
        },
    )
    await repository.insert_invitees(session, challenge_id, invitees)
    ch = await repository.challenge(session, challenge_id, for_update=True)
    assert ch is not None
    if not draft:
        await _tell_invitees(session, ch, invitees)
    if ch["by_staff"]:
        await audit.record(
            session,
            admin_id=caller.id,
            action="challenge.create",
            entity_type="challenge",
            entity_id=str(challenge_id),
            before=None,
            after={
                "name": ch["name"],
                "template": template,
                "audience": audience,
                "entry_fee_coins": fee,
                "house_prize_coins": house,
                "status": ch["status"],
            },
        )
    elif not draft:
        await _enter(session, ch, caller, at)
    return await view(session, caller.id, challenge_id, now=at)


async def publish(
    session: AsyncSession, caller: Caller, challenge_id: uuid.UUID, *, now: datetime | None = None
) -> dict[str, Any]:
    """A draft becomes scheduled (its creator only; a walker's creator joins it)."""
    at = _now(now)
    ch = await repository.challenge(session, challenge_id, for_update=True)
    if ch is None or ch["creator_id"] != caller.id:
        raise not_found()
    if ch["status"] != "draft":
        raise Conflict("Only a draft is published.", code="not_a_draft")
    if starts_at(ch) <= at:
        raise Conflict("This draft's start has passed.", code="draft_start_passed")
    await repository.set_status(session, challenge_id, "scheduled", published_at=at)
    ch["status"] = "scheduled"
    await _tell_invitees(session, ch, await repository.invitees(session, challenge_id))
    if not ch["by_staff"]:
        await _enter(session, ch, caller, at)
    return await view(session, caller.id, challenge_id, now=at)


# ---- notifications (docs/notifications.md): one per walker and event -------------------------


def _dedupe(ch: dict[str, Any], event: str) -> str:
    return f"challenge:{ch['id']}:{event}"


async def _tell(
    session: AsyncSession,
    ch: dict[str, Any],
    event: str,
    users: list[uuid.UUID],
    title: str,
    body: str,
    extra: dict[uuid.UUID, dict[str, Any]] | None = None,
) -> None:
    """One `challenge` notification per walker for this event of this challenge."""
    data = {"screen": "challenge", "challenge_id": str(ch["id"]), "event": event}
    await notify.notify_many(
        session,
        [
            notify.Note(
                user_id=u,
                type="challenge",
                title=title,
                body=body,
                dedupe_key=_dedupe(ch, event),
                data={**data, **((extra or {}).get(u) or {})},
                collapse_key=_dedupe(ch, "news")[:64],
            )
            for u in users
        ],
    )


async def _tell_invitees(
    session: AsyncSession, ch: dict[str, Any], invitees: list[uuid.UUID]
) -> None:
    if invitees:
        await _tell(
            session,
            ch,
            "invited",
            invitees,
            "You are invited to a challenge",
            f"{ch['name']}: starts {ch['starts_on']:%d %b}. Join before it starts.",
        )


def _joined(participants: list[dict[str, Any]]) -> list[uuid.UUID]:
    return [p["user_id"] for p in participants if p["status"] == "joined"]


# ---- viewing ---------------------------------------------------------------------------------


async def _may_see(session: AsyncSession, ch: dict[str, Any], user_id: uuid.UUID) -> bool:
    if ch["creator_id"] == user_id:
        return True
    if ch["status"] == "draft":
        return False
    if ch["audience"] == "everyone":
        return True
    if await repository.participant(session, ch["id"], user_id) is not None:
        return True
    if ch["audience"] in ("group", "company"):
        return await _may_join_group(session, ch["group_id"], user_id)
    return await repository.is_invited(session, ch["id"], user_id)


def _public(ch: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": ch["id"],
        "template": ch["template"],
        "name": ch["name"],
        "audience": ch["audience"],
        "group_id": ch["group_id"],
        "timezone": ch["timezone"],
        "starts_on": ch["starts_on"],
        "ends_on": ch["ends_on"],
        "starts_at": starts_at(ch),
        "ends_at": ends_at(ch),
        "grace_ends_at": grace_ends_at(ch),
        "params": ch["params"],
        "daily_cap": ch["daily_cap"],
        "entry_fee_coins": ch["entry_fee_coins"],
        "house_prize_coins": ch["house_prize_coins"],
        "min_participants": ch["min_participants"],
        "late_join": ch["late_join"],
        "status": ch["status"],
        "outcome": ch["outcome"],
        "participants": int(ch["participants"]),
        "escrow_coins": ch["escrow_coins"],
        "pool_coins": ch["pool_coins"] if ch["pool_coins"] is not None else ch["escrow_coins"],
        "created_by_me": False,
        "cancel_reason": ch["cancel_reason"],
    }


def _joinable(ch: dict[str, Any], at: datetime) -> bool:
    if ch["status"] == "scheduled":
        return at < starts_at(ch)
    return ch["status"] == "active" and ch["late_join"] and at < ends_at(ch)


async def view(
    session: AsyncSession,
    user_id: uuid.UUID,
    challenge_id: uuid.UUID,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    ch = await repository.challenge(session, challenge_id)
    if ch is None or not await _may_see(session, ch, user_id):
        raise not_found()
    out = _public(ch)
    out["created_by_me"] = ch["creator_id"] == user_id
    me = await repository.participant(session, challenge_id, user_id)
    out["me"] = (
        None
        if me is None
        else {
            "status": me["status"],
            "team": me["team"],
            "fee_held": me["fee_held"],
            "rank": me["final_rank"],
            "winner": me["winner"],
            "payout_coins": me["payout_coins"] + me["house_coins"],
            "paid": me["paid_at"] is not None,
        }
    )
    out["joinable"] = (
        _joinable(ch, _now(now))
        and (me is None or me["status"] == "left")
        and (ch["audience"] not in ("group", "company") or ch["group_id"] is not None)
    )
    return out


async def my_challenges(
    session: AsyncSession, user_id: uuid.UUID, *, limit: int = 100
) -> dict[str, Any]:
    """Mine (created, joined, invited), those open to everyone still taking joins, and those
    of my groups."""
    rows = await repository.visible_to(
        session,
        user_id,
        datetime.now(UTC).date(),
        limit,
        await groups.group_ids_of(session, user_id),
    )
    items = []
    for row in rows:
        item = _public(row)
        item["created_by_me"] = row["creator_id"] == user_id
        item["my_status"] = row["my_status"]
        items.append(item)
    return {"items": items}


async def leaderboard(
    session: AsyncSession, user_id: uuid.UUID, challenge_id: uuid.UUID
) -> dict[str, Any]:
    """The standings as of the last score refresh (settled: final)."""
    ch = await repository.challenge(session, challenge_id)
    if ch is None or not await _may_see(session, ch, user_id):
        raise not_found()
    table = await _standings(session, ch)
    entries = [
        {
            "rank": s.rank,
            "user_id": s.user_id,
            "display_name": social.display_name(
                table.names.get(s.user_id), table.deleted.get(s.user_id, False)
            ),
            "total_steps": s.total_steps,
            "good_days": s.good_days,
            "reached_on": s.reached_on,
            "team": s.team,
            "winner": s.winner,
        }
        for s in table.standings.scores
    ]
    teams = (
        [
            {"team": t, "average_steps": float(avg)}
            for t, avg in sorted(table.standings.team_averages.items())
        ]
        if table.standings.team_averages is not None
        else None
    )
    return {
        "challenge_id": challenge_id,
        "status": ch["status"],
        "computed_at": ch["scores_at"],
        "final": ch["status"] in ("settling", "settled"),
        "total_steps": sum(s.total_steps for s in table.standings.scores),
        "goal_reached": table.standings.goal_reached,
        "teams": teams,
        "entries": entries,
    }


@dataclass
class _Table:
    standings: rules.Standings
    names: dict[uuid.UUID, str | None]
    deleted: dict[uuid.UUID, bool]


async def _standings(session: AsyncSession, ch: dict[str, Any]) -> _Table:
    params = ch["params"] or {}
    rows = await repository.score_rows(
        session,
        ch["id"],
        int(params.get("target_steps", 0)),
        int(params.get("target_total", 2**62)),
    )
    scores = [
        rules.Score(
            user_id=r["user_id"],
            joined_at=r["joined_at"],
            total_steps=int(r["total_steps"]),
            good_days=int(r["good_days"]),
            reached_on=r["reached_on"],
            team=r["team"],
        )
        for r in rows
    ]
    return _Table(
        rules.standings(ch["template"], params, scores),
        {r["user_id"]: r["full_name"] for r in rows},
        {r["user_id"]: bool(r["deleted"]) for r in rows},
    )


# ---- joining and leaving ---------------------------------------------------------------------


async def _may_join(session: AsyncSession, ch: dict[str, Any], caller: Caller) -> None:
    if ch["by_staff"] and ch["creator_id"] == caller.id:
        raise Forbidden("Staff do not take part in their own challenges.", code="own_challenge")
    if ch["house_prize_coins"] and caller.is_staff:
        raise Forbidden(
            "Staff do not take part in challenges with a house prize.", code="staff_excluded"
        )
    audience = ch["audience"]
    if audience == "everyone":
        return
    if audience == "friends":
        if ch["creator_id"] == caller.id or await repository.is_invited(
            session, ch["id"], caller.id
        ):
            return
        raise not_found()
    if await _may_join_group(session, ch["group_id"], caller.id):
        return
    me = await repository.participant(session, ch["id"], caller.id)
    if me is None or me["status"] != "joined":  # in already (the group gone, or left): same
        raise not_found()


async def _enter(session: AsyncSession, ch: dict[str, Any], caller: Caller, at: datetime) -> None:
    """The walker joins (the challenge row locked by the caller): the fee to escrow."""
    team = None
    if ch["template"] == "team_average" and ch["status"] == "active":
        current = [p["team"] for p in await repository.participants(session, ch["id"])]
        team = rules.smallest_team(current, int(ch["params"]["teams"]))
    fee = int(ch["entry_fee_coins"])
    entry = await repository.join(session, ch["id"], caller.id, fee, team)
    if fee:
        await wallet.post(
            session,
            caller.id,
            [
                wallet.Entry(
                    -fee,
                    ENTRY,
                    entry_ref(ch["id"], caller.id, entry),
                    f"Entry fee: {ch['name']}"[:200],
                )
            ],
        )


async def join(
    session: AsyncSession, caller: Caller, challenge_id: uuid.UUID, *, now: datetime | None = None
) -> dict[str, Any]:
    at = _now(now)
    ch = await repository.challenge(session, challenge_id, for_update=True)
    if ch is None or not await _may_see(session, ch, caller.id):
        raise not_found()
    await _may_join(session, ch, caller)
    me = await repository.participant(session, challenge_id, caller.id, for_update=True)
    if me is not None and me["status"] == "joined":
        return await view(session, caller.id, challenge_id, now=at)  # joined already: same
    if not _joinable(ch, at):
        raise Conflict("This challenge takes no more participants.", code="joining_closed")
    await _enter(session, ch, caller, at)
    return await view(session, caller.id, challenge_id, now=at)


async def leave(
    session: AsyncSession, caller: Caller, challenge_id: uuid.UUID, *, now: datetime | None = None
) -> dict[str, Any]:
    """Before the start: out, with the fee refunded. After: refused (the fee is in play)."""
    at = _now(now)
    ch = await repository.challenge(session, challenge_id, for_update=True)
    if ch is None or not await _may_see(session, ch, caller.id):
        raise not_found()
    me = await repository.participant(session, challenge_id, caller.id, for_update=True)
    if me is None or me["status"] != "joined":
        raise Conflict("You are not in this challenge.", code="not_participating")
    if ch["status"] != "scheduled" or at >= starts_at(ch):
        raise Conflict(
            "The challenge has started; its fee stays in the pool.", code="challenge_started"
        )
    await _leave_with_refund(session, ch, me)
    return await view(session, caller.id, challenge_id, now=at)


async def _leave_with_refund(session: AsyncSession, ch: dict[str, Any], me: dict[str, Any]) -> int:
    fee = int(me["fee_held"])
    await repository.leave(session, ch["id"], me["user_id"], keep_fee=False)
    if fee:
        await repository.add_escrow(session, ch["id"], -fee)
        await wallet.post(
            session,
            me["user_id"],
            [
                wallet.Entry(
                    fee,
                    REFUND,
                    refund_ref(ch["id"], me["user_id"], int(me["entries"])),
                    f"Entry fee back: {ch['name']}"[:200],
                )
            ],
        )
    return fee


# ---- cancelling ------------------------------------------------------------------------------


async def _cancel(session: AsyncSession, ch: dict[str, Any], reason: str, at: datetime) -> None:
    """Every fee held becomes a refund payout (paid by the tick, chunk by chunk)."""
    rows = [
        {
            "user_id": p["user_id"],
            "rank": None,
            "steps": None,
            "winner": False,
            "kind": "refund",
            "coins": int(p["fee_held"]),
            "house": 0,
        }
        for p in await repository.participants(session, ch["id"])
        if int(p["fee_held"]) > 0
    ]
    _check_pool(rows, int(ch["escrow_coins"]), ch["id"])
    await repository.fix_payouts(session, ch["id"], rows)
    await repository.set_status(
        session,
        ch["id"],
        "settling",
        outcome="cancelled",
        cancel_reason=reason,
        pool_coins=int(ch["escrow_coins"]),
    )


async def cancel(
    session: AsyncSession,
    caller: Caller,
    challenge_id: uuid.UUID,
    *,
    reason: str | None = None,
    as_admin: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The creator cancels before the start; an admin at any time before settlement
    (audited). The fees go back to every participant."""
    at = _now(now)
    ch = await repository.challenge(session, challenge_id, for_update=True)
    if ch is None or not (as_admin or ch["creator_id"] == caller.id):
        raise not_found()
    if as_admin:
        if ch["status"] not in ("draft", "scheduled", "active", "grace"):
            raise Conflict("This challenge is already being settled.", code="not_cancellable")
    elif ch["status"] not in ("draft", "scheduled") or at >= starts_at(ch):
        raise Conflict("A started challenge is cancelled by an admin only.", code="not_cancellable")
    why = (reason or ("cancelled by an admin" if as_admin else "cancelled by its creator"))[:500]
    await _cancel(session, ch, why, at)
    await _pay_chunk(session, ch["id"], 1_000_000)  # the refunds at once, in this transaction
    await _finish_if_paid(session, challenge_id, at)
    if as_admin:
        await audit.record(
            session,
            admin_id=caller.id,
            action="challenge.cancel",
            entity_type="challenge",
            entity_id=str(challenge_id),
            before={"status": ch["status"], "escrow_coins": ch["escrow_coins"]},
            after={"status": "cancelled", "reason": why},
        )
    return (
        await view(session, caller.id, challenge_id, now=at)
        if not as_admin
        else (await admin_detail(session, challenge_id))
    )


# ---- the worker's tick -----------------------------------------------------------------------


@dataclass
class TickResult:
    looked_at: int = 0
    started: int = 0
    settled: int = 0
    cancelled: int = 0
    walkers_paid: int = 0


async def _advance(
    session: AsyncSession, ch: dict[str, Any], at: datetime, done: TickResult
) -> str:
    """One step of a locked challenge's lifecycle; the status it has now."""
    status: str = ch["status"]
    if status == "scheduled" and at >= starts_at(ch):
        if int(ch["participants"]) < int(ch["min_participants"]):
            await _cancel(session, ch, "too_few_participants", at)
            return "settling"
        if ch["template"] == "team_average":
            joined = [
                p["user_id"]
                for p in await repository.participants(session, ch["id"])
                if p["status"] == "joined"
            ]
            await repository.set_teams(
                session, ch["id"], rules.assign_teams(joined, int(ch["params"]["teams"]))
            )
        await repository.set_status(session, ch["id"], "active", started_at=at)
        done.started += 1
        status = "active"
        await _tell(
            session,
            ch,
            "started",
            _joined(await repository.participants(session, ch["id"])),
            "Your challenge has started",
            f"{ch['name']} is on: every step counts until {ch['ends_on']:%d %b}.",
        )
    if status == "active" and ends_at(ch) - ENDING_NOTICE <= at < min(
        ends_at(ch), ends_at(ch) - ENDING_NOTICE + ENDING_WINDOW
    ):
        await _tell(
            session,
            ch,
            "ending",
            _joined(await repository.participants(session, ch["id"])),
            "Your challenge ends soon",
            f"{ch['name']} ends in a few hours: time for a last walk.",
        )
    if status == "active" and at >= ends_at(ch):
        await repository.set_status(session, ch["id"], "grace", ended_at=at)
        status = "grace"
    if status in ("active", "grace"):
        await repository.recompute_scores(session, ch)
    if status == "grace" and at >= grace_ends_at(ch):
        await _fix_results(session, ch)
        status = "settling"
    return status


def _check_pool(rows: list[dict[str, Any]], pool: int, challenge_id: uuid.UUID) -> None:
    """No coin made or lost: the payouts from the pool add up to the pool."""
    paid = sum(int(r["coins"]) for r in rows)
    if paid != pool:
        raise RuntimeError(f"challenge {challenge_id}: payouts {paid} != escrow {pool}")


async def _fix_results(session: AsyncSession, ch: dict[str, Any]) -> None:
    """Final standings and the payouts: the pool (the fees in escrow, with those of walkers who
    left after the start) split among the winners, the house prize likewise; no winner: every
    fee held back to its walker."""
    table = await _standings(session, ch)
    winners = [s.user_id for s in table.standings.winners]
    pool = int(ch["escrow_coins"])
    prizes = rules.split(pool, winners)
    house = rules.split(int(ch["house_prize_coins"]), winners)
    rows: list[dict[str, Any]] = []
    for s in table.standings.scores:
        coins = prizes.get(s.user_id, 0)
        extra = house.get(s.user_id, 0)
        rows.append(
            {
                "user_id": s.user_id,
                "rank": s.rank,
                "steps": s.total_steps,
                "winner": s.winner,
                "kind": "prize" if coins or extra else None,
                "coins": coins,
                "house": extra,
            }
        )
    if not winners:
        fees = {
            p["user_id"]: int(p["fee_held"])
            for p in await repository.participants(session, ch["id"])
            if int(p["fee_held"]) > 0
        }
        for r in rows:
            r["kind"], r["coins"] = (
                ("refund", fees.pop(r["user_id"])) if r["user_id"] in fees else (None, 0)
            )
        rows += [
            {
                "user_id": u,
                "rank": None,
                "steps": None,
                "winner": False,
                "kind": "refund",
                "coins": fee,
                "house": 0,
            }
            for u, fee in fees.items()
        ]
    _check_pool(rows, pool, ch["id"])
    await repository.fix_payouts(session, ch["id"], rows)
    await repository.set_status(
        session,
        ch["id"],
        "settling",
        outcome="winners" if winners else "no_winner",
        pool_coins=pool,
    )


async def _pay_chunk(session: AsyncSession, challenge_id: uuid.UUID, limit: int) -> int:
    """Pay the next payouts (locked; user-id order); the walkers paid."""
    ch = await repository.challenge(session, challenge_id)
    assert ch is not None
    rows = await repository.unpaid_chunk(session, challenge_id, limit)
    if not rows:
        return 0
    pool_entries: dict[uuid.UUID, list[wallet.Entry]] = {}
    house_entries: dict[uuid.UUID, list[wallet.Entry]] = {}
    moved = 0
    for r in rows:
        user, coins = r["user_id"], int(r["payout_coins"])
        if coins:
            if r["payout_kind"] == "refund":
                entry = wallet.Entry(
                    coins,
                    REFUND,
                    refund_ref(challenge_id, user, "final"),
                    f"Entry fee back: {ch['name']}"[:200],
                )
            else:
                entry = wallet.Entry(
                    coins, PRIZE, prize_ref(challenge_id, user), f"Prize: {ch['name']}"[:200]
                )
            pool_entries[user] = [entry]
            moved += coins
        if int(r["house_coins"]):
            house_entries[user] = [
                wallet.Entry(
                    int(r["house_coins"]),
                    wallet.PRIZE_REWARD,
                    house_ref(challenge_id, user),
                    f"House prize: {ch['name']}"[:200],
                )
            ]
    await wallet.post_many(session, pool_entries)
    if house_entries:
        await budgets.issue_many(session, "prizes", house_entries)
    await repository.mark_paid(session, challenge_id, [r["user_id"] for r in rows], moved)
    return len(rows)


async def _finish_if_paid(session: AsyncSession, challenge_id: uuid.UUID, at: datetime) -> bool:
    ch = await repository.challenge(session, challenge_id)
    assert ch is not None
    if ch["status"] != "settling" or await repository.unpaid_chunk(session, challenge_id, 1):
        return False
    if ch["escrow_coins"] != 0:  # a bug, never a silent loss: stay settling, loudly
        logger.error("challenge %s: escrow %s after all payouts", challenge_id, ch["escrow_coins"])
        return False
    final = "cancelled" if ch["outcome"] == "cancelled" else "settled"
    await repository.clear_fees(session, challenge_id)  # the fees of walkers who left went too
    await repository.set_status(session, challenge_id, final, finished_at=at)
    await _tell_result(session, ch, final)
    return True


async def _tell_result(session: AsyncSession, ch: dict[str, Any], final: str) -> None:
    """Each walker still in it hears the result: their rank and coins, or the cancellation."""
    people = [
        p
        for p in await repository.participants(session, ch["id"])
        if p["status"] == "joined" and not p["deleted"]
    ]
    if final == "cancelled":
        await _tell(
            session,
            ch,
            "cancelled",
            [p["user_id"] for p in people],
            "Challenge cancelled",
            f"{ch['name']} was cancelled; any entry fee is back in your wallet.",
        )
        return
    extra = {
        p["user_id"]: {
            "rank": p["final_rank"],
            "winner": bool(p["winner"]),
            "coins": int(p["payout_coins"] or 0) + int(p["house_coins"] or 0),
        }
        for p in people
    }
    await _tell(
        session,
        ch,
        "result",
        [p["user_id"] for p in people],
        "Challenge results are in",
        f"{ch['name']} is over: see where you finished.",
        extra,
    )


async def _tick_one(
    database: Database, challenge_id: uuid.UUID, at: datetime, chunk: int, done: TickResult
) -> None:
    async with session_scope(database) as session:
        ch = await repository.lock_due(session, challenge_id)
        if ch is None:
            return  # another tick holds it and does the work
        status = await _advance(session, ch, at, done)
        done.looked_at += 1
    while status == "settling":
        async with session_scope(database) as session:
            if await repository.lock_due(session, challenge_id) is None:
                return
            paid = await _pay_chunk(session, challenge_id, chunk)
            done.walkers_paid += paid
            if paid == 0:
                if await _finish_if_paid(session, challenge_id, at):
                    row = await repository.challenge(session, challenge_id) or {}
                    if row.get("status") == "cancelled":
                        done.cancelled += 1
                    else:
                        done.settled += 1
                return


async def tick(database: Database, *, now: datetime | None = None) -> dict[str, int]:
    """The worker's job: every open challenge moved on, each in its own transactions (one per
    step and per payout chunk); killed midway, the next run continues where the last commit
    left it, and the ledger references make a replayed payout move nothing."""
    at = _now(now)
    done = TickResult()
    async with session_scope(database) as session:
        chunk = await _setting(session, PAYOUT_CHUNK)
        ids = [
            row["id"]
            for row in await repository.open_challenges(session, at.date() + timedelta(days=1))
            if row["status"] != "scheduled" or starts_at(row) <= at
        ]
    failed: list[str] = []
    for challenge_id in ids:
        try:
            await _tick_one(database, challenge_id, at, chunk, done)
        except Exception:  # one broken challenge must not stop the others
            logger.exception("challenge %s: the tick failed", challenge_id)
            failed.append(str(challenge_id))
    if failed:
        raise RuntimeError(f"the tick failed for challenges {failed} (the others moved on)")
    result = asdict(done)
    if done.started or done.settled or done.cancelled or done.walkers_paid:
        logger.info("challenges tick", extra={"challenges": result})
    return result


# ---- admin -----------------------------------------------------------------------------------


async def admin_list(session: AsyncSession, *, status: str | None, limit: int) -> dict[str, Any]:
    rows = await repository.admin_list(session, status, limit)
    items = []
    for r in rows:
        item = _public(r)
        item["creator_email"] = r["creator_email"]
        item["creator_id"] = r["creator_id"]
        items.append(item)
    return {"items": items, "counts": await repository.status_counts(session)}


async def admin_detail(session: AsyncSession, challenge_id: uuid.UUID) -> dict[str, Any]:
    ch = await repository.challenge(session, challenge_id)
    if ch is None:
        raise not_found()
    out = _public(ch)
    out["creator_id"] = ch["creator_id"]
    out["invitees"] = await repository.invitees(session, challenge_id)
    out["participant_list"] = [
        {
            "user_id": p["user_id"],
            "email": p["email"],
            "full_name": p["full_name"],
            "status": p["status"],
            "team": p["team"],
            "fee_held": p["fee_held"],
            "joined_at": p["joined_at"],
            "final_rank": p["final_rank"],
            "final_steps": p["final_steps"],
            "winner": p["winner"],
            "payout_kind": p["payout_kind"],
            "payout_coins": p["payout_coins"],
            "house_coins": p["house_coins"],
            "paid_at": p["paid_at"],
        }
        for p in await repository.participants(session, challenge_id)
    ]
    return out


# ---- the walker's account --------------------------------------------------------------------


async def forget(session: AsyncSession, user_id: uuid.UUID, *, now: datetime | None = None) -> int:
    """Account deletion: the walker leaves every challenge not yet started (fee refunded to the
    account's wallet, kept in the books) and every running one (the fee stays in the pool);
    their invitations go. Settled results stay (the ledger points at the tombstone)."""
    at = _now(now)
    left = 0
    for m in await repository.memberships(session, user_id):
        if m["my_status"] != "joined" or m["status"] not in (
            "draft",
            "scheduled",
            "active",
            "grace",
        ):
            continue
        ch = await repository.challenge(session, m["id"], for_update=True)
        me = await repository.participant(session, m["id"], user_id, for_update=True)
        if ch is None or me is None or me["status"] != "joined":
            continue
        if ch["status"] in ("draft", "scheduled") and at < starts_at(ch):
            await _leave_with_refund(session, ch, me)
        else:
            await repository.leave(session, ch["id"], user_id, keep_fee=True)
        left += 1
    await repository.forget_invitations(session, user_id)
    return left


async def export_of(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    return [
        {
            "challenge_id": m["id"],
            "name": m["name"],
            "template": m["template"],
            "status": m["status"],
            "starts_on": m["starts_on"],
            "ends_on": m["ends_on"],
            "entry_fee_coins": m["entry_fee_coins"],
            "my_status": m["my_status"],
            "joined_at": m["joined_at"],
            "left_at": m["left_at"],
            "team": m["team"],
            "final_rank": m["final_rank"],
            "final_steps": m["final_steps"],
            "winner": m["winner"],
            "payout_coins": m["payout_coins"] + m["house_coins"],
        }
        for m in await repository.memberships(session, user_id)
    ]

"""Friends by consent (issue 17, item 1; docs/friends.md).

Two walkers become friends only when both want it: one shares an invitation code (it expires,
can be revoked, is stored only as its SHA-256, and looking codes up is rate limited) or sends a
request to an exact email, and the other accepts. A block ends the friendship, cancels open
requests both ways and hides each from the other: to a blocked walker the blocker's codes
answer the same 404 as an unknown code, and their requests the same 202 as any other, with
nothing done. Reports of a walker go to the staff's moderation queue (audited).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.errors import Conflict, Forbidden, InvalidInput, NotFound
from stepcoin.notify import service as notify
from stepcoin.pagination import bigint_id, decode_cursor, encode_cursor
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.social import repository

INVITATION_DAYS = "friends.invitation_days"
MAX_FRIENDS = "friends.max_friends"
MAX_OPEN_INVITATIONS = "friends.max_open_invitations"
# no 0/O, 1/I/L: a code read aloud or typed from a screenshot cannot be mistaken
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12  # 31^12 ≈ 8e17 codes
URL_PREFIX = "stepcoin://friends/"
REQUEST_ACCEPTED = "If a walker has this email, they will see your request."


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def normalise_code(raw: str) -> str | None:
    """A typed code as made: upper case, without spaces or dashes; None if it cannot be one."""
    code = "".join(ch for ch in raw.strip().upper() if ch not in " -")
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        return None
    return code


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def display_name(full_name: str | None, deleted: bool = False) -> str:
    """A walker as another walker sees them: a first name, never more."""
    if deleted:
        return "A deleted account"
    first = (full_name or "").strip().split(" ")[0]
    return first[:40] if first else "A walker"


def no_invitation() -> NotFound:
    """The one answer for a code that is unknown, expired, revoked, used, or hidden by a block."""
    return NotFound("There is no open invitation with this code.", code="invitation_not_found")


def _friend_not_found() -> NotFound:
    return NotFound("This walker is not your friend.", code="friend_not_found")


def _friend_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": row["user_id"],
        "display_name": display_name(row["full_name"], bool(row["deleted"])),
        "alias": row["alias"],
        "since": row["since"],
    }


async def _limit(session: AsyncSession, key: str) -> int:
    return int(await runtime_settings.get(session, key))


async def _make_friends(
    session: AsyncSession, a: uuid.UUID, b: uuid.UUID, at: datetime
) -> dict[str, Any]:
    """Both walkers locked (in id order), the cap checked on both sides, then both directions.
    Friends already: the same friendship (idempotent)."""
    active = await repository.lock_walkers(session, [a, b])
    if b not in active:
        raise no_invitation()
    if not await repository.are_friends(session, a, b):
        cap = await _limit(session, MAX_FRIENDS)
        for user in (a, b):
            if await repository.friend_count(session, user) >= cap:
                raise Conflict(
                    "One of you has as many friends as a walker can have.",
                    code="friend_limit_reached",
                    extra={"max_friends": cap},
                )
        await repository.befriend(session, a, b, at)
    row = await repository.friend(session, a, b)
    assert row is not None
    return _friend_view(row)


# ---- invitations -----------------------------------------------------------------------------


async def create_invitation(
    session: AsyncSession, inviter_id: uuid.UUID, *, now: datetime | None = None
) -> dict[str, Any]:
    """A new code, shown once (only its hash is kept); at most the cap of open ones."""
    at = _now(now)
    await repository.lock_walkers(session, [inviter_id])
    cap = await _limit(session, MAX_OPEN_INVITATIONS)
    if await repository.open_invitations(session, inviter_id, at) >= cap:
        raise Conflict(
            f"You have {cap} open invitations; revoke one or wait until one expires.",
            code="too_many_open_invitations",
            extra={"max_open_invitations": cap},
        )
    expires_at = at + timedelta(days=await _limit(session, INVITATION_DAYS))
    for _ in range(10):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if await repository.insert_invitation(session, inviter_id, code_hash(code), expires_at):
            return {"code": code, "url": URL_PREFIX + code, "expires_at": expires_at}
    raise RuntimeError("no free invitation code after 10 draws")  # 31^12: never in practice


async def _open_invitation(
    session: AsyncSession,
    viewer_id: uuid.UUID,
    raw_code: str,
    at: datetime,
    *,
    for_update: bool = False,
) -> dict[str, Any]:
    code = normalise_code(raw_code)
    if code is None:
        raise no_invitation()
    row = await repository.invitation(session, code_hash(code), for_update=for_update)
    if (
        row is None
        or not row["inviter_active"]
        or row["revoked_at"] is not None
        or row["expires_at"] <= at
        or (row["accepted_at"] is not None and row["accepted_by"] != viewer_id)
        or (
            row["inviter_id"] != viewer_id
            and await repository.blocked_between(session, viewer_id, row["inviter_id"])
        )
    ):
        raise no_invitation()
    return row


async def view_invitation(
    session: AsyncSession, viewer_id: uuid.UUID, raw_code: str, *, now: datetime | None = None
) -> dict[str, Any]:
    """Who invites, as a walker sees them (a first name), and until when."""
    row = await _open_invitation(session, viewer_id, raw_code, _now(now))
    return {
        "inviter": {
            "user_id": row["inviter_id"],
            "display_name": display_name(row["inviter_name"]),
        },
        "expires_at": row["expires_at"],
        "own": row["inviter_id"] == viewer_id,
        "already_friends": await repository.are_friends(session, viewer_id, row["inviter_id"]),
    }


async def accept_invitation(
    session: AsyncSession, user_id: uuid.UUID, raw_code: str, *, now: datetime | None = None
) -> dict[str, Any]:
    """Both become friends and the code is used up; one's own code is 422; friends already
    (or this code accepted by this walker before): the same friendship, 200."""
    at = _now(now)
    row = await _open_invitation(session, user_id, raw_code, at, for_update=True)
    if row["inviter_id"] == user_id:
        raise InvalidInput("This is your own invitation.", code="own_invitation")
    if row["accepted_at"] is not None:  # accepted by this walker before
        if not await repository.are_friends(session, user_id, row["inviter_id"]):
            raise no_invitation()
        found = await repository.friend(session, user_id, row["inviter_id"])
        assert found is not None
        return _friend_view(found)
    already = await repository.are_friends(session, user_id, row["inviter_id"])
    friend = await _make_friends(session, user_id, row["inviter_id"], at)
    if not already:  # friends already: the code stays open for someone else
        await repository.mark_accepted(session, row["id"], user_id, at)
        await _tell_accepted(session, row["inviter_id"], user_id)
    return friend


async def _tell_accepted(session: AsyncSession, asker_id: uuid.UUID, friend_id: uuid.UUID) -> None:
    """The walker who asked (a request or an invitation) hears that they are friends now."""
    await notify.notify(
        session,
        asker_id,
        "friend",
        "You have a new friend",
        "Your friend request was accepted.",
        {"screen": "friends", "friend_id": str(friend_id)},
        dedupe_key=f"friend_accepted:{friend_id}",
    )


async def revoke_invitation(
    session: AsyncSession, inviter_id: uuid.UUID, raw_code: str, *, now: datetime | None = None
) -> None:
    code = normalise_code(raw_code)
    if code is None or not await repository.revoke_invitation(
        session, inviter_id, code_hash(code), _now(now)
    ):
        raise no_invitation()


# ---- friends ---------------------------------------------------------------------------------

# The walkers of a walker's friend board: the walker (the named parameter :user_id) and their
# friends, one range of friendships' primary key.
FRIEND_SCOPE_SQL = (
    "SELECT CAST(:user_id AS uuid) AS user_id "
    "UNION ALL SELECT friend_id FROM friendships WHERE user_id = :user_id"
)


async def are_friends(session: AsyncSession, a: uuid.UUID, b: uuid.UUID) -> bool:
    """Whether the two walkers are friends (for other domains: challenges, boards)."""
    return await repository.are_friends(session, a, b)


async def friends_among(
    session: AsyncSession, user_id: uuid.UUID, others: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of `others` are the walker's friends (for other domains: challenges' invitees)."""
    if not others:
        return set()
    return await repository.friends_among(session, user_id, others)


async def friend_ids(session: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    return [r["user_id"] for r in await repository.friends_of(session, user_id)]


async def list_friends(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    return {"items": [_friend_view(r) for r in await repository.friends_of(session, user_id)]}


async def remove_friend(session: AsyncSession, user_id: uuid.UUID, friend_id: uuid.UUID) -> None:
    """Both directions go (the other walker's alias too)."""
    if not await repository.unfriend(session, user_id, friend_id):
        raise _friend_not_found()


async def set_alias(
    session: AsyncSession, user_id: uuid.UUID, friend_id: uuid.UUID, alias: str | None
) -> dict[str, Any]:
    """The owner's private name for a friend (null or blank: none); the friend never sees it."""
    alias = alias.strip() or None if alias is not None else None
    if not await repository.set_alias(session, user_id, friend_id, alias):
        raise _friend_not_found()
    row = await repository.friend(session, user_id, friend_id)
    assert row is not None
    return _friend_view(row)


# ---- requests by email -----------------------------------------------------------------------


async def request_friend(
    session: AsyncSession, from_id: uuid.UUID, email: str, *, now: datetime | None = None
) -> dict[str, str]:
    """The same answer whatever the email: no account, one's own, a friend already, a block
    either way, a declined or an open request (nothing new is done), or a new request."""
    at = _now(now)
    email = email.strip().lower()
    to_id = await repository.active_by_email(session, email)
    if to_id == from_id or (
        to_id is not None and await repository.are_friends(session, from_id, to_id)
    ):
        return {"detail": REQUEST_ACCEPTED}
    blocked = to_id is not None and await repository.blocked_between(session, from_id, to_id)
    existing = await repository.latest_request(session, from_id, email)
    if existing is None:
        status = "cancelled" if blocked else "pending"
        await repository.insert_request(session, from_id, to_id, email, status, at)
    elif existing["status"] == "cancelled" and to_id is not None and not blocked:
        await repository.reopen_request(session, existing["id"], at)
    else:
        return {"detail": REQUEST_ACCEPTED}
    if to_id is not None and not blocked:  # one notification per sender, however often asked
        await notify.notify(
            session,
            to_id,
            "friend",
            "New friend request",
            "Someone wants to be your friend on StepCoin.",
            {"screen": "friend_requests", "from_id": str(from_id)},
            dedupe_key=f"friend_request:{from_id}",
        )
    # pending: sent already; declined: the other walker said no, and is not asked again
    return {"detail": REQUEST_ACCEPTED}


async def list_requests(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    return {
        "incoming": [
            {
                "id": r["id"],
                "sender": {"user_id": r["from_id"], "display_name": display_name(r["full_name"])},
                "created_at": r["created_at"],
            }
            for r in await repository.incoming(session, user_id)
        ],
        "outgoing": await repository.outgoing(session, user_id),
    }


def _request_not_found() -> NotFound:
    return NotFound(
        "There is no open friend request with this id.", code="friend_request_not_found"
    )


async def _request_to(session: AsyncSession, user_id: uuid.UUID, request_id: int) -> dict[str, Any]:
    row = await repository.request_to(session, request_id, user_id)
    if row is None or await repository.blocked_between(session, user_id, row["from_id"]):
        raise _request_not_found()
    return row


async def accept_request(
    session: AsyncSession, user_id: uuid.UUID, request_id: int, *, now: datetime | None = None
) -> dict[str, Any]:
    at = _now(now)
    row = await _request_to(session, user_id, request_id)
    try:
        friend = await _make_friends(session, user_id, row["from_id"], at)
    except NotFound:  # the sender's account is gone
        raise _request_not_found() from None
    await _tell_accepted(session, row["from_id"], user_id)
    return friend


async def decline_request(
    session: AsyncSession, user_id: uuid.UUID, request_id: int, *, now: datetime | None = None
) -> None:
    """The sender is not told (their request stays waiting in their list) and cannot ask again."""
    row = await _request_to(session, user_id, request_id)
    await repository.decide_request(session, row["id"], "declined", _now(now))


# ---- blocks ----------------------------------------------------------------------------------


async def _check_other(
    session: AsyncSession, user_id: uuid.UUID, other_id: uuid.UUID, own_code: str
) -> None:
    if other_id == user_id:
        raise InvalidInput("This is your own account.", code=own_code)
    if not await repository.walker_exists(session, other_id):
        raise NotFound("There is no such walker.", code="user_not_found")


async def block(
    session: AsyncSession,
    blocker_id: uuid.UUID,
    blocked_id: uuid.UUID,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Idempotent: the friendship ends, open requests both ways are cancelled."""
    await _check_other(session, blocker_id, blocked_id, "self_block")
    await repository.lock_walkers(session, [blocker_id, blocked_id])
    at = _now(now)
    await repository.block(session, blocker_id, blocked_id, at)
    return {"user_id": blocked_id}


async def unblock(session: AsyncSession, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> None:
    """Idempotent; a friendship the block ended does not come back."""
    await repository.unblock(session, blocker_id, blocked_id)


async def list_blocks(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    return {"items": await repository.blocks_of(session, user_id)}


# ---- reports and the moderation queue --------------------------------------------------------


async def report_walker(
    session: AsyncSession, reporter_id: uuid.UUID, reported_id: uuid.UUID, reason: str | None
) -> dict[str, Any]:
    await _check_other(session, reporter_id, reported_id, "self_report")
    reason = reason.strip() or None if reason is not None else None
    return await repository.insert_report(session, reporter_id, reported_id, reason)


def _walker(user_id: uuid.UUID | None, email: str | None, name: str | None) -> Any:
    if user_id is None:
        return None
    return {"id": user_id, "email": email, "full_name": name}


def admin_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": row["status"],
        "reason": row["reason"],
        "reporter": _walker(row["reporter_id"], row["reporter_email"], row["reporter_name"]),
        "reported": _walker(row["reported_id"], row["reported_email"], row["reported_name"]),
        "created_at": row["created_at"],
        "resolved_by": row["resolved_by"],
        "resolved_at": row["resolved_at"],
        "note": row["note"],
    }


async def admin_reports(
    session: AsyncSession, *, status: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Reports of a status (the open queue by default), oldest first."""
    after = decode_cursor(cursor, bigint_id) if cursor else None
    rows = await repository.reports_page(session, status=status, limit=limit + 1, after=after)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last["created_at"], last["id"])
    return {"items": [admin_view(r) for r in rows[:limit]], "next_cursor": next_cursor}


@dataclass(frozen=True, slots=True)
class Resolution:
    staff_id: uuid.UUID
    note: str | None


async def resolve_report(
    session: AsyncSession, report_id: int, by: Resolution, *, now: datetime | None = None
) -> dict[str, Any]:
    """Close an open report with an optional note; never one about (or by) oneself; audited."""
    at = _now(now)
    row = await repository.report(session, report_id, for_update=True)
    if row is None:
        raise NotFound("There is no report with this id.", code="report_not_found")
    if by.staff_id in (row["reported_id"], row["reporter_id"]):
        raise Forbidden("Staff do not resolve reports about themselves.", code="own_report")
    if row["status"] != "open":
        raise Conflict(
            "This report is resolved already.",
            code="report_already_resolved",
            extra={"current_status": row["status"]},
        )
    note = by.note.strip() or None if by.note is not None else None
    await repository.resolve_report(session, report_id, by.staff_id, note, at)
    await audit.record(
        session,
        admin_id=by.staff_id,
        action="report.resolved",
        entity_type="report",
        entity_id=str(report_id),
        before={"status": "open"},
        after={"status": "resolved", "note": note},
        extra={"reported_id": str(row["reported_id"])},
    )
    after = await repository.report(session, report_id)
    assert after is not None
    return admin_view(after)


# ---- the account's lifecycle -----------------------------------------------------------------


async def forget(session: AsyncSession, user_id: uuid.UUID, email: str | None) -> dict[str, int]:
    """Account deletion: friendships, invitations, requests and blocks go; reports stay."""
    return await repository.forget(session, user_id, email)


async def export_of(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """The walker's part of the data export: friends (ids and aliases), blocks, reports made."""
    return {
        "friends": [
            {"user_id": r["user_id"], "alias": r["alias"], "since": r["since"]}
            for r in await repository.friends_of(session, user_id)
        ],
        "blocks": await repository.blocks_of(session, user_id),
        "reports": await repository.reports_by(session, user_id),
    }

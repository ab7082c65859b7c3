"""Groups (issue 17, item 2; docs/groups.md): friends, clubs, teams and companies.

A group is open (anyone joins at once) or by request (its owner or an admin approves). The
creator is the owner; the owner names admins, hands the group over, and cannot leave while
others are in it (the last member leaving deletes the group). Owners and admins approve,
kick and ban (a banned walker can neither join nor ask); an admin acts on plain members only.
A company group admits only walkers whose verified email is of the domain an admin bound it
to. Members see a group's inside (members, board); so does everyone for an open group that is
not a company's; anyone else sees a summary. Every change of a group's members locks the
group's row first (then the walker's), so the caps (`groups.max_members`,
`groups.max_memberships`, `groups.max_owned`) hold under concurrent joins.

Other domains ask `is_member`, `member_role`, `can_see_inside`, `kind_of` and `group_ids_of`
(and `stepcoin.social.service.are_friends`, `friends_among`). A group's board is the
leaderboards' own copy of its members' board rows, kept by triggers on group_members
(migration 0033).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.errors import Conflict, Forbidden, InvalidInput, NotFound
from stepcoin.pagination import decode_cursor, encode_cursor
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.social import group_repository as repo
from stepcoin.social import repository as social_repo
from stepcoin.social.service import display_name

MAX_MEMBERS = "groups.max_members"
MAX_MEMBERSHIPS = "groups.max_memberships"
MAX_OWNED = "groups.max_owned"
MANAGERS = ("owner", "admin")


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _not_found() -> NotFound:
    return NotFound("There is no group with this id.", code="group_not_found")


def _not_member() -> Forbidden:
    return Forbidden("Only the group's members may do this.", code="not_group_member")


def _role_required(role: str) -> Forbidden:
    return Forbidden(f"Only the group's {role} may do this.", code="group_role_required")


async def _limit(session: AsyncSession, key: str) -> int:
    return int(await runtime_settings.get(session, key))


async def _group(session: AsyncSession, group_id: int, *, lock: bool = False) -> dict[str, Any]:
    found = await repo.group(session, group_id, for_update=lock)
    if found is None:
        raise _not_found()
    return found


def inside_visible(group: dict[str, Any], role: str | None) -> bool:
    return role is not None or (group["is_open"] and group["kind"] != "company")


def _view(group: dict[str, Any], role: str | None, *, requested: bool = False) -> dict[str, Any]:
    """The group as a walker sees it: the inside (description, owner) only when visible."""
    inside = inside_visible(group, role)
    return {
        "id": group["id"],
        "name": group["name"],
        "kind": group["kind"],
        "open": group["is_open"],
        "member_count": int(group["member_count"]),
        "email_domain": group["email_domain"],
        "description": group["description"] if inside else None,
        "owner_id": group["owner_id"] if inside else None,
        "created_at": group["created_at"],
        "my_role": role,
        "requested": requested,
    }


# ---- for other domains (challenges, boards) --------------------------------------------------


async def member_role(session: AsyncSession, group_id: int, user_id: uuid.UUID) -> str | None:
    """The walker's role in the group (owner, admin, member), None when not a member."""
    return await repo.member_role(session, group_id, user_id)


async def is_member(session: AsyncSession, group_id: int, user_id: uuid.UUID) -> bool:
    return await repo.member_role(session, group_id, user_id) is not None


async def can_see_inside(session: AsyncSession, group_id: int, user_id: uuid.UUID) -> bool:
    """Whether the walker may see the group's members and board (404 group_not_found when the
    group does not exist)."""
    group = await _group(session, group_id)
    return inside_visible(group, await repo.member_role(session, group_id, user_id))


async def kind_of(session: AsyncSession, group_id: int) -> str | None:
    """The group's kind (friends, club, team, company), None when there is no such group."""
    return await repo.kind_of(session, group_id)


async def group_ids_of(session: AsyncSession, user_id: uuid.UUID) -> list[int]:
    """The ids of the groups the walker belongs to (at most groups.max_memberships)."""
    return await repo.group_ids_of(session, user_id)


# ---- groups ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewGroup:
    name: str
    kind: str
    is_open: bool
    description: str | None = None


def _clean(text: str | None) -> str | None:
    return text.strip() or None if text is not None else None


async def _check_caps(session: AsyncSession, user_id: uuid.UUID, *, owning: bool) -> None:
    """The walker's row locked (after the group's), then their memberships and owned groups."""
    await social_repo.lock_walkers(session, [user_id])
    groups, owned = await repo.counts_of(session, user_id)
    cap = await _limit(session, MAX_MEMBERSHIPS)
    if groups >= cap:
        raise Conflict(
            "This walker belongs to as many groups as a walker can.",
            code="group_limit_reached",
            extra={"max_memberships": cap},
        )
    if owning:
        owned_cap = await _limit(session, MAX_OWNED)
        if owned >= owned_cap:
            raise Conflict(
                "This walker owns as many groups as a walker can.",
                code="owned_group_limit_reached",
                extra={"max_owned": owned_cap},
            )


async def create_group(
    session: AsyncSession, user_id: uuid.UUID, new: NewGroup, *, now: datetime | None = None
) -> dict[str, Any]:
    """The creator becomes the owner. A company group admits nobody else until an admin binds
    it to an email domain."""
    at = _now(now)
    name = _clean(new.name)
    if name is None:
        raise InvalidInput("A group needs a name.", code="group_name_required")
    await _check_caps(session, user_id, owning=True)
    group_id = await repo.insert_group(
        session,
        name=name,
        kind=new.kind,
        is_open=new.is_open,
        description=_clean(new.description),
        created_by=user_id,
        now=at,
    )
    await repo.add_member(session, group_id, user_id, "owner", at)
    return _view(await _group(session, group_id), "owner")


async def get_group(session: AsyncSession, viewer_id: uuid.UUID, group_id: int) -> dict[str, Any]:
    group = await _group(session, group_id)
    role = await repo.member_role(session, group_id, viewer_id)
    requested = role is None and await repo.has_request(session, group_id, viewer_id)
    return _view(group, role, requested=requested)


async def list_groups(
    session: AsyncSession, viewer_id: uuid.UUID, *, query: str | None, limit: int
) -> dict[str, Any]:
    """The walker's groups (no query), or groups found by name."""
    if query is None or not query.strip():
        return {"items": [_view(g, g["my_role"]) for g in await repo.groups_of(session, viewer_id)]}
    found = await repo.search(session, query.strip(), limit)
    items = []
    for group in found:
        role = await repo.member_role(session, group["id"], viewer_id)
        items.append(_view(group, role))
    return {"items": items}


async def _manager(
    session: AsyncSession, group_id: int, actor_id: uuid.UUID, *, owner_only: bool = False
) -> tuple[dict[str, Any], str]:
    """The group locked, and the actor's role, which must be owner (or admin)."""
    group = await _group(session, group_id, lock=True)
    role = await repo.member_role(session, group_id, actor_id)
    if role is None:
        raise _not_member()
    if role != "owner" and (owner_only or role not in MANAGERS):
        raise _role_required("owner" if owner_only else "owner or admins")
    return group, role


async def update_group(
    session: AsyncSession, actor_id: uuid.UUID, group_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Name, description, open: the owner or an admin."""
    _, role = await _manager(session, group_id, actor_id)
    values: dict[str, Any] = {}
    if changes.get("name") is not None:  # (null: unchanged, as open)
        name = _clean(changes["name"])
        if name is None:
            raise InvalidInput("A group needs a name.", code="group_name_required")
        values["name"] = name
    if "description" in changes:
        values["description"] = _clean(changes["description"])
    if changes.get("open") is not None:  # (null: unchanged)
        values["is_open"] = bool(changes["open"])
    await repo.update_group(session, group_id, values)
    return _view(await _group(session, group_id), role)


async def delete_group(session: AsyncSession, actor_id: uuid.UUID, group_id: int) -> None:
    await _manager(session, group_id, actor_id, owner_only=True)
    await repo.delete_group(session, group_id)


# ---- joining and leaving ---------------------------------------------------------------------


async def _admit_checks(session: AsyncSession, group: dict[str, Any], user_id: uuid.UUID) -> None:
    """What a walker needs to get in: not banned, a company's domain; the caps."""
    if await repo.is_banned(session, group["id"], user_id):
        raise Forbidden("This walker is banned from this group.", code="group_banned")
    if group["kind"] == "company":
        domain = group["email_domain"]
        if domain is None:
            raise Conflict(
                "This company group is not bound to an email domain yet.",
                code="company_domain_not_set",
            )
        walker = await repo.walker(session, user_id)
        if walker is None:
            raise NotFound("There is no such walker.", code="user_not_found")
        email = str(walker["email"] or "")
        if not walker["verified"] or email.rsplit("@", 1)[-1].lower() != domain:
            raise Forbidden(
                f"This group admits verified emails of {domain} only.",
                code="company_email_required",
                extra={"email_domain": domain},
            )


async def _admit(
    session: AsyncSession, group: dict[str, Any], user_id: uuid.UUID, at: datetime
) -> None:
    cap = await _limit(session, MAX_MEMBERS)
    if int(group["member_count"]) >= cap:
        raise Conflict("This group is full.", code="group_full", extra={"max_members": cap})
    await _check_caps(session, user_id, owning=False)
    await repo.add_member(session, group["id"], user_id, "member", at)


async def join(
    session: AsyncSession, user_id: uuid.UUID, group_id: int, *, now: datetime | None = None
) -> dict[str, Any]:
    """An open group: a member at once; otherwise a request for the owner and admins.
    A member already, or asked already: the same answer."""
    at = _now(now)
    group = await _group(session, group_id, lock=True)
    role = await repo.member_role(session, group_id, user_id)
    if role is None:
        await _admit_checks(session, group, user_id)
        if group["is_open"]:
            await _admit(session, group, user_id, at)
        else:
            await repo.insert_request(session, group_id, user_id, at)
    return await get_group(session, user_id, group_id)


async def leave(session: AsyncSession, user_id: uuid.UUID, group_id: int) -> None:
    """A member leaves (a waiting request is withdrawn the same way); the owner hands the group
    over first, unless they are its last member: then the group is deleted."""
    group = await _group(session, group_id, lock=True)
    role = await repo.member_role(session, group_id, user_id)
    if role is None:
        if not await repo.delete_request(session, group_id, user_id):
            raise _not_member()
        return
    if role == "owner":
        if int(group["member_count"]) > 1:
            raise Conflict(
                "The owner hands the group over to another member before leaving.",
                code="owner_must_transfer",
            )
        await repo.delete_group(session, group_id)
        return
    await repo.remove_member(session, group_id, user_id)


# ---- the owner's and admins' work ------------------------------------------------------------


def _request_not_found() -> NotFound:
    return NotFound("This walker has not asked to join.", code="join_request_not_found")


def _member_not_found() -> NotFound:
    return NotFound("This walker is not a member of the group.", code="group_member_not_found")


async def approve(
    session: AsyncSession,
    actor_id: uuid.UUID,
    group_id: int,
    user_id: uuid.UUID,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    group, _ = await _manager(session, group_id, actor_id)
    if not await repo.has_request(session, group_id, user_id):
        if await repo.member_role(session, group_id, user_id) is not None:
            return await _member(session, group_id, user_id)  # approved already
        raise _request_not_found()
    await _admit_checks(session, group, user_id)
    await _admit(session, group, user_id, _now(now))
    return await _member(session, group_id, user_id)


async def decline(
    session: AsyncSession, actor_id: uuid.UUID, group_id: int, user_id: uuid.UUID
) -> None:
    await _manager(session, group_id, actor_id)
    if not await repo.delete_request(session, group_id, user_id):
        raise _request_not_found()


async def _target_below(
    session: AsyncSession, group_id: int, actor_role: str, actor_id: uuid.UUID, user_id: uuid.UUID
) -> str | None:
    """The target's role, which must be below the actor's (an admin acts on members only)."""
    if user_id == actor_id:
        raise InvalidInput("Use leave for yourself.", code="own_membership")
    role = await repo.member_role(session, group_id, user_id)
    if role == "owner" or (role == "admin" and actor_role != "owner"):
        raise _role_required("owner")
    return role


async def kick(
    session: AsyncSession, actor_id: uuid.UUID, group_id: int, user_id: uuid.UUID
) -> None:
    """The member is removed and may join (or ask) again."""
    _, actor_role = await _manager(session, group_id, actor_id)
    if await _target_below(session, group_id, actor_role, actor_id, user_id) is None:
        raise _member_not_found()
    await repo.remove_member(session, group_id, user_id)


async def ban(
    session: AsyncSession,
    actor_id: uuid.UUID,
    group_id: int,
    user_id: uuid.UUID,
    *,
    now: datetime | None = None,
) -> None:
    """Removed (a member) or refused (a request), and kept out until unbanned (idempotent)."""
    _, actor_role = await _manager(session, group_id, actor_id)
    await _target_below(session, group_id, actor_role, actor_id, user_id)
    if not await social_repo.walker_exists(session, user_id):
        raise NotFound("There is no such walker.", code="user_not_found")
    await repo.remove_member(session, group_id, user_id)
    await repo.insert_ban(session, group_id, user_id, actor_id, _now(now))


async def unban(
    session: AsyncSession, actor_id: uuid.UUID, group_id: int, user_id: uuid.UUID
) -> None:
    await _manager(session, group_id, actor_id)
    await repo.delete_ban(session, group_id, user_id)


async def list_bans(session: AsyncSession, actor_id: uuid.UUID, group_id: int) -> dict[str, Any]:
    await _manager(session, group_id, actor_id)
    return {"items": [_walker(r) for r in await repo.bans_of(session, group_id)]}


async def list_requests(
    session: AsyncSession, actor_id: uuid.UUID, group_id: int
) -> dict[str, Any]:
    await _manager(session, group_id, actor_id)
    return {"items": [_walker(r) for r in await repo.requests_of(session, group_id)]}


def _walker(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": row["user_id"],
        "display_name": display_name(row["full_name"]),
        "created_at": row["created_at"],
    }


async def set_role(
    session: AsyncSession, actor_id: uuid.UUID, group_id: int, user_id: uuid.UUID, role: str
) -> dict[str, Any]:
    """The owner makes a member an admin or an admin a member again."""
    assert role in ("admin", "member")
    await _manager(session, group_id, actor_id, owner_only=True)
    if await _target_below(session, group_id, "owner", actor_id, user_id) is None:
        raise _member_not_found()
    await repo.set_role(session, group_id, user_id, role)
    return await _member(session, group_id, user_id)


async def transfer(
    session: AsyncSession, actor_id: uuid.UUID, group_id: int, user_id: uuid.UUID
) -> dict[str, Any]:
    """The owner hands the group to a member, and stays as an admin."""
    await _manager(session, group_id, actor_id, owner_only=True)
    if await _target_below(session, group_id, "owner", actor_id, user_id) is None:
        # the group is there; the walker named in the body is not in it (409, not 404: the
        # path's resource exists)
        raise Conflict(
            "The group can only be handed to one of its members.",
            code="transfer_target_not_member",
        )
    await _take_over(session, group_id, actor_id, user_id)
    return await get_group(session, actor_id, group_id)


async def _take_over(session: AsyncSession, group_id: int, old: uuid.UUID, new: uuid.UUID) -> None:
    await social_repo.lock_walkers(session, [new])
    _, owned = await repo.counts_of(session, new)
    cap = await _limit(session, MAX_OWNED)
    if owned >= cap:
        raise Conflict(
            "This walker owns as many groups as a walker can.",
            code="owned_group_limit_reached",
            extra={"max_owned": cap},
        )
    await repo.set_role(session, group_id, old, "admin")  # one owner at a time (unique index)
    await repo.set_role(session, group_id, new, "owner")


async def _member(session: AsyncSession, group_id: int, user_id: uuid.UUID) -> dict[str, Any]:
    row = await repo.member(session, group_id, user_id)
    if row is None:
        raise _member_not_found()
    return _member_view(row)


def _member_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": row["user_id"],
        "display_name": display_name(row["full_name"], bool(row["deleted"])),
        "role": row["role"],
        "joined_at": row["joined_at"],
    }


async def list_members(
    session: AsyncSession, viewer_id: uuid.UUID, group_id: int, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Members in the order they joined; a block between walkers hides nobody here (the group
    is shared), and members see first names only."""
    group = await _group(session, group_id)
    if not inside_visible(group, await repo.member_role(session, group_id, viewer_id)):
        raise _not_member()
    after = decode_cursor(cursor, uuid.UUID) if cursor else None
    rows = await repo.members_page(session, group_id, limit=limit + 1, after=after)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last["joined_at"], last["user_id"])
    return {"items": [_member_view(r) for r in rows[:limit]], "next_cursor": next_cursor}


# ---- staff -----------------------------------------------------------------------------------


def _staff_view(group: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": group["id"],
        "name": group["name"],
        "kind": group["kind"],
        "open": group["is_open"],
        "member_count": int(group["member_count"]),
        "email_domain": group["email_domain"],
        "description": group["description"],
        "owner_id": group["owner_id"],
        "created_at": group["created_at"],
    }


async def admin_groups(
    session: AsyncSession, *, query: str | None, limit: int, cursor: int | None
) -> dict[str, Any]:
    rows = await repo.admin_page(session, query=query, limit=limit + 1, after=cursor)
    next_cursor = rows[limit - 1]["id"] if len(rows) > limit else None
    return {"items": [_staff_view(r) for r in rows[:limit]], "next_cursor": next_cursor}


async def admin_group(
    session: AsyncSession, group_id: int, *, members: int = 200
) -> dict[str, Any]:
    """A group with its first members, for the staff."""
    group = await _group(session, group_id)
    rows = await repo.members_page(session, group_id, limit=members, after=None)
    return {**_staff_view(group), "members": [_member_view(r) for r in rows]}


def normalise_domain(raw: str) -> str:
    domain = raw.strip().lower().lstrip("@")
    labels = domain.split(".")
    if (
        len(domain) > 255
        or len(labels) < 2
        or any(
            not label
            or len(label) > 63
            or label.startswith("-")
            or label.endswith("-")
            or any(not (ch.isascii() and (ch.isalnum() or ch == "-")) for ch in label)
            for label in labels
        )
    ):
        raise InvalidInput("This is not an email domain.", code="invalid_email_domain")
    return domain


async def bind_domain(
    session: AsyncSession, staff_id: uuid.UUID, group_id: int, raw_domain: str | None
) -> dict[str, Any]:
    """An admin binds a company group to an email domain (None unbinds); audited. Members
    already in stay; the domain is checked when a walker joins or is approved."""
    group = await _group(session, group_id, lock=True)
    if group["kind"] != "company":
        raise Conflict("Only a company group has an email domain.", code="not_a_company_group")
    domain = normalise_domain(raw_domain) if raw_domain is not None else None
    await repo.update_group(session, group_id, {"email_domain": domain})
    await audit.record(
        session,
        admin_id=staff_id,
        action="group.domain_bound" if domain else "group.domain_unbound",
        entity_type="group",
        entity_id=str(group_id),
        before={"email_domain": group["email_domain"]},
        after={"email_domain": domain},
    )
    return _staff_view(await _group(session, group_id))


# ---- the account's lifecycle -----------------------------------------------------------------


async def forget(session: AsyncSession, user_id: uuid.UUID) -> dict[str, int]:
    """Account deletion: each group the walker owns goes to its oldest admin (else its oldest
    member); one they are alone in is deleted. Then their memberships, requests and bans go."""
    handed = deleted = 0
    for group_id in await repo.owned_by(session, user_id):
        await repo.group(session, group_id, for_update=True)
        heir = await repo.successor(session, group_id, user_id)
        if heir is None:
            await repo.delete_group(session, group_id)
            deleted += 1
        else:
            await repo.set_role(session, group_id, user_id, "member")
            await repo.set_role(session, group_id, heir, "owner")
            handed += 1
    counts = await repo.forget(session, user_id)
    return {**counts, "groups_handed_over": handed, "groups_deleted": deleted}


async def export_of(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """The walker's part of the export: their groups and roles, their waiting requests."""
    return {
        "memberships": [
            {"group_id": g["id"], "name": g["name"], "role": g["my_role"]}
            for g in await repo.groups_of(session, user_id)
        ],
        "join_requests": await repo.requests_by(session, user_id),
    }

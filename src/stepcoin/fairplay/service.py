"""Fair play's answers: the walker's standing, and what staff see of a walker (score, inputs,
links, clearances)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.errors import Forbidden, NotFound
from stepcoin.fairplay import links, trust
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.users import repository as users_repository


async def standing(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """GET /v1/me/standing: plain words, never the score or the formula."""
    value, inputs = await trust.compute(session, user_id)
    hold_below = int(await runtime_settings.get(session, "fairplay.redemption_hold_below"))
    return trust.standing_for(value, inputs, redemption_hold_below=hold_below).as_json()


async def staff_view(
    session: AsyncSession, user_id: uuid.UUID, *, store: bool = True
) -> dict[str, Any]:
    """The walker's trust score with its inputs, their linked accounts, what the link rules
    see now and what reviewers cleared (the admin API and the console's user page)."""
    counts = await links.observed(session, user_id)  # read once: the score takes them too
    cleared = await links.clearances(session, user_id)
    value, inputs = await trust.compute(
        session, user_id, store=store, counts=counts, cleared=cleared
    )
    return {
        "user_id": str(user_id),
        "trust_score": value,
        "inputs": inputs.as_json(),
        "link_counts": counts,
        "clearances": cleared,
        "linked_accounts": [
            link.as_json() for link in await links.linked_accounts(session, user_id)
        ],
    }


async def clear_links(
    session: AsyncSession, user_id: uuid.UUID, *, actor_id: uuid.UUID, note: str | None
) -> dict[str, Any]:
    if actor_id == user_id:
        raise Forbidden("Nobody clears their own links.", code="own_account")
    if await users_repository.get_profile(session, user_id) is None:  # before any write
        raise NotFound("No such walker.", code="user_not_found")
    await links.clear(session, user_id, actor_id=actor_id, note=note)
    return await staff_view(session, user_id)

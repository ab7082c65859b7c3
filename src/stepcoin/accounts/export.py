"""GET /v1/me/export: everything StepCoin holds about the walker, as one JSON document.

Each part comes from its own domain's reader (the same ones the app and the console use), so
the export cannot disagree with what the walker sees elsewhere. A walker has at most a few
years of daily rows: the document is built in memory, the ledger and orders page by page.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.achievements import service as achievements
from stepcoin.auth import service as auth_service
from stepcoin.auth import sessions as auth_sessions
from stepcoin.challenges import service as challenges
from stepcoin.errors import account_gone
from stepcoin.fairplay import service as fairplay_service
from stepcoin.leaderboards import prizes
from stepcoin.notify import service as notify
from stepcoin.referrals import service as referrals
from stepcoin.shop import orders as shop_orders
from stepcoin.social import groups as social_groups
from stepcoin.social import service as social
from stepcoin.steps import reports as step_reports
from stepcoin.steps import review as step_review
from stepcoin.users import erasure
from stepcoin.users import repository as users_repository
from stepcoin.wallet import reports as wallet_reports

EXPORT_FORMAT = "stepcoin-export/1"
PAGE = 1000
ALL_SIGN_INS = 100_000
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9999, 12, 31)


async def _ledger(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after: tuple[datetime, int] | None = None
    while True:
        page = await wallet_reports.ledger_page(session, user_id, limit=PAGE, after=after)
        rows.extend(page)
        if len(page) < PAGE:
            return rows
        after = (page[-1]["created_at"], page[-1]["id"])


async def _orders(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    before: tuple[Any, uuid.UUID] | None = None
    while True:
        page = await shop_orders.list_orders(session, user_id=user_id, limit=PAGE, before=before)
        rows.extend(
            {key: value for key, value in order.items() if key != "user_id"} for order in page
        )
        if len(page) < PAGE:
            return rows
        before = (page[-1]["created_at"], page[-1]["id"])


async def build_export(
    session: AsyncSession, user_id: uuid.UUID, *, current_session: uuid.UUID | None
) -> dict[str, Any]:
    profile = await users_repository.get_profile(session, user_id)
    if profile is None:
        raise account_gone()
    unlocked = [
        {key: item[key] for key in ("code", "name", "description", "reward_coins", "unlocked_at")}
        for item in (await achievements.list_for_user(session, user_id) or [])
        if item["unlocked_at"] is not None
    ]
    return {
        "format": EXPORT_FORMAT,
        "exported_at": datetime.now(UTC),
        "profile": users_repository.profile_to_response(profile),
        "identities": await erasure.identities(session, user_id),
        "sessions": await auth_sessions.list_sessions(session, user_id, current=current_session),
        "sign_ins": await auth_service.recent_app_sessions(session, user_id, limit=ALL_SIGN_INS),
        "steps": {
            "records": await step_review.list_user_steps(session, user_id, FIRST_DAY, LAST_DAY),
            "days": await step_reports.days_of_user(session, user_id),
            "devices": await step_reports.devices_of_user(session, user_id),
        },
        "standing": await fairplay_service.standing(session, user_id),
        "ledger": await _ledger(session, user_id),
        "orders": await _orders(session, user_id),
        "achievements": unlocked,
        "leaderboard_prizes": await prizes.awards_of_user(session, user_id),
        "referrals": await referrals.export_of(session, user_id),
        "friends": await social.export_of(session, user_id),
        "challenges": await challenges.export_of(session, user_id),
        "notifications": await notify.export_of(session, user_id),
        "groups": await social_groups.export_of(session, user_id),
    }

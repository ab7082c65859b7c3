"""Background jobs of sign-in: the password-reset mail, looked up and written after the
request answered (so the request takes the same time for every email)."""

from __future__ import annotations

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.auth import recovery
from stepcoin.config import get_settings
from stepcoin.db import session_scope
from stepcoin.queue import JobRuntime

blueprint = procrastinate.Blueprint()


@blueprint.task(name="mail_password_reset", queue="mail")
async def mail_password_reset(email: str) -> bool:
    """A reset link for the account with this email, if there is an active one."""
    session: AsyncSession
    async with session_scope(JobRuntime.require_database()) as session:
        return await recovery.mail_reset_link(session, get_settings(), email)

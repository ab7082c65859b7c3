"""Background jobs of the auth domain: the password-reset mail, looked up and written after the
request answered (so the request takes the same time for every email); revoking a deleted
account's Apple tokens.

The deletion commits first (a slow Apple never holds it up) and defers this job in the same
transaction. Apple's authorization code lives five minutes and is spent by the exchange, so
an exchange that succeeded is never repeated: when the revocation after it fails for a
transient reason, the refresh token is handed to a new job of its own, which retries.
"""

from __future__ import annotations

import logging

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.auth import recovery
from stepcoin.auth.apple import AppleClient, AppleRefused, AppleUnavailable
from stepcoin.config import get_settings
from stepcoin.db import session_scope
from stepcoin.queue import AUTH_REVOKE_APPLE_TOKEN, JobRuntime, defer_in_transaction

logger = logging.getLogger("stepcoin.auth.tasks")
blueprint = procrastinate.Blueprint()
APPLE_RETRY = procrastinate.RetryStrategy(max_attempts=10, exponential_wait=2)


async def revoke_apple_token(
    client_id: str, *, authorization_code: str | None = None, refresh_token: str | None = None
) -> str:
    """Exchange the code (if given) and revoke the token; the outcome as one word."""
    settings = get_settings()
    async with AppleClient(settings) as apple:
        token, hint = refresh_token, "refresh_token"
        if token is None:
            if not authorization_code:
                return "nothing_to_revoke"
            try:
                tokens = await apple.exchange_code(client_id, authorization_code)
            except AppleRefused as exc:
                logger.error("apple code exchange refused", extra={"error": str(exc)})
                return "refused"
            token, hint = tokens.refresh_token, "refresh_token"
            if token is None:
                token, hint = tokens.access_token, "access_token"
            if token is None:
                return "no_token"
        try:
            await apple.revoke(client_id, token, hint)
        except AppleRefused as exc:
            logger.error("apple revocation refused", extra={"error": str(exc)})
            return "refused"
        except AppleUnavailable:
            if refresh_token is not None:
                raise  # this job only revokes: the queue retries it
            async with session_scope(JobRuntime.require_database()) as session:
                await defer_in_transaction(
                    session,
                    AUTH_REVOKE_APPLE_TOKEN,
                    {"client_id": client_id, "refresh_token": token},
                    queue="auth",
                )
            return "revocation_deferred"
    logger.info("apple token revoked", extra={"client_id": client_id})
    return "revoked"


@blueprint.task(name="revoke_apple_token", retry=APPLE_RETRY, queue="auth")
async def revoke_apple_token_job(
    client_id: str, authorization_code: str | None = None, refresh_token: str | None = None
) -> str:
    return await revoke_apple_token(
        client_id, authorization_code=authorization_code, refresh_token=refresh_token
    )


@blueprint.task(name="mail_password_reset", queue="mail")
async def mail_password_reset(email: str) -> bool:
    """A reset link for the account with this email, if there is an active one."""
    session: AsyncSession
    async with session_scope(JobRuntime.require_database()) as session:
        return await recovery.mail_reset_link(session, get_settings(), email)

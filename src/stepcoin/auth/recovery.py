"""Password reset by email: a request that answers the same for every email, a single-use
link valid 30 minutes, and a reset that sets the new password, proves the email and ends every
session of the account."""

from __future__ import annotations

import uuid
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from stepcoin.auth import email_tokens, verification
from stepcoin.auth.passwords import hash_password, password_problem
from stepcoin.auth.service import end_sessions, inet_or_none
from stepcoin.config import Settings
from stepcoin.errors import Forbidden, InvalidInput
from stepcoin.mail import outbox
from stepcoin.queue import AUTH_PASSWORD_RESET_MAIL, defer_in_transaction

# POST /v1/auth/password-reset/request is rate limited per client address before it runs
# (stepcoin.ratelimit, the `mails` policy: 429 `too_many_reset_requests`). Here, per email:
# beyond PER_EMAIL requests in WINDOW_MINUTES no more mails go out, and the answer stays the
# same 202 (a different answer would tell whether the email has an account).
WINDOW_MINUTES: Final = 15
PER_EMAIL: Final = 3
KEPT_HOURS: Final = 24


async def request_reset(
    session: AsyncSession, settings: Settings, *, email: str, address: str | None
) -> None:
    """Queue a reset link for this email (a job mails it if the email belongs to an active
    account): the same answer, work and time for every email (no account enumeration)."""
    email = email.strip().lower()
    address = inet_or_none(address)
    await _lock(session, f"password_reset:email:{email}")  # parallel requests queue up
    by_email = (
        await session.execute(
            text(
                """
                WITH gone AS (
                    DELETE FROM password_reset_requests
                    WHERE requested_at < now() - make_interval(hours => :kept)
                )
                SELECT count(*) FROM password_reset_requests
                WHERE requested_at > now() - make_interval(mins => :window) AND email = :email
                """
            ),
            {"kept": KEPT_HOURS, "email": email, "window": WINDOW_MINUTES},
        )
    ).scalar_one()
    await session.execute(
        text(
            "INSERT INTO password_reset_requests (email, address) "
            "VALUES (:email, CAST(:address AS inet))"
        ),
        {"email": email[:320], "address": address},
    )
    if by_email >= PER_EMAIL:
        return
    # the account is looked up by a job, not here: the request does the same work, in the
    # same time, whether the email has an account or not
    await defer_in_transaction(session, AUTH_PASSWORD_RESET_MAIL, {"email": email}, queue="mail")


async def mail_reset_link(session: AsyncSession, settings: Settings, email: str) -> bool:
    """The job behind a reset request: a link for an active account with this email (True),
    nothing for any other email (False)."""
    user = (
        await session.execute(
            text("SELECT id, email FROM users WHERE email = :email AND is_active"),
            {"email": email},
        )
    ).first()
    if user is None:
        return False
    await _send_reset_mail(session, settings, user_id=user.id, email=user.email)
    return True


async def forget_email(session: AsyncSession, email: str) -> None:
    """Account deletion: the reset requests recorded for this email name a person."""
    await session.execute(
        text("DELETE FROM password_reset_requests WHERE email = :email"), {"email": email}
    )


async def _lock(session: AsyncSession, key: str) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})


async def _send_reset_mail(
    session: AsyncSession, settings: Settings, *, user_id: uuid.UUID, email: str
) -> None:
    raw = await email_tokens.issue(session, user_id, email_tokens.PASSWORD_RESET)
    link = f"{settings.public_base_url}/reset-password?token={raw}"
    minutes = int(email_tokens.TTL[email_tokens.PASSWORD_RESET].total_seconds() // 60)
    await outbox.enqueue(
        session,
        recipient=email,
        subject="Reset your StepCoin password",
        text_body=(
            "Someone (we hope you) asked to reset the password of your StepCoin account.\n\n"
            "Choose a new password by opening this link:\n\n"
            f"{link}\n\n"
            f"The link works once and for {minutes} minutes. Resetting signs out every "
            "device.\n\nIf you did not ask for this, ignore this mail: your password stays "
            "as it is.\n"
        ),
    )


async def reset_password(
    session: AsyncSession, settings: Settings, *, token: str, new_password: str
) -> int:
    """Spend a reset token and set the new password; every session of the account ends.
    The number of app sessions ended. 422 for a weak password (the token stays unused)."""
    problem = password_problem(new_password)
    if problem:
        raise InvalidInput(f"new_password {problem}.", code="weak_password")
    user_id = await email_tokens.consume(session, token, email_tokens.PASSWORD_RESET)
    password_hash = await run_in_threadpool(hash_password, new_password, settings.password_hashing)
    changed = (
        await session.execute(
            text(
                "UPDATE users SET password_hash = :hash, updated_at = now() "
                "WHERE id = :id AND is_active RETURNING id"
            ),
            {"hash": password_hash, "id": user_id},
        )
    ).first()
    if changed is None:  # deactivated (or deleted) since the mail: the link is not spent
        raise Forbidden("This account is deactivated.", code="account_disabled")
    await verification.mark_verified(session, user_id)  # the link proved the email
    return await end_sessions(session, user_id, "password_reset")

"""Email verification: a mail with a single-use link at registration (in the same transaction
as the new user) and on request; the link's token sets users.email_verified_at.

A verified email is what lets a walker place orders (shop) and what lets a Google/Apple
identity join an existing account (auth.service, issue 12 hole 1)."""

from __future__ import annotations

import html
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.auth import email_tokens
from stepcoin.config import Settings
from stepcoin.errors import Conflict, NotFound, account_gone
from stepcoin.mail import outbox

# POST /v1/auth/verify-email/request is rate limited per account and address before it runs
# (stepcoin.ratelimit, the `mails` policy: runtime settings ratelimit.mails_per_*)


def _link(settings: Settings, raw: str) -> str:
    return f"{settings.public_base_url}/verify-email?token={raw}"


async def send_verification_mail(
    session: AsyncSession, settings: Settings, *, user_id: uuid.UUID, email: str
) -> int:
    """A fresh token and its mail, in the caller's transaction; the outbox row's id."""
    raw = await email_tokens.issue(session, user_id, email_tokens.VERIFY_EMAIL)
    link = _link(settings, raw)
    hours = int(email_tokens.TTL[email_tokens.VERIFY_EMAIL].total_seconds() // 3600)
    text_body = (
        "Welcome to StepCoin!\n\n"
        "Confirm that this is your email address by opening this link:\n\n"
        f"{link}\n\n"
        f"The link works once and for {hours} hours. Until your email is confirmed you can "
        "walk and earn coins, but not order rewards.\n\n"
        "If you did not sign up for StepCoin, ignore this mail.\n"
    )
    safe = html.escape(link, quote=True)
    html_body = (
        "<p>Welcome to StepCoin!</p>"
        f'<p>Confirm that this is your email address: <a href="{safe}">confirm my email</a>.</p>'
        f"<p>The link works once and for {hours} hours.</p>"
        "<p>If you did not sign up for StepCoin, ignore this mail.</p>"
    )
    return await outbox.enqueue(
        session,
        recipient=email,
        subject="Confirm your email for StepCoin",
        text_body=text_body,
        html_body=html_body,
    )


async def _account(session: AsyncSession, user_id: uuid.UUID) -> tuple[str, bool, bool] | None:
    row = (
        await session.execute(
            text(
                "SELECT email, email_verified_at IS NOT NULL AS verified, is_active "
                "FROM users WHERE id = :id FOR UPDATE"
            ),
            {"id": user_id},
        )
    ).first()
    return None if row is None else (row.email, row.verified, row.is_active)


async def request_verification(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID
) -> bool:
    """The signed-in walker asks for the mail again; False when the email is verified already
    (nothing is sent). The request's rate limit (429) is checked before this runs."""
    account = await _account(session, user_id)
    if account is None or not account[2]:
        raise account_gone()
    email, verified, _ = account
    if verified:
        return False
    await send_verification_mail(session, settings, user_id=user_id, email=email)
    return True


async def verify_email(session: AsyncSession, raw_token: str) -> uuid.UUID:
    """Spend a verification token: the account's email is verified. 400/410 for a bad token."""
    user_id = await email_tokens.consume(session, raw_token, email_tokens.VERIFY_EMAIL)
    await mark_verified(session, user_id)
    return user_id


async def mark_verified(session: AsyncSession, user_id: uuid.UUID) -> None:
    """The email is proven (a verification link, a password reset): keep the first time."""
    await session.execute(
        text(
            "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), "
            "updated_at = now() WHERE id = :id"
        ),
        {"id": user_id},
    )


async def resend_as_staff(
    session: AsyncSession, settings: Settings, *, user_id: uuid.UUID, actor_id: uuid.UUID
) -> str:
    """Support or an admin sends the walker a new verification mail (audited); the address
    it went to."""
    account = await _account(session, user_id)
    if account is None:
        raise NotFound("No such user.", code="user_not_found")
    email, verified, _ = account
    if verified:
        raise Conflict("This email is verified already.", code="email_already_verified")
    outbox_id = await send_verification_mail(session, settings, user_id=user_id, email=email)
    await audit.record(
        session,
        admin_id=actor_id,
        action="user.verification_mail_sent",
        entity_type="user",
        entity_id=str(user_id),
        extra={"email": email, "outbox_id": outbox_id},
    )
    return email

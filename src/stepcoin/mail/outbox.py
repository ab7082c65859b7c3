"""The outbox: a mail is a row written in the transaction of the change that causes it, and a
job that sends it; a row stays unsent (with its attempts and last error) until the SMTP server
accepts it, and a periodic sweep queues every unsent row again, so nothing is lost while the
server is down."""

from __future__ import annotations

import logging
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.config import Settings
from stepcoin.db import Database, session_scope
from stepcoin.mail import transport
from stepcoin.queue import MAIL_SEND, defer_in_transaction

logger = logging.getLogger("stepcoin.mail")

QUEUE: Final = "mail"
SWEEP_AFTER_SECONDS: Final = 60  # a fresh row has its own job; the sweep leaves it alone
GIVE_UP_AFTER_DAYS: Final = 3  # every link in a mail has expired by then
SWEEP_BATCH: Final = 500
MAX_ERROR_LENGTH: Final = 2000


class MailNotSent(Exception):
    """The delivery failed; the row records it and the job is retried later."""


def job_lock(outbox_id: int) -> str:
    return f"mail:{outbox_id}"


async def enqueue(
    session: AsyncSession,
    *,
    recipient: str,
    subject: str,
    text_body: str,
    html_body: str | None = None,
) -> int:
    """Write a mail and queue its sending, in the caller's transaction: it leaves exactly when
    the change that causes it commits."""
    outbox_id = int(
        (
            await session.execute(
                text(
                    "INSERT INTO mail_outbox (recipient, subject, text_body, html_body) "
                    "VALUES (:recipient, :subject, :text_body, :html_body) RETURNING id"
                ),
                {
                    "recipient": recipient,
                    "subject": subject,
                    "text_body": text_body,
                    "html_body": html_body,
                },
            )
        ).scalar_one()
    )
    await _queue(session, outbox_id)
    return outbox_id


async def forget_recipient(session: AsyncSession, recipient: str) -> int:
    """Account deletion: every mail to this address goes, sent or not (an unsent one's job
    then finds nothing to send)."""
    result = await session.execute(
        text("DELETE FROM mail_outbox WHERE recipient = :recipient"), {"recipient": recipient}
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def _queue(session: AsyncSession, outbox_id: int) -> int | None:
    return await defer_in_transaction(
        session,
        MAIL_SEND,
        {"outbox_id": outbox_id},
        lock=job_lock(outbox_id),
        queueing_lock=job_lock(outbox_id),
        queue=QUEUE,
    )


async def send_one(database: Database, settings: Settings, outbox_id: int) -> str:
    """Send one outbox row; answers what happened ('sent', 'already_sent', 'busy_or_gone').
    A failure is recorded on the row (attempts, last_error) and raised as MailNotSent."""
    failure: Exception | None = None
    session: AsyncSession
    async with session_scope(database) as session:
        row = (
            (
                await session.execute(
                    text(
                        "SELECT id, recipient, subject, text_body, html_body, sent_at, "
                        "created_at FROM mail_outbox WHERE id = :id FOR UPDATE SKIP LOCKED"
                    ),
                    {"id": outbox_id},
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return "busy_or_gone"  # another sender holds it, or it was deleted
        if row["sent_at"] is not None:
            return "already_sent"
        message = transport.build_message(
            settings,
            outbox_id=row["id"],
            recipient=row["recipient"],
            subject=row["subject"],
            text_body=row["text_body"],
            html_body=row["html_body"],
        )
        name = f"{row['created_at']:%Y%m%d-%H%M%S}-{row['id']}"
        try:
            where = await transport.deliver(settings, message, name=name)
        except Exception as exc:  # SMTP refusals, connection errors, timeouts, no SMTP
            failure = exc
            await _record(session, outbox_id, error=f"{type(exc).__name__}: {exc}")
        else:
            await _record(session, outbox_id, error=None)
    if failure is not None:
        log = logger.error if isinstance(failure, transport.MailNotConfigured) else logger.warning
        log("mail %s not sent: %s", outbox_id, failure, extra={"outbox_id": outbox_id})
        raise MailNotSent(f"mail {outbox_id} not sent: {failure}") from failure
    logger.info("mail sent", extra={"outbox_id": outbox_id, "to": where})
    return "sent"


async def _record(session: AsyncSession, outbox_id: int, *, error: str | None) -> None:
    await session.execute(
        text(
            "UPDATE mail_outbox SET attempts = attempts + 1, last_error = :error, "
            "sent_at = CASE WHEN CAST(:error AS text) IS NULL THEN now() END WHERE id = :id"
        ),
        {"id": outbox_id, "error": error[:MAX_ERROR_LENGTH] if error else None},
    )


async def sweep(database: Database) -> int:
    """Queue every unsent mail again (one job per mail at most: the queueing lock); mails
    older than GIVE_UP_AFTER_DAYS are left, with their last error, for whoever looks."""
    session: AsyncSession
    async with session_scope(database) as session:
        ids = (
            await session.execute(
                text(
                    "SELECT id FROM mail_outbox WHERE sent_at IS NULL "
                    "AND created_at < now() - make_interval(secs => :fresh) "
                    "AND created_at > now() - make_interval(days => :days) "
                    "ORDER BY created_at LIMIT :limit"
                ),
                {"fresh": SWEEP_AFTER_SECONDS, "days": GIVE_UP_AFTER_DAYS, "limit": SWEEP_BATCH},
            )
        ).scalars()
        queued = 0
        for outbox_id in list(ids):
            if await _queue(session, outbox_id) is not None:
                queued += 1
    if queued:
        logger.info("unsent mails queued again", extra={"queued": queued})
    return queued


async def pending(session: AsyncSession, *, limit: int = 50) -> list[dict[str, Any]]:
    """Unsent mails, oldest first (operations: what is waiting and why)."""
    rows = await session.execute(
        text(
            "SELECT id, recipient, subject, created_at, attempts, last_error FROM mail_outbox "
            "WHERE sent_at IS NULL ORDER BY created_at LIMIT :limit"
        ),
        {"limit": limit},
    )
    return [dict(r) for r in rows.mappings()]

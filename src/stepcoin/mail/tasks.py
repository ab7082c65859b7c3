"""The mail jobs: send one outbox row (retried with backoff), and the periodic sweep that
queues unsent rows again after the retries ran out (an SMTP server down for hours)."""

from __future__ import annotations

import procrastinate

from stepcoin.config import get_settings
from stepcoin.mail import outbox
from stepcoin.queue import JobRuntime

blueprint = procrastinate.Blueprint()

# waits of 3, 9, 27, 81, 243 and 729 seconds (about 18 minutes), then the sweep takes over
RETRY = procrastinate.RetryStrategy(
    max_attempts=6, exponential_wait=3, retry_exceptions={outbox.MailNotSent}
)


@blueprint.task(name="send", queue=outbox.QUEUE, retry=RETRY)
async def send_mail(outbox_id: int) -> str:
    """Send one outbox row (safe to run again: a sent row is left alone)."""
    return await outbox.send_one(JobRuntime.require_database(), get_settings(), outbox_id)


@blueprint.periodic(cron="*/5 * * * * 47", periodic_id="sweep")
@blueprint.task(name="sweep", queue=outbox.QUEUE, queueing_lock="mail_sweep")
async def sweep_outbox(timestamp: int) -> int:
    """Every five minutes: queue again every unsent mail that has no job waiting."""
    return await outbox.sweep(JobRuntime.require_database())

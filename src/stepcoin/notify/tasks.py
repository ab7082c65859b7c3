"""The notification jobs: send one notification's push (coming back after quiet hours, and
after 429/5xx with max(Retry-After, backoff)), and the sweep of pushes left waiting."""

from __future__ import annotations

from typing import Any

import procrastinate
from procrastinate.retry import RetryDecision

from stepcoin.config import get_settings
from stepcoin.notify import senders, sending
from stepcoin.notify.service import QUEUE
from stepcoin.queue import JobRuntime

blueprint = procrastinate.Blueprint()


class PushRetryStrategy(procrastinate.BaseRetryStrategy):
    """Quiet hours: back when they end. A 429/5xx: back after the wait the push service asked
    for, at least the backoff; the job itself counts each device's attempts and gives up."""

    def get_retry_decision(self, *, exception: BaseException, job: Any) -> RetryDecision | None:
        if isinstance(exception, sending.NotBefore):
            return RetryDecision(retry_at=exception.at)
        if isinstance(exception, sending.PushRetry):
            return RetryDecision(retry_in={"seconds": int(exception.after + 0.999)})
        return None


@blueprint.task(name="send", queue=QUEUE, retry=PushRetryStrategy())
async def send_push(notification_id: int) -> str:
    """Send one notification's push (safe to run again: a claimed device is not sent twice)."""
    settings = get_settings()
    return await sending.send_notification(
        JobRuntime.require_database(), senders.current(settings), notification_id
    )


@blueprint.task(name="send_batch", queue=QUEUE, retry=procrastinate.RetryStrategy(max_attempts=5))
async def send_push_batch(notification_ids: list[int]) -> dict[str, int]:
    """Send many notifications' pushes at once (a broadcast's chunk), set-based; safe to run
    again (a claimed device is not sent twice; what is left goes one by one)."""
    settings = get_settings()
    return await sending.send_batch(
        JobRuntime.require_database(), senders.current(settings), notification_ids
    )


@blueprint.periodic(cron="*/5 * * * * 52", periodic_id="sweep")
@blueprint.task(name="sweep", queue=QUEUE, queueing_lock="notify_sweep")
async def sweep_pending(timestamp: int) -> int:
    """Every five minutes: queue again the pushes left pending without a job."""
    return await sending.sweep(JobRuntime.require_database(), slice_=timestamp // 300)

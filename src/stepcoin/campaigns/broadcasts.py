"""Push broadcasts: a message (title and body) to a segment of walkers, as a `broadcast`
notification each (inbox and push), through notify's one entry point.

The same shape as a campaign (docs/notifications.md, "Broadcasts"): an admin creates one with a
segment of the campaigns' builder, previews it (walkers, their devices per platform, a sample),
and runs it; above `notify.broadcast_approval_threshold_walkers` walkers a second admin (never
the creator) approves it first. The run is a job (campaigns:broadcast) that writes the
notifications chunk after chunk in user-id order (notify.service.notify_many: one insert and
one statement queueing the pushes per chunk), the progress and cursor on the broadcast row in
the same transaction; the dedupe key `broadcast:<id>` makes a replayed chunk write nothing
twice. The walkers' preferences (the `broadcast` type), quiet hours, the daily cap and the
pushes-per-second throttle apply as to any notification. Every admin action is audited.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.campaigns import broadcast_repository as repository
from stepcoin.campaigns import repository as segments
from stepcoin.campaigns.schemas import SAMPLE_SIZE, BroadcastIn
from stepcoin.campaigns.service import segment_chunk, segment_summary
from stepcoin.db import Database, session_scope
from stepcoin.errors import Conflict, Forbidden, NotFound
from stepcoin.notify import service as notify
from stepcoin.queue import CAMPAIGNS_BROADCAST, defer_in_transaction
from stepcoin.runtime_settings.service import runtime_settings

logger = logging.getLogger("stepcoin.campaigns")

THRESHOLD_SETTING: Final = "notify.broadcast_approval_threshold_walkers"
KIND: Final = "broadcast"
CHUNK: Final = 2000  # walkers per transaction: one insert of notifications, one of jobs
PUSH_BATCH: Final = 250  # pushes per notify:send_batch job (set-based, sent together)


def dedupe_key(broadcast_id: uuid.UUID | str) -> str:
    """Each walker's notification of one broadcast: one per walker, however often it runs."""
    return f"broadcast:{broadcast_id}"


def run_lock(broadcast_id: uuid.UUID | str) -> str:
    return f"broadcast:{broadcast_id}"


def _not_found() -> NotFound:
    return NotFound("No such broadcast.", code="broadcast_not_found")


async def _with_figures(session: AsyncSession, row: dict[str, Any]) -> dict[str, Any]:
    """The row with its delivery figures (none before the run)."""
    figures = (
        await notify.delivery_figures(session, KIND, dedupe_key(row["id"]))
        if row["status"] in ("running", "done")
        else {"notifications": {}, "deliveries": {}}
    )
    notes, deliveries = figures["notifications"], figures["deliveries"]
    row["figures"] = {
        "queued": notes.get("pending", 0),
        "sent": deliveries.get("sent", 0),
        "failed": deliveries.get("failed", 0),
        "invalidated": deliveries.get("invalidated", 0),
        "retrying": deliveries.get("retry", 0) + deliveries.get("sending", 0),
        "notifications": notes,
        "deliveries": deliveries,
    }
    return row


async def get(session: AsyncSession, broadcast_id: uuid.UUID) -> dict[str, Any]:
    row = await repository.get(session, broadcast_id)
    if row is None:
        raise _not_found()
    return await _with_figures(session, row)


async def list_recent(session: AsyncSession, *, limit: int = 50) -> list[dict[str, Any]]:
    return [
        await _with_figures(session, row)
        for row in await repository.list_recent(session, limit=limit)
    ]


async def create(
    session: AsyncSession, body: BroadcastIn, *, admin_id: uuid.UUID
) -> dict[str, Any]:
    """A broadcast, queued at once (running) unless `draft` or its segment is above the
    approval threshold (then a draft: a second admin approves, an admin runs it); audited."""
    row = await repository.insert(
        session,
        title=body.title,
        body=body.body,
        segment=body.segment.stored(),
        created_by=admin_id,
    )
    await audit.record(
        session,
        admin_id=admin_id,
        action="broadcast.created",
        entity_type="broadcast",
        entity_id=str(row["id"]),
        after={
            "title": row["title"],
            "body": row["body"],
            "segment": segment_summary(row["segment"]),
        },
    )
    if not body.draft:
        walkers = await segments.count_segment(session, row["segment"])
        if walkers <= await _threshold(session):
            return await start(
                session, row["id"], admin_id=admin_id, expires_hours=body.expires_hours
            )
    return await _with_figures(session, row)


async def _threshold(session: AsyncSession) -> int:
    return int(await runtime_settings.get(session, THRESHOLD_SETTING))


async def preview(
    session: AsyncSession, broadcast_id: uuid.UUID, *, admin_id: uuid.UUID
) -> dict[str, Any]:
    """Walkers in the segment now, their push devices per platform, a sample; audited."""
    row = await repository.get(session, broadcast_id)
    if row is None:
        raise _not_found()
    walkers = await segments.count_segment(session, row["segment"])
    where, params = segments.segment_where(row["segment"])
    devices = await notify.devices_of_walkers(session, where, params)
    sample = await segments.sample_segment(session, row["segment"], limit=SAMPLE_SIZE)
    threshold = await _threshold(session)
    await audit.record(
        session,
        admin_id=admin_id,
        action="broadcast.previewed",
        entity_type="broadcast",
        entity_id=str(broadcast_id),
        extra={"walkers": walkers, "devices": devices},
    )
    return {
        "walkers": walkers,
        "devices": devices,
        "sample": sample,
        "needs_approval": walkers > threshold,
        "approval_threshold_walkers": threshold,
    }


async def approve(
    session: AsyncSession, broadcast_id: uuid.UUID, *, admin_id: uuid.UUID
) -> dict[str, Any]:
    """A second admin approves the broadcast to the walkers the segment holds now. Never the
    creator (403 own_broadcast); audited."""
    row = await repository.get(session, broadcast_id, for_update=True)
    if row is None:
        raise _not_found()
    if row["created_by"] == admin_id:
        raise Forbidden("A second admin approves a broadcast you created.", code="own_broadcast")
    if row["status"] not in ("draft", "approved"):
        raise Conflict(
            f"This broadcast is {row['status']}.",
            code="broadcast_already_run",
            extra={"current_status": row["status"]},
        )
    walkers = await segments.count_segment(session, row["segment"])
    updated = await repository.update(
        session,
        broadcast_id,
        status="approved",
        approved_by=admin_id,
        approved_at=True,
        approved_walkers=walkers,
    )
    await audit.record(
        session,
        admin_id=admin_id,
        action="broadcast.approved",
        entity_type="broadcast",
        entity_id=str(broadcast_id),
        before={"status": row["status"], "approved_walkers": row["approved_walkers"]},
        after={"status": "approved", "approved_walkers": walkers},
        extra={"created_by": str(row["created_by"])},
    )
    return await _with_figures(session, updated)


async def start(
    session: AsyncSession, broadcast_id: uuid.UUID, *, admin_id: uuid.UUID, expires_hours: int
) -> dict[str, Any]:
    """Start the run: count the segment, check the approval, queue the job (with this
    transaction); audited. A running broadcast answers as it is; a finished one is 409."""
    row = await repository.get(session, broadcast_id, for_update=True)
    if row is None:
        raise _not_found()
    if row["status"] == "running":
        return await _with_figures(session, row)
    if row["status"] == "done":
        raise Conflict(
            "This broadcast has run already.",
            code="broadcast_already_run",
            extra={"current_status": row["status"]},
        )
    walkers = await segments.count_segment(session, row["segment"])
    threshold = await _threshold(session)
    approved = row["approved_walkers"]
    if walkers > threshold and (approved is None or walkers > approved):
        raise Conflict(
            f"This broadcast goes to {walkers} walkers, above the {threshold} that need a "
            "second admin's approval"
            + (f" (approved: {approved})." if approved is not None else "."),
            code="broadcast_needs_approval",
            extra={"walkers": walkers, "approval_threshold_walkers": threshold},
        )
    updated = await repository.update(
        session,
        broadcast_id,
        status="running",
        run_by=admin_id,
        started_at=True,
        walkers_total=walkers,
        expires_at=datetime.now(UTC) + timedelta(hours=expires_hours),
    )
    await defer_in_transaction(
        session,
        CAMPAIGNS_BROADCAST,
        {"broadcast_id": str(broadcast_id)},
        lock=run_lock(broadcast_id),
        queueing_lock=run_lock(broadcast_id),
    )
    await audit.record(
        session,
        admin_id=admin_id,
        action="broadcast.run",
        entity_type="broadcast",
        entity_id=str(broadcast_id),
        before={"status": row["status"]},
        after={"status": "running", "walkers_total": walkers, "expires_hours": expires_hours},
    )
    return await _with_figures(session, updated)


async def queue_chunk(session: AsyncSession, broadcast_id: uuid.UUID, *, chunk: int) -> bool:
    """Write the next chunk's notifications (their pushes queued) in the caller's transaction,
    with the progress and cursor; True when the broadcast is done (or not running). The row is
    locked first, so two runs take turns; a replayed chunk writes nothing (the dedupe key)."""
    row = await repository.get(session, broadcast_id, for_update=True)
    if row is None or row["status"] != "running":
        return True
    walkers, cursor, done = await segment_chunk(
        session, row["segment"], after=row["resume_after"], chunk=chunk
    )
    key = dedupe_key(broadcast_id)
    data = {"broadcast_id": str(broadcast_id)}
    written = await notify.notify_many(
        session,
        [
            notify.Note(
                user_id=u,
                type=KIND,
                title=row["title"],
                body=row["body"],
                dedupe_key=key,
                data=data,
                collapse_key=key,
                expires_at=row["expires_at"],
            )
            for u in walkers
        ],
        batch=PUSH_BATCH,
    )
    await repository.record_chunk(
        session, broadcast_id, resume_after=cursor, walkers=len(written), done=done
    )
    return done


async def run(database: Database, broadcast_id: uuid.UUID) -> dict[str, Any]:
    """The job's body: chunk after chunk, each its own transaction, until done. Killed midway,
    the job is retried and resumes after the last committed chunk."""
    chunks = 0
    while True:
        async with session_scope(database) as session:
            done = await queue_chunk(session, broadcast_id, chunk=CHUNK)
        chunks += 1
        if done:
            break
    async with session_scope(database) as session:
        row = await repository.get(session, broadcast_id)
    assert row is not None
    result = {
        "chunks": chunks,
        "walkers_queued": row["walkers_queued"],
        "status": row["status"],
    }
    logger.info("broadcast queued", extra={"broadcast_id": str(broadcast_id), **result})
    return result

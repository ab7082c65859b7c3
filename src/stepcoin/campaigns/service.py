"""Campaigns: coins for a segment of walkers, each walker paid exactly once.

An admin creates a campaign (name, message, coins per walker, segment), previews it (walkers,
total coins, a sample) and runs it. Above `economy.campaign_approval_threshold_coins` in total,
a second admin (never the creator) approves it first; a run whose total has grown beyond what
was approved needs a new approval. The run is a job (campaigns:run) that pays the segment in
user-id order, `economy.campaign_chunk_walkers` walkers per transaction, through the wallet's
one door (wallet.service.post_many: one round trip per chunk); each chunk's transaction also
records the progress and the cursor on the campaign row. Each walker's ledger row has the
reference `campaign:<id>:<user id>` and the campaign's message as its note, so a job killed
midway resumes after its last committed chunk and a replayed chunk pays nobody twice.
Staff accounts are never in a segment. Every admin action is audited. See docs/economy.md.
"""

from __future__ import annotations

import bisect
import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.campaigns import repository
from stepcoin.campaigns.schemas import SAMPLE_SIZE, CampaignIn
from stepcoin.db import Database, session_scope
from stepcoin.errors import Conflict, Forbidden, NotFound
from stepcoin.queue import CAMPAIGNS_RUN, defer_in_transaction
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.wallet import budgets
from stepcoin.wallet.service import CAMPAIGN_REWARD, Entry

logger = logging.getLogger("stepcoin.campaigns")

THRESHOLD_SETTING = "economy.campaign_approval_threshold_coins"
CHUNK_SETTING = "economy.campaign_chunk_walkers"


def reference(campaign_id: uuid.UUID, user_id: uuid.UUID) -> str:
    """The ledger reference of one walker's payment: unique per campaign and walker."""
    return f"campaign:{campaign_id}:{user_id}"


def run_lock(campaign_id: uuid.UUID | str) -> str:
    """The job lock of a campaign's run: one runs at a time, one waits at most."""
    return f"campaign:{campaign_id}"


def _not_found() -> NotFound:
    return NotFound("No such campaign.", code="campaign_not_found")


async def get(session: AsyncSession, campaign_id: uuid.UUID) -> dict[str, Any]:
    row = await repository.get(session, campaign_id)
    if row is None:
        raise _not_found()
    return row


async def list_recent(session: AsyncSession, *, limit: int = 50) -> list[dict[str, Any]]:
    return await repository.list_recent(session, limit=limit)


async def create(session: AsyncSession, body: CampaignIn, *, admin_id: uuid.UUID) -> dict[str, Any]:
    """A draft campaign; audited."""
    row = await repository.insert(
        session,
        name=body.name,
        message=body.message,
        coins_per_walker=body.coins_per_walker,
        segment=body.segment.stored(),
        created_by=admin_id,
    )
    await audit.record(
        session,
        admin_id=admin_id,
        action="campaign.created",
        entity_type="campaign",
        entity_id=str(row["id"]),
        after={
            "name": row["name"],
            "message": row["message"],
            "coins_per_walker": row["coins_per_walker"],
            "segment": segment_summary(row["segment"]),
        },
    )
    return row


def segment_summary(segment: dict[str, Any]) -> dict[str, Any]:
    """The segment for the audit log: a long id list as its length."""
    summary = {k: v for k, v in segment.items() if k != "user_ids"}
    if "user_ids" in segment:
        summary["user_ids"] = len(segment["user_ids"])
    return summary


async def _threshold(session: AsyncSession) -> int:
    return int(await runtime_settings.get(session, THRESHOLD_SETTING))


async def preview(
    session: AsyncSession, campaign_id: uuid.UUID, *, admin_id: uuid.UUID
) -> dict[str, Any]:
    """Walkers in the segment now, the coins they would get in total, a sample; audited."""
    row = await get(session, campaign_id)
    walkers = await repository.count_segment(session, row["segment"])
    sample = await repository.sample_segment(session, row["segment"], limit=SAMPLE_SIZE)
    threshold = await _threshold(session)
    total = walkers * row["coins_per_walker"]
    await audit.record(
        session,
        admin_id=admin_id,
        action="campaign.previewed",
        entity_type="campaign",
        entity_id=str(campaign_id),
        extra={"walkers": walkers, "total_coins": total},
    )
    return {
        "walkers": walkers,
        "total_coins": total,
        "sample": sample,
        "needs_approval": total > threshold,
        "approval_threshold_coins": threshold,
    }


async def approve(
    session: AsyncSession, campaign_id: uuid.UUID, *, admin_id: uuid.UUID
) -> dict[str, Any]:
    """A second admin approves the campaign's total as it is now (walkers x coins): a run up
    to that total may start. Never the creator (403 own_campaign); audited."""
    row = await repository.get(session, campaign_id, for_update=True)
    if row is None:
        raise _not_found()
    if row["created_by"] == admin_id:
        raise Forbidden("A second admin approves a campaign you created.", code="own_campaign")
    if row["status"] not in ("draft", "approved"):
        raise Conflict(
            f"This campaign is {row['status']}.",
            code="campaign_already_run",
            extra={"current_status": row["status"]},
        )
    walkers = await repository.count_segment(session, row["segment"])
    total = walkers * row["coins_per_walker"]
    updated = await repository.update(
        session,
        campaign_id,
        status="approved",
        approved_by=admin_id,
        approved_at=True,
        approved_coins=total,
    )
    await audit.record(
        session,
        admin_id=admin_id,
        action="campaign.approved",
        entity_type="campaign",
        entity_id=str(campaign_id),
        before={"status": row["status"], "approved_coins": row["approved_coins"]},
        after={"status": "approved", "approved_coins": total},
        extra={"walkers": walkers, "created_by": str(row["created_by"])},
    )
    return updated


async def start(
    session: AsyncSession, campaign_id: uuid.UUID, *, admin_id: uuid.UUID
) -> dict[str, Any]:
    """Start the run: count the segment, check the approval, queue the job (with this
    transaction); audited. A running campaign answers as it is (the run is not queued twice);
    a finished one is 409 campaign_already_run."""
    row = await repository.get(session, campaign_id, for_update=True)
    if row is None:
        raise _not_found()
    if row["status"] == "running":
        return row
    if row["status"] == "done":
        raise Conflict(
            "This campaign has run already.",
            code="campaign_already_run",
            extra={"current_status": row["status"]},
        )
    walkers = await repository.count_segment(session, row["segment"])
    total = walkers * row["coins_per_walker"]
    threshold = await _threshold(session)
    approved = row["approved_coins"]
    if total > threshold and (approved is None or total > approved):
        raise Conflict(
            f"This campaign pays {total} coins, above the {threshold} that need a second "
            "admin's approval" + (f" (approved: {approved})." if approved is not None else "."),
            code="campaign_needs_approval",
            extra={"total_coins": total, "approval_threshold_coins": threshold},
        )
    updated = await repository.update(
        session,
        campaign_id,
        status="running",
        run_by=admin_id,
        started_at=True,
        walkers_total=walkers,
    )
    await defer_in_transaction(
        session,
        CAMPAIGNS_RUN,
        {"campaign_id": str(campaign_id)},
        lock=run_lock(campaign_id),
        queueing_lock=run_lock(campaign_id),
    )
    await audit.record(
        session,
        admin_id=admin_id,
        action="campaign.run",
        entity_type="campaign",
        entity_id=str(campaign_id),
        before={"status": row["status"]},
        after={"status": "running", "walkers_total": walkers, "total_coins": total},
    )
    return updated


async def segment_chunk(
    session: AsyncSession, segment: dict[str, Any], *, after: uuid.UUID | None, chunk: int
) -> tuple[list[uuid.UUID], uuid.UUID | None, bool]:
    """The next chunk of a segment after the cursor `after`, in user-id order: (its eligible
    walkers, the new cursor, whether this was the last chunk). Campaigns and broadcasts."""
    if segment.get("user_ids"):
        ids: list[str] = segment["user_ids"]  # stored sorted
        start = 0 if after is None else bisect.bisect_right(ids, str(after))
        piece = ids[start : start + chunk]
        walkers = await repository.eligible_among(session, segment, piece) if piece else []
        return walkers, (uuid.UUID(piece[-1]) if piece else None), start + chunk >= len(ids)
    walkers = await repository.next_walkers(session, segment, after=after, limit=chunk)
    return walkers, (walkers[-1] if walkers else None), len(walkers) < chunk


async def pay_chunk(session: AsyncSession, campaign_id: uuid.UUID, *, chunk: int) -> bool:
    """Pay the next chunk of a running campaign in the caller's transaction, with its progress
    and cursor; True when the campaign is done (or not running). The campaign row is locked
    first, so two runs of one campaign take turns and never pay one chunk twice (and a
    replay would move nothing anyway: the references)."""
    row = await repository.get(session, campaign_id, for_update=True)
    if row is None or row["status"] != "running":
        return True
    walkers, cursor, done = await segment_chunk(
        session, row["segment"], after=row["resume_after"], chunk=chunk
    )
    coins = row["coins_per_walker"]
    paid = 0
    if walkers:
        # under the campaigns' issuance budgets: a walker a budget at its cap holds sees the
        # coins pending; wallet:release_held pays them when there is room (not counted here)
        issued = await budgets.issue_many(
            session,
            "campaigns",
            {
                u: [Entry(coins, CAMPAIGN_REWARD, reference(campaign_id, u), row["message"])]
                for u in walkers
            },
        )
        paid = sum(1 for rows in issued.paid.values() for p in rows if not p.replayed)
    await repository.record_chunk(
        session, campaign_id, resume_after=cursor, walkers=paid, coins=paid * coins, done=done
    )
    return done


async def run(database: Database, campaign_id: uuid.UUID) -> dict[str, Any]:
    """The job's body: chunk after chunk, each its own transaction, until the campaign is
    done. Killed midway, the job is retried (queue_tasks.retry_stalled_jobs) and resumes
    after the last committed chunk."""
    chunks = 0
    while True:
        async with session_scope(database) as session:
            size = int(await runtime_settings.get(session, CHUNK_SETTING))
            done = await pay_chunk(session, campaign_id, chunk=size)
        chunks += 1
        if done:
            break
    async with session_scope(database) as session:
        row = await get(session, campaign_id)
    logger.info(
        "campaign run",
        extra={
            "campaign_id": str(campaign_id),
            "chunks": chunks,
            "walkers_paid": row["walkers_paid"],
            "coins_paid": row["coins_paid"],
            "status": row["status"],
        },
    )
    return {
        "chunks": chunks,
        "walkers_paid": row["walkers_paid"],
        "coins_paid": row["coins_paid"],
        "status": row["status"],
    }

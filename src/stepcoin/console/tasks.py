"""Background jobs of the console: old sessions and sign-in counts go, settled days of the
economy are stored."""

from __future__ import annotations

import logging
from datetime import timedelta

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.auth import throttle
from stepcoin.console.sessions import prune_sessions
from stepcoin.db import session_scope
from stepcoin.queue import JobRuntime
from stepcoin.wallet.reports import ECONOMY_DAYS, settle_days, settled_before

logger = logging.getLogger("stepcoin.console.tasks")
blueprint = procrastinate.Blueprint()


@blueprint.periodic(cron="31 4 * * *", periodic_id="prune-sessions")
@blueprint.task(name="prune_sessions", queueing_lock="prune_sessions")
async def prune_sessions_job(timestamp: int) -> int:
    """Daily: delete console sessions that ended (signed out or expired) over 30 days ago."""
    session: AsyncSession
    async with session_scope(JobRuntime.require_database()) as session:
        deleted = await prune_sessions(session)
    logger.info("console sessions pruned", extra={"deleted": deleted})
    return deleted


@blueprint.periodic(cron="37 4 * * *", periodic_id="prune-throttles")
@blueprint.task(name="prune_throttles", queueing_lock="prune_throttles")
async def prune_throttles_job(timestamp: int) -> int:
    """Daily: delete sign-in, second-factor and sign-up counts of windows long over."""
    session: AsyncSession
    async with session_scope(JobRuntime.require_database()) as session:
        deleted = await throttle.prune(session)
    logger.info("throttle counts pruned", extra={"deleted": deleted})
    return deleted


@blueprint.periodic(cron="20 1 * * *", periodic_id="settle-economy")
@blueprint.task(name="settle_economy_days", queueing_lock="settle_economy_days")
async def settle_economy_days_job(timestamp: int) -> int:
    """Daily, after the settling hour: store yesterday's ledger totals for the overview's chart
    (and any settled day of the last 90 that is missing), so the page never sums old days."""
    before = settled_before()
    session: AsyncSession
    async with session_scope(JobRuntime.require_database()) as session:
        stored = await settle_days(session, before - timedelta(days=ECONOMY_DAYS), before)
    logger.info("economy days settled", extra={"stored": stored})
    return stored

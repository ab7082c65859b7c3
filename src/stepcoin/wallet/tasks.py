"""Background jobs of the wallet domain."""

from __future__ import annotations

import logging
import time

import procrastinate

from stepcoin.db import session_scope
from stepcoin.queue import JobRuntime
from stepcoin.wallet import budgets
from stepcoin.wallet.service import SLICES_A_DAY, check_recent_ledger

logger = logging.getLogger("stepcoin.wallet.tasks")
blueprint = procrastinate.Blueprint()


@blueprint.periodic(cron="40 * * * *", periodic_id="hourly")
@blueprint.task(name="check_ledger", queueing_lock="check_ledger")
async def check_ledger_job(timestamp: int) -> bool:
    """Hourly reconciliation: logs an error naming every wallet that differs from its ledger.
    Each run checks the walkers whose ledger moved since the run before and the hour's slice
    of all walkers (service.check_recent_ledger): every walker at least once a day. The whole
    check, every wallet at once, is `stepcoin check-ledger`."""
    hour = int(timestamp // 3600) if timestamp else int(time.time() // 3600)
    async with session_scope(JobRuntime.require_database()) as session:
        report = await check_recent_ledger(session, slice_=hour)
    if report.ok:
        logger.info(
            "ledger reconciled",
            extra={"wallets": report.wallets_checked, "slice": hour % SLICES_A_DAY},
        )
    else:
        logger.error(
            "ledger mismatch",
            extra={
                "mismatches": report.mismatches,
                "duplicates": report.duplicate_awards,
                "balance_chains": report.bad_balance_chains,
                "pending": report.pending_mismatches,
                "counters": report.counter_mismatches,
            },
        )
    return report.ok


@blueprint.periodic(cron="* * * * * 19", periodic_id="release_held")
@blueprint.task(name="release_held", queueing_lock="release_held")
async def release_held_job(timestamp: int) -> int:
    """Every minute: pay the rewards an issuance budget held, oldest first, as far as the
    budgets have room now (a new period, a higher cap, a removed budget), chunk by chunk, each
    chunk in its own transaction (stepcoin.wallet.budgets.release_held)."""
    released = 0
    while True:
        async with session_scope(JobRuntime.require_database()) as session:
            paid = await budgets.release_held(session)
        released += paid
        if paid < budgets.RELEASE_CHUNK:
            break
    if released:
        logger.info("held rewards paid", extra={"released": released})
    return released

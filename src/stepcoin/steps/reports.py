"""Figures about steps for the people who run StepCoin (the console's overview), and a
walker's own days for the data export."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def approved_steps_on(session: AsyncSession, day: date) -> tuple[int, int]:
    """(walkers, steps) credited for `day`: the sum of step_days.credited_steps, i.e. each
    walker's credited source's last approved count (sources are never added up).

    `day` is the records' own date (each walker's local day); the overview passes the current
    UTC date. Driven from step_records (partition pruning + ix_step_records_recorded_date)
    with one primary-key probe of step_days per walker of that day, because step_days has no
    index on recorded_date alone: ~300k probes at 1M users, well under a second.
    """
    row = (
        await session.execute(
            text(
                """
                SELECT count(*) AS walkers, coalesce(sum(steps), 0) AS steps FROM (
                    SELECT (SELECT d.credited_steps FROM step_days d
                            WHERE d.user_id = r.user_id AND d.recorded_date = :day) AS steps
                    FROM (SELECT DISTINCT user_id FROM step_records
                          WHERE recorded_date = :day) r
                ) x WHERE steps > 0
                """
            ),
            {"day": day},
        )
    ).one()
    return int(row.walkers), int(row.steps)


async def days_of_user(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """What each of a user's days is worth (the settlement), oldest first: for the export."""
    rows = await session.execute(
        text(
            "SELECT recorded_date AS date, credited_source, credited_steps, coins_paid, "
            "coins_pending, updated_at FROM step_days WHERE user_id = :u ORDER BY recorded_date"
        ),
        {"u": user_id},
    )
    return [dict(row) for row in rows.mappings()]


async def devices_of_user(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The devices that synced for the user, with the first and last UTC day: for the export."""
    rows = await session.execute(
        text(
            "SELECT device_id, first_seen, last_seen FROM device_accounts WHERE user_id = :u "
            "ORDER BY first_seen, device_id"
        ),
        {"u": user_id},
    )
    return [dict(row) for row in rows.mappings()]


async def forget_devices(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Account deletion: the device identifiers the app sent with each record go (and the
    record of which devices synced for the account); the steps and decisions stay, because the
    ledger's step rewards were paid for them."""
    await session.execute(text("DELETE FROM device_accounts WHERE user_id = :u"), {"u": user_id})
    await session.execute(
        text(
            "UPDATE step_records SET device_id = NULL, device_ids = '{}', client_record_id = NULL "
            "WHERE user_id = :u AND (device_id IS NOT NULL OR device_ids <> '{}' "
            "OR client_record_id IS NOT NULL)"
        ),
        {"u": user_id},
    )

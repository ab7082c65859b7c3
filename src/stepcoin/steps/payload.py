"""The typed contract between the step loop's Python and its SQL function.

stepcoin_apply_sync (src/stepcoin/steps/sql/apply_sync.v4.sql) reads these rows by their
field names (jsonb_to_recordset) and answers with DayOutcome rows; orjson writes the
dataclasses as JSON objects and dates as YYYY-MM-DD. The rows are dataclasses without slots:
orjson writes one from its __dict__ several times faster than a slotted one, which it reads
field by field (a 500-record batch's payload: ~0.9 -> ~0.2 ms).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.steps.settlement import DaySettlement

APPLY_SQL = "SELECT stepcoin_apply_sync($1, $2, $3::jsonb)"


@dataclass
class RecordRow:
    """A step_records row as it will be after this sync (upserted on user, day, source)."""

    day: date
    source: str
    steps: int
    approved_steps: int
    device_ids: list[str]
    client_record_id: str | None
    client_record_version: int | None
    manual: bool
    deleted: bool
    intervals: list[dict[str, Any]] | None
    status: str
    reasons: list[str]


@dataclass
class ValidationRow:
    """One decision (step_validations row); stored=False: the record itself is not kept."""

    day: date
    source: str
    steps: int
    status: str
    rule_hits: list[dict[str, Any]]
    risk_score: int
    stored: bool


@dataclass
class DayRow:
    """What a day should have paid in total and hold for review (steps.settlement)."""

    day: date
    credited_source: str | None
    credited_steps: int
    coins_paid: int
    coins_pending: int


def day_rows(days: Mapping[date, DaySettlement]) -> list[DayRow]:
    """The settled days as the apply function reads them."""
    return [
        DayRow(
            day=day,
            credited_source=s.credited_source,
            credited_steps=s.credited_steps,
            coins_paid=s.coins_paid,
            coins_pending=s.coins_pending,
        )
        for day, s in days.items()
    ]


@dataclass
class SyncPayload:
    records: list[RecordRow] = field(default_factory=list)
    validations: list[ValidationRow] = field(default_factory=list)
    days: list[DayRow] = field(default_factory=list)
    # the steps budgets' shares for this walker (stepcoin.wallet.budgets.steps_shares); None:
    # no budget, or the call must not be held by one
    budget: list[dict[str, Any]] | None = None
    # devices to record as seen today for the walker (device_accounts; stepcoin.fairplay), the
    # window of the device links and the device count the plan was judged with (more: relink)
    devices: list[str] = field(default_factory=list)
    device_since: date | None = None
    device_accounts: int | None = None

    def to_json(self) -> str:
        return orjson.dumps(self).decode()


@dataclass(slots=True)
class DayOutcome:
    """What the function did to a day: the coins moved (a clawback may take less than asked
    when the balance is short) and what the day now holds. Not frozen: a frozen dataclass sets
    each field through object.__setattr__, 4x the cost for the ~170 days of a 500-record batch;
    nothing changes one."""

    day: date
    credited_source: str | None
    coins_delta: int
    pending_delta: int
    coins_paid: int
    coins_pending: int


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    conflict: bool
    days: list[DayOutcome]
    available: int | None = None
    version: int | None = None
    no_wallet: bool = False
    budget: bool = False  # a steps budget had no room for the new coins: nothing was written


def parse_outcome(value: Any) -> ApplyOutcome:
    """The function's answer (text, or decoded JSON when a codec is installed)."""
    data: Mapping[str, Any] = orjson.loads(value) if isinstance(value, (str, bytes)) else value
    if data.get("error") == "no_wallet":
        return ApplyOutcome(conflict=False, days=[], no_wallet=True)
    if data.get("conflict"):
        return ApplyOutcome(conflict=True, days=[])
    if data.get("budget"):
        return ApplyOutcome(conflict=False, days=[], budget=True)
    days: Sequence[Mapping[str, Any]] = data.get("days", [])
    return ApplyOutcome(
        conflict=False,
        days=[
            DayOutcome(
                date.fromisoformat(d["day"]),
                d["credited_source"],
                int(d["coins_delta"]),
                int(d["pending_delta"]),
                int(d["coins_paid"]),
                int(d["coins_pending"]),
            )
            for d in days
        ],
        available=int(data["available"]),
        version=int(data["version"]),
    )


async def apply_locked(
    session: AsyncSession, user_id: Any, version: int, payload: SyncPayload
) -> ApplyOutcome:
    """stepcoin_apply_sync in the caller's transaction, which holds the walker's wallet lock
    (an appeal): the version read under it cannot move."""
    outcome = parse_outcome(
        (
            await session.execute(
                text("SELECT stepcoin_apply_sync(:u, :v, CAST(:p AS jsonb))"),
                {"u": user_id, "v": version, "p": payload.to_json()},
            )
        ).scalar_one()
    )
    assert not outcome.conflict, "the wallet lock is held: the version cannot move"
    return outcome

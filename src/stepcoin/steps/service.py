"""The step-to-coin loop: judge a batch against a snapshot, then apply it in one round trip.

A sync costs two round trips and no explicit transaction: (1) one read of the user's snapshot
(records of the batch's days, their settlements, the trailing history, the steps version);
(2) one call of stepcoin_apply_sync(), which locks the wallet, checks that the steps version is
still the snapshot's, and writes records, decisions, ledger rows and the wallet atomically. If
another request changed the user's steps in between, the call answers "conflict" and the batch
is judged again on a fresh snapshot. The rules and the day settlement are plain Python.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from stepcoin.db import Database
from stepcoin.errors import Conflict, account_gone
from stepcoin.runtime_settings.service import runtime_settings
from stepcoin.steps.earn_rules import EarnRules, earn_rules
from stepcoin.steps.payload import (
    APPLY_SQL,
    DayOutcome,
    RecordRow,
    SyncPayload,
    ValidationRow,
    day_rows,
    parse_outcome,
)
from stepcoin.steps.rules import (
    NO_LINKS,
    UNSTORABLE,
    Decision,
    Interval,
    LinkFacts,
    OtherSource,
    RuleContext,
    RuleHit,
    StepInput,
    evaluate,
    history_index,
)
from stepcoin.steps.schemas import StepRecordIn, interval_json
from stepcoin.steps.settlement import DaySettlement, settle_day
from stepcoin.wallet import budgets

logger = logging.getLogger("stepcoin.steps")
MAX_ATTEMPTS = 8
BUDGET_CODE = "issuance_budget"
BUDGET_HIT = RuleHit(
    BUDGET_CODE,
    "flag",
    "cap reached",
    "steps issuance budget",
    "Today's coins for steps are all given out: these coins are held and paid when there is "
    "room again.",
)

# The one read of a sync (steps/sql/sync_snapshot.v1.sql: a function, so that its statement
# keeps one generic plan instead of being planned on every sync).
SNAPSHOT_SQL = "SELECT * FROM stepcoin_sync_snapshot($1, $2, $3, $4, $5)"


@dataclass(slots=True)
class StoredRecord:
    day: date
    source: str
    steps: int
    approved_steps: int
    device_ids: list[str]
    deleted: bool
    manual: bool
    client_record_id: str | None
    client_record_version: int | None
    status: str
    reasons: list[str]
    has_intervals: bool


@dataclass(slots=True)
class Snapshot:
    active: bool
    created_at: datetime
    timezone: str
    version: int
    records: dict[tuple[date, str], StoredRecord]
    history: dict[date, int]
    links: LinkFacts = NO_LINKS


@dataclass(slots=True)
class Plan:
    """Everything one attempt decided: what to write, and what to answer per input record."""

    records: list[RecordRow] = field(default_factory=list)
    validations: list[ValidationRow] = field(default_factory=list)
    days: dict[date, DaySettlement] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)  # to record as seen today


def _json(value: Any) -> Any:
    """JSON from the driver: text, or already decoded when a codec is installed."""
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _parse_snapshot(row: Any) -> Snapshot:
    is_active, created_at, tz, version, records_json, history_json, links_json = row
    records: dict[tuple[date, str], StoredRecord] = {}
    for item in _json(records_json):
        rec = StoredRecord(
            day=date.fromisoformat(item[0]),
            source=item[1],
            steps=item[2],
            approved_steps=item[3],
            device_ids=list(item[4] or []),
            deleted=item[5],
            manual=item[6],
            client_record_id=item[7],
            client_record_version=item[8],
            status=item[9],
            reasons=list(item[10] or []),
            has_intervals=item[11],
        )
        records[(rec.day, rec.source)] = rec
    history = {date.fromisoformat(k): int(v) for k, v in _json(history_json).items()}
    marks, burst = _json(links_json)
    if marks is None and burst <= 1:
        links = NO_LINKS
    else:
        device_n, series, cleared = marks or (0, 0, {})
        links = LinkFacts(device_n, burst, series, cleared)
    return Snapshot(is_active, created_at, tz, version, records, history, links)


def local_today(timezone: str, now: datetime | None = None) -> date:
    try:
        zone = ZoneInfo(timezone)
    except Exception:  # an unknown zone in old data: fall back to UTC rather than fail the sync
        zone = ZoneInfo("UTC")
    return (now or datetime.now(UTC)).astimezone(zone).date()


def dedupe(records: Sequence[StepRecordIn]) -> tuple[list[StepRecordIn], list[int], set[int]]:
    """One record per (day, source): the highest client version, else the last one sent.

    Returns the kept records, for each input the position of its kept record, and the set of
    input positions that were kept (the others are answered as duplicates).
    """
    winner: dict[tuple[date, str], int] = {}
    for index, record in enumerate(records):
        key = (record.date, record.source)
        current = winner.get(key)
        if current is None or (record.client_record_version or -1) >= (
            records[current].client_record_version or -1
        ):
            winner[key] = index
    kept_inputs = sorted(winner.values())
    position_of = {input_index: i for i, input_index in enumerate(kept_inputs)}
    kept_position = [position_of[winner[(r.date, r.source)]] for r in records]
    return [records[i] for i in kept_inputs], kept_position, set(kept_inputs)


def _is_stale(incoming: StepRecordIn, stored: StoredRecord | None) -> bool:
    """Health Connect / HealthKit semantics: a versioned record replaces only a lower version."""
    if stored is None or incoming.client_record_version is None:
        return False
    if stored.client_record_version is None:
        return False
    if incoming.client_record_id and stored.client_record_id not in (
        None,
        incoming.client_record_id,
    ):
        return False  # a different client record took over this day: compare nothing
    return incoming.client_record_version <= stored.client_record_version


def _is_unchanged(incoming: StepRecordIn, stored: StoredRecord | None) -> bool:
    if stored is None:
        return False
    return (
        stored.steps == incoming.steps
        and stored.deleted == incoming.deleted
        and stored.manual == incoming.manual
        and stored.client_record_version == incoming.client_record_version
        and (incoming.device_id is None or incoming.device_id in stored.device_ids)
        and stored.has_intervals == (incoming.intervals is not None)
    )


def plan_sync(
    records: Sequence[StepRecordIn],
    snapshot: Snapshot,
    settings: Mapping[str, Any],
    *,
    today: date,
    rules: EarnRules,
    hold: bool = False,
) -> Plan:
    """Judge every record and settle every touched day, each by the earn rule in force on that
    day (a re-sync of an old day is priced as that day was). Pure: no I/O, no clock.

    hold=True (a steps issuance budget had no room for this sync's coins): every record the
    rules approve goes to review instead, reason `issuance_budget`: its coins are held as
    pending and paid by steps:release_budget_holds when there is room."""
    plan = Plan()
    created_local = local_today(snapshot.timezone, snapshot.created_at)
    # the day's records as they will be after this batch (stored, overlaid with the batch)
    day_state: dict[date, dict[str, StoredRecord]] = {}
    for (day, source), rec in snapshot.records.items():
        day_state.setdefault(day, {})[source] = rec
    touched: set[date] = set()

    stored_records = snapshot.records
    history = snapshot.history
    index = history_index(history)  # shared by every record's rules (read only)
    links = snapshot.links
    results = plan.results
    for incoming in records:
        day, source = incoming.date, incoming.source
        stored = stored_records.get((day, source))
        if stored is not None:
            stale = _is_stale(incoming, stored)
            if stale or _is_unchanged(incoming, stored):
                reasons = ["stale_version"] if stale else stored.reasons
                results.append(_result(incoming, stored.status, reasons, unchanged=True))
                continue
        day_records = day_state.get(day)
        if day_records is None:
            day_records = day_state[day] = {}
        if incoming.deleted:
            if stored is None:
                results.append(_result(incoming, "approved", ["withdrawn"], unchanged=True))
                continue
            updated = _replace(
                stored, incoming, status=stored.status, approved=stored.approved_steps
            )
            updated.deleted = True
            updated.reasons = ["withdrawn"]
            day_records[source] = updated
            plan.records.append(_record_row(updated, incoming))
            touched.add(day)
            results.append(_result(incoming, "approved", ["withdrawn"]))
            continue

        device_id = incoming.device_id
        devices = set()
        others = []
        for other_source, rec in day_records.items():
            devices.update(rec.device_ids)
            if other_source != source and not rec.deleted and rec.status != "rejected":
                others.append(OtherSource(rec.source, rec.steps))
        if device_id:
            devices.add(device_id)
        intervals = incoming.intervals
        # positional: a call with keywords costs a 500-record batch ~0.5 ms more
        step_input = StepInput(
            day,
            incoming.steps,
            source,
            incoming.manual,
            device_id,
            () if not intervals else tuple(Interval(i.start, i.end, i.steps) for i in intervals),
        )
        context = RuleContext(
            today, created_local, history, others, frozenset(devices), links, {}, index
        )
        decision = evaluate(step_input, context, settings)
        if hold and decision.status == "approved":
            decision = Decision("flagged", (*decision.hits, BUDGET_HIT), decision.risk_score)
        hits = decision.hits
        storable = not hits or not any(hit.code in UNSTORABLE for hit in hits)
        # a clean approval of a record that stands cleanly approved restates its decision
        if hits or decision.status != "approved" or not _stands_clean(stored):
            plan.validations.append(
                ValidationRow(
                    day,
                    source,
                    incoming.steps,
                    decision.status,
                    [hit.as_json() for hit in hits],
                    decision.risk_score,
                    storable,
                )
            )
        reasons = decision.reasons
        results.append(_result(incoming, decision.status, reasons))
        if not storable:
            continue
        status = decision.status
        approved = (
            incoming.steps
            if status == "approved"
            else (stored.approved_steps if stored and not stored.deleted else 0)
        )
        # the stored record as it will be (what _replace builds, then its reasons and devices)
        # and its row, built once each (a 500-record batch built each twice)
        device_ids = list(stored.device_ids) if stored else []
        if device_id and device_id not in device_ids:
            device_ids = [*device_ids, device_id][-20:]
        manual = incoming.manual or source == "manual"
        day_records[source] = StoredRecord(
            day,
            source,
            incoming.steps,
            approved,
            device_ids,
            False,
            manual,
            incoming.client_record_id,
            incoming.client_record_version,
            status,
            reasons,
            intervals is not None,
        )
        plan.records.append(
            RecordRow(
                day,
                source,
                incoming.steps,
                approved,
                device_ids,
                incoming.client_record_id,
                incoming.client_record_version,
                manual,
                False,
                None if intervals is None else interval_json(intervals),
                status,
                reasons,
            )
        )
        touched.add(day)

    for day in sorted(touched):
        plan.days[day] = settle_day(day_state[day].values(), rules.for_day(day))
    # devices the synced days' stored records do not hold yet: recorded by the apply function
    # (at most about once per walker, device and day; stepcoin.fairplay links accounts by them)
    new_devices: set[str] = set()
    for r in records:
        device_id = r.device_id
        if device_id and device_id not in new_devices:
            stored = stored_records.get((r.date, r.source))
            if stored is None or device_id not in stored.device_ids:
                new_devices.add(device_id)
    plan.devices = sorted(new_devices)
    return plan


def _stands_clean(stored: StoredRecord | None) -> bool:
    """The record's standing decision is the rules' approval without a hit (not a reviewer's,
    not a withdrawal): a new version judged the same way restates it, and writes no decision
    row (its coins are in the ledger under the day's version, its steps in the record)."""
    return (
        stored is not None
        and stored.status == "approved"
        and not stored.reasons
        and not stored.deleted
    )


def _replace(
    stored: StoredRecord | None, incoming: StepRecordIn, *, status: str, approved: int
) -> StoredRecord:
    return StoredRecord(
        day=incoming.date,
        source=incoming.source,
        steps=incoming.steps if not incoming.deleted else (stored.steps if stored else 0),
        approved_steps=approved,
        device_ids=list(stored.device_ids) if stored else [],
        deleted=False,
        manual=incoming.manual or incoming.source == "manual",
        client_record_id=incoming.client_record_id,
        client_record_version=incoming.client_record_version,
        status=status,
        reasons=[],
        has_intervals=incoming.intervals is not None,
    )


def _record_row(rec: StoredRecord, incoming: StepRecordIn) -> RecordRow:
    return RecordRow(
        day=rec.day,
        source=rec.source,
        steps=rec.steps,
        approved_steps=rec.approved_steps,
        device_ids=rec.device_ids,
        client_record_id=rec.client_record_id,
        client_record_version=rec.client_record_version,
        manual=rec.manual,
        deleted=rec.deleted,
        intervals=interval_json(incoming.intervals),
        status=rec.status,
        reasons=rec.reasons,
    )


def _result(
    incoming: StepRecordIn, status: str, reasons: list[str], *, unchanged: bool = False
) -> dict[str, Any]:
    return {
        "date": incoming.date,
        "source": incoming.source,
        "status": status,
        "coins_awarded": 0,
        "coins_pending": 0,
        "reasons": list(reasons),
        "_unchanged": unchanged,
    }


async def sync_steps(
    database: Database, user_id: uuid.UUID, records: Sequence[StepRecordIn]
) -> list[dict[str, Any]]:
    """POST /v1/steps: judge, settle and pay a batch; returns one result per input record.

    On a connection of the fast pool (db.Database.fast_pool): every statement stands alone in
    autocommit, no BEGIN/COMMIT round trips and no reset on release; the apply function is the
    one write and is atomic on its own.
    """
    async with (await database.fast_pool()).acquire() as driver:
        return await sync_on(driver, user_id, records)


async def sync_on(
    driver: Any, user_id: uuid.UUID, records: Sequence[StepRecordIn]
) -> list[dict[str, Any]]:
    """sync_steps on a bare asyncpg connection outside any transaction."""
    kept, kept_position, kept_inputs = dedupe(records)
    dates = sorted({r.date for r in kept})
    settings = await runtime_settings.all_raw(driver)
    rules = await earn_rules.all_raw(driver)  # cached like the settings: no read per sync
    baseline_days = int(settings["anticheat.baseline_days"])
    device_since = datetime.now(UTC).date() - timedelta(
        days=int(settings["fairplay.device_window_days"])
    )
    burst = timedelta(hours=int(settings["fairplay.signup_burst_hours"]))
    budget = await budgets.steps_shares(driver, user_id)  # cached too; None: no steps budget
    hold = False
    for _attempt in range(MAX_ATTEMPTS):
        row = await driver.fetchrow(
            SNAPSHOT_SQL,
            user_id,
            dates,
            dates[0] - timedelta(days=baseline_days),
            dates[-1],
            burst,
        )
        if row is None or not row[0]:
            raise account_gone()
        snapshot = _parse_snapshot(row)
        plan = plan_sync(
            kept,
            snapshot,
            settings,
            today=local_today(snapshot.timezone),
            rules=rules,
            hold=hold,
        )
        if not plan.records and not plan.validations:
            break  # nothing new: an idempotent resend
        # held, the sync pays nothing new, except when a deletion leaves another approved
        # source credited with more (rare, at most one day's coins): not held by the budget
        payload = SyncPayload(
            plan.records,
            plan.validations,
            day_rows(plan.days),
            None if hold else budget,
            plan.devices,
            device_since if plan.devices else None,
            snapshot.links.device_accounts if plan.devices else None,
        )
        outcome = parse_outcome(
            await driver.fetchval(APPLY_SQL, user_id, snapshot.version, payload.to_json())
        )
        if outcome.conflict:
            continue
        if outcome.budget:  # no room for its coins: the same sync again, its coins held
            hold = True
            continue
        if outcome.no_wallet:
            raise account_gone()
        _attribute_coins(plan, outcome.days)
        break
    else:
        raise Conflict(
            "Your steps are being updated by another request; retry.", code="sync_conflict"
        )
    results = []
    for index, position in enumerate(kept_position):
        result = dict(plan.results[position])
        del result["_unchanged"]
        if index not in kept_inputs:
            result["coins_awarded"] = 0
            result["coins_pending"] = 0
            result["reasons"] = [*result["reasons"], "duplicate_in_batch"]
        results.append(result)
    return results


def results_json(results: list[dict[str, Any]]) -> bytes:
    """The 200 body of POST /v1/steps: the bytes FastAPI writes through StepSyncOut (dates as
    YYYY-MM-DD, fields in the model's order), without the model (tests/steps/test_fast_sync.py
    compares them)."""
    return orjson.dumps({"results": results})


def _attribute_coins(plan: Plan, days: Sequence[DayOutcome]) -> None:
    """Give each day's coin change to the result of its credited source (or, when that source
    is not in this batch, to the first changed record of the day)."""
    changed_by_day: dict[date, list[dict[str, Any]]] = {}
    for result in plan.results:  # once, not once per day: a 500-record batch has ~170 days
        if not result["_unchanged"]:
            changed_by_day.setdefault(result["date"], []).append(result)
    for outcome in days:
        changed = changed_by_day.get(outcome.day)
        if not changed:
            continue
        credited = plan.days[outcome.day].credited_source
        target = next((r for r in changed if r["source"] == credited), changed[0])
        target["coins_awarded"] = outcome.coins_delta
        target["coins_pending"] = outcome.coins_pending

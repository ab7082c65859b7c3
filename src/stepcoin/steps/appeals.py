"""Appeals: a walker sends a rejected day back to the review queue once, with a note.

The appeal is a new decision of the day's rejected records: each becomes `flagged` again with
one rule hit `appeal` (the walker's note and the original decision), written by the step
loop's own apply function. So the queue lists it, its coins are held as pending like any
flagged record's, and the reviewer's approve or reject (review.decide) pays or releases them,
audited like any review. Once per day (every source of it), only a day with a rejected record,
and only within APPEAL_DAYS of the rejection (docs/steps.md, "Appeals").
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.errors import Conflict, InvalidInput, NotFound, account_gone
from stepcoin.steps.earn_rules import earn_rules
from stepcoin.steps.payload import RecordRow, SyncPayload, ValidationRow, apply_locked, day_rows
from stepcoin.steps.settlement import DayRecord, settle_day

APPEAL_CODE = "appeal"
APPEAL_DAYS = 30  # a rejection older than this cannot be appealed
MAX_APPEAL_NOTE = 1000
# the decisions that are appeals (a jsonb containment the GIN-less table answers per day)
IS_APPEAL = 'rule_hits @> CAST(\'[{"code": "appeal"}]\' AS jsonb)'

_DAY_SQL = f"""
SELECT r.source, r.steps, r.approved_steps, r.device_ids, r.client_record_id,
       r.client_record_version, r.is_manual, r.is_deleted, r.intervals, r.status, r.reasons,
       v.id AS validation_id, v.status AS decided, v.rule_hits, v.risk_score, v.note,
       v.reviewed_by, v.reviewed_at, v.created_at AS decided_at,
       EXISTS (SELECT 1 FROM step_validations a WHERE a.user_id = r.user_id
               AND a.recorded_date = r.recorded_date AND a.{IS_APPEAL}) AS appealed
FROM step_records r LEFT JOIN step_validations v ON v.id = r.validation_id
WHERE r.user_id = :u AND r.recorded_date = :d
ORDER BY r.source
"""


def check_appeal_note(note: str) -> str:
    note = note.strip()
    if not note:
        raise InvalidInput("Say why the day should be looked at again.", code="note")
    if len(note) > MAX_APPEAL_NOTE:
        raise InvalidInput(f"The note is longer than {MAX_APPEAL_NOTE} characters.", code="note")
    return note


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


async def appeal_day(
    session: AsyncSession,
    user_id: uuid.UUID,
    day: date,
    note: str,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """POST /v1/steps/{date}/appeal in the caller's transaction: the day's rejected records go
    back to review. 404 `step_day_not_found` (no record that day), 409 `not_rejected`,
    409 `already_appealed`, 422 `appeal_window_closed` (rejected more than APPEAL_DAYS ago)."""
    note = check_appeal_note(note)
    owner = (
        await session.execute(
            text(
                "SELECT w.version, u.is_active FROM wallets w JOIN users u ON u.id = w.user_id "
                "WHERE w.user_id = :u FOR UPDATE OF w"
            ),
            {"u": user_id},
        )
    ).one_or_none()
    if owner is None or not owner.is_active:
        raise account_gone()
    rows = (await session.execute(text(_DAY_SQL), {"u": user_id, "d": day})).mappings().all()
    if not rows:
        raise NotFound("No steps were synced for this day.", code="step_day_not_found")
    if any(r["appealed"] for r in rows):
        raise Conflict(
            "This day was appealed already; a day is appealed once.", code="already_appealed"
        )
    rejected = [r for r in rows if r["status"] == "rejected" and not r["is_deleted"]]
    if not rejected:
        raise Conflict("Only a rejected day can be appealed.", code="not_rejected")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=APPEAL_DAYS)
    if all((r["reviewed_at"] or r["decided_at"] or cutoff) <= cutoff for r in rejected):
        raise InvalidInput(
            f"Rejections older than {APPEAL_DAYS} days cannot be appealed.",
            code="appeal_window_closed",
        )
    rejected = [r for r in rejected if (r["reviewed_at"] or r["decided_at"]) > cutoff]
    appealed = {r["source"] for r in rejected}

    records: list[RecordRow] = []
    validations: list[ValidationRow] = []
    for r in rejected:
        original = {
            "validation_id": r["validation_id"],
            "status": r["decided"] or "rejected",
            "reasons": list(r["reasons"] or []),
            "rule_hits": _json(r["rule_hits"]) or [],
            "reviewed_by": str(r["reviewed_by"]) if r["reviewed_by"] else None,
            "reviewed_at": r["reviewed_at"].isoformat() if r["reviewed_at"] else None,
            "decided_at": r["decided_at"].isoformat() if r["decided_at"] else None,
            "note": r["note"],
        }
        hit = {
            "code": APPEAL_CODE,
            "action": "flag",
            "observed": "appealed by the walker",
            "threshold": f"once, within {APPEAL_DAYS} days",
            "message": note,
            "note": note,
            "original": original,
        }
        validations.append(
            ValidationRow(
                day=day,
                source=r["source"],
                steps=r["steps"],
                status="flagged",
                rule_hits=[hit],
                risk_score=r["risk_score"] or 0,
                stored=True,
            )
        )
        records.append(
            RecordRow(
                day=day,
                source=r["source"],
                steps=r["steps"],
                approved_steps=r["approved_steps"],
                device_ids=list(r["device_ids"] or []),
                client_record_id=r["client_record_id"],
                client_record_version=r["client_record_version"],
                manual=r["is_manual"],
                deleted=False,
                intervals=_json(r["intervals"]),
                status="flagged",
                reasons=[APPEAL_CODE],
            )
        )
    rule = (await earn_rules.all(session)).for_day(day)
    settlement = settle_day(
        [
            DayRecord(
                r["source"],
                r["steps"],
                r["approved_steps"],
                "flagged" if r["source"] in appealed else r["status"],
                r["is_deleted"],
                r["intervals"] is not None,
            )
            for r in rows
        ],
        rule,
    )
    # no budget: the approved steps are unchanged, so nothing new is paid, only held
    payload = SyncPayload(records, validations, day_rows({day: settlement}), None)
    outcome = await apply_locked(session, user_id, owner.version, payload)
    return {
        "date": day,
        "sources": sorted(appealed),
        "status": "pending",
        "note": note,
        "coins_pending": outcome.days[0].coins_pending if outcome.days else 0,
    }


def appeal_state(validation: dict[str, Any] | None) -> dict[str, Any] | None:
    """A walker's view of an appeal decision row (None: the day was not appealed)."""
    if validation is None:
        return None
    if validation["superseded_by"] is not None:
        state = "withdrawn"  # a newer sync of the day replaced it
    elif validation["reviewed_at"] is None:
        state = "pending"
    else:
        state = validation["status"]
    hits = _json(validation["rule_hits"]) or []
    note = next((h.get("note") for h in hits if h.get("code") == APPEAL_CODE), None)
    return {
        "status": state,
        "note": note,
        "appealed_at": validation["created_at"],
        "decided_at": validation["reviewed_at"],
        "review_note": validation["note"] if validation["reviewed_at"] else None,
    }

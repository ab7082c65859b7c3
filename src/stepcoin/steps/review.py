"""The review queue: flagged records wait for a person; approving pays, rejecting releases."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.db import Database, SessionDriver, session_scope
from stepcoin.errors import (
    AppError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    account_gone,
)
from stepcoin.fairplay import links
from stepcoin.notify import service as notify
from stepcoin.steps.appeals import APPEAL_CODE, IS_APPEAL, appeal_state
from stepcoin.steps.earn_rules import earn_rules
from stepcoin.steps.service import local_today
from stepcoin.steps.settlement import DayRecord, settle_day
from stepcoin.users import repository as users_repository
from stepcoin.wallet import budgets

HISTORY_DAYS = 28
MAX_NOTE = 1000  # a reviewer's note, shown to the walker; optional for approve and reject
MAX_BULK = 200  # records decided at once (one transaction)
DEFAULT_STEP_DAYS = 7  # a walker's own list without a range: the last week
MAX_RANGE_DAYS = 366


def encode_cursor(created_at: datetime, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        stamp, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(stamp), int(row_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "The cursor is not one this API gave out.", code="invalid_cursor"
        ) from exc


async def list_validations(
    session: AsyncSession, *, status: str, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Oldest first; for `flagged`, only what still waits (not reviewed, not superseded)."""
    params: dict[str, Any] = {"status": status, "limit": limit + 1}
    where = ["v.status = :status"]
    if status == "flagged":
        where.append("v.reviewed_at IS NULL AND v.superseded_by IS NULL")
    if cursor:
        params["after_at"], params["after_id"] = decode_cursor(cursor)
        where.append("(v.created_at, v.id) > (:after_at, :after_id)")
    rows = (
        (
            await session.execute(
                text(
                    f"""
                    SELECT v.id, v.user_id, v.recorded_date, v.source, v.steps, v.status,
                           v.rule_hits, v.risk_score, v.coins_awarded, v.coins_pending,
                           v.created_at, v.reviewed_by, v.reviewed_at, v.note, v.superseded_by,
                           u.email, u.full_name, u.created_at AS user_created_at, u.is_active
                    FROM step_validations v JOIN users u ON u.id = v.user_id
                    WHERE {" AND ".join(where)}
                    ORDER BY v.created_at, v.id
                    LIMIT :limit
                    """
                ),
                params,
            )
        )
        .mappings()
        .all()
    )
    page = [dict(r) for r in rows[:limit]]
    next_cursor = (
        encode_cursor(page[-1]["created_at"], page[-1]["id"]) if len(rows) > limit else None
    )
    await _attach_context(session, page)
    return {"items": [_queue_item(r) for r in page], "next_cursor": next_cursor}


async def _attach_context(session: AsyncSession, page: list[dict[str, Any]]) -> None:
    """The user's last 28 days, the day's other sources and the user's linked accounts
    (stepcoin.fairplay.links), for the whole page in three queries."""
    if not page:
        return
    users = [r["user_id"] for r in page]
    days = [r["recorded_date"] for r in page]
    earliest = min(days) - timedelta(days=HISTORY_DAYS)
    history_rows = (
        await session.execute(
            text(
                "SELECT user_id, recorded_date, credited_steps, coins_paid FROM step_days "
                "WHERE user_id = ANY(:users) AND recorded_date >= :earliest "
                "AND recorded_date <= :latest ORDER BY recorded_date"
            ),
            {"users": users, "earliest": earliest, "latest": max(days)},
        )
    ).all()
    source_rows = (
        await session.execute(
            text(
                "SELECT user_id, recorded_date, source, steps, status, is_deleted, device_ids "
                "FROM step_records WHERE user_id = ANY(:users) AND recorded_date = ANY(:days)"
            ),
            {"users": users, "days": days},
        )
    ).all()
    linked = await links.links_of_many(session, users)
    for item in page:
        item["linked_accounts"] = [link.as_json() for link in linked[item["user_id"]]]
        start = item["recorded_date"] - timedelta(days=HISTORY_DAYS)
        item["history"] = [
            {
                "date": r.recorded_date,
                "credited_steps": r.credited_steps,
                "coins_paid": r.coins_paid,
            }
            for r in history_rows
            if r.user_id == item["user_id"] and start <= r.recorded_date < item["recorded_date"]
        ]
        item["day_sources"] = [
            {
                "source": r.source,
                "steps": r.steps,
                "status": r.status,
                "deleted": r.is_deleted,
                "devices": len(r.device_ids or []),
            }
            for r in source_rows
            if r.user_id == item["user_id"] and r.recorded_date == item["recorded_date"]
        ]


def _queue_item(row: dict[str, Any]) -> dict[str, Any]:
    hits = row["rule_hits"]
    if isinstance(hits, str):
        hits = orjson.loads(hits)
    return {
        "id": row["id"],
        "user": {
            "id": row["user_id"],
            "email": row["email"],
            "full_name": row["full_name"],
            "created_at": row["user_created_at"],
            "is_active": row["is_active"],
        },
        "date": row["recorded_date"],
        "source": row["source"],
        "steps": row["steps"],
        "status": row["status"],
        "rule_hits": hits,
        "risk_score": row["risk_score"],
        "coins_awarded": row["coins_awarded"],
        "coins_pending": row["coins_pending"],
        "created_at": row["created_at"],
        "reviewed_by": row["reviewed_by"],
        "reviewed_at": row["reviewed_at"],
        "note": row["note"],
        "superseded_by": row["superseded_by"],
        "appeal": _appeal_of(hits),
        "history": row.get("history", []),
        "day_sources": row.get("day_sources", []),
        "linked_accounts": row.get("linked_accounts", []),
    }


def _appeal_of(hits: Any) -> dict[str, Any] | None:
    """An appeal's note and the decision it appeals (None: not an appeal)."""
    for hit in hits or []:
        if isinstance(hit, dict) and hit.get("code") == APPEAL_CODE:
            return {"note": hit.get("note"), "original": hit.get("original") or {}}
    return None


MAX_ATTEMPTS = 8  # reads again while the walker's wallet moves between the read and the write


class NotStaff(Forbidden):
    """The reviewer is not (or no longer) an active member of staff (`decide`'s staff_roles)."""


async def decide(
    driver: Any,
    *,
    validation_id: int,
    reviewer_id: uuid.UUID | None,
    decision: Literal["approved", "rejected"],
    note: str | None,
    staff_roles: Collection[str] | None = None,
) -> dict[str, Any]:
    """Approve (pay the held coins) or reject (release them); audited and the walker notified in
    the same transaction.

    `driver`: a bare asyncpg connection, in autocommit (the hot route, the budget job) or in a
    transaction (stepcoin.db.SessionDriver: the route, the console's bulk decision).
    Two statements and no explicit transaction (steps/sql/review_decide.v2.sql): a read of the
    decision, its day and the wallet's version (stepcoin_review_open); the day settled here
    (settle_day, the one implementation of the rule) with the coins it moves and the walker's
    notification; then stepcoin_review_decide, which locks the wallet and writes all of it only
    if nothing moved since the read (else it is read again). `staff_roles`: the reviewer must be
    an active account of one of these roles, as read with the decision (NotStaff).
    """
    for _attempt in range(MAX_ATTEMPTS):
        opened = await driver.fetchval(REVIEW_OPEN_SQL, validation_id, reviewer_id)
        if opened is None:
            raise NotFound("No such validation.", code="validation_not_found")
        row = _json(opened)
        if staff_roles is not None:
            reviewer = row["reviewer"]  # [role, is_active] or None
            if reviewer is None or not reviewer[1] or reviewer[0] not in staff_roles:
                raise NotStaff("Only active staff review records.", code="forbidden")
        decided, outcome = await _decide_once(
            driver, row, validation_id, reviewer_id, decision, note
        )
        if not outcome.get("conflict"):
            break
    else:
        raise Conflict("The walker's coins are moving; retry.", code="review_conflict")
    assert not outcome.get("error"), outcome  # the wallet was read with the decision
    if outcome.get("budget"):
        raise Conflict(
            "The steps issuance budget has no room for these coins now; they stay held and are "
            "paid when there is room (a new period or a higher cap).",
            code="issuance_budget_reached",
        )
    return decided


async def _decide_once(
    driver: Any,
    row: dict[str, Any],
    validation_id: int,
    reviewer_id: uuid.UUID | None,
    decision: Literal["approved", "rejected"],
    note: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One read's decision: the answer and stepcoin_review_decide's outcome."""
    user_id = uuid.UUID(row["user_id"])
    if reviewer_id is not None and str(reviewer_id) == str(user_id):
        raise Forbidden("Nobody reviews their own records.", code="own_record")
    if row["superseded"]:
        raise Conflict("A newer sync replaced this record; review that one.", code="superseded")
    if row["status"] != "flagged" or row["reviewed"]:
        raise Conflict("This record was already reviewed.", code="already_reviewed")
    day, source = date.fromisoformat(row["day"]), row["source"]
    rule = (await earn_rules.all_raw(driver)).for_day(day)  # the day's own rule, however late
    settlement = settle_day(_records_decided(row["records"], source, decision), rule)
    budget = budgets.steps_shares_of(row["budgets"], user_id) if decision == "approved" else None
    # the coins the decision moves, as stepcoin_review_decide computes them under its lock (a
    # clawback never takes the balance below zero); it writes nothing if they differ
    delta = settlement.coins_paid - int(row["paid"])
    if delta < 0:
        delta = max(delta, -int(row["available"]))
    _, log_params = audit.insert_statement(
        admin_id=reviewer_id,
        action=f"validation.{'approve' if decision == 'approved' else 'reject'}",
        entity_type="step_validation",
        entity_id=str(validation_id),
        before={"status": "flagged", "coins_pending": row["coins_pending"]},
        after={"status": decision, "coins_awarded": 0, "note": note},  # the coins: the SQL's
        extra={
            "user_id": str(user_id),
            "date": day.isoformat(),
            "source": source,
            **({"appeal": True} if row["appeal"] else {}),
        },
    )
    kinds, reachable = row["reach"]
    payload = {
        "validation": validation_id,
        "decision": decision,
        "reviewer": str(reviewer_id) if reviewer_id is not None else None,
        "note": note,
        "day": day,
        "source": source,
        "credited_source": settlement.credited_source,
        "credited_steps": settlement.credited_steps,
        "coins_paid": settlement.coins_paid,
        "coins_pending": settlement.coins_pending,
        "budget": budget,
        "expect_delta": delta,
        "notice": notify.note_row(
            outcome_note(validation_id, user_id, day, decision, delta, note), kinds, reachable
        ),
        "audit": {
            "action": log_params["audit_action"],
            "entity_type": log_params["audit_entity_type"],
            "entity_id": log_params["audit_entity_id"],
            "changes": orjson.Fragment(log_params["audit_changes"]),
        },
    }
    outcome = _json(
        await driver.fetchval(
            REVIEW_DECIDE_SQL, user_id, row["version"], orjson.dumps(payload).decode()
        )
    )
    decided = {
        "id": validation_id,
        "status": decision,
        "user_id": user_id,
        "date": day,
        "source": source,
        "coins_awarded": delta,
        "note": note,
    }
    return decided, outcome


REVIEW_OPEN_SQL = "SELECT stepcoin_review_open($1::bigint, $2::uuid)"
REVIEW_DECIDE_SQL = "SELECT stepcoin_review_decide($1::uuid, $2::bigint, $3::jsonb)"


def _json(value: Any) -> Any:
    """A jsonb answer: text, or decoded JSON when a codec is installed."""
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _records_decided(
    records: Sequence[Sequence[Any]], source: str, decision: str
) -> list[DayRecord]:
    """The day's records as they will be once the decision is written: the decided source
    approved (its steps become its approved steps) or rejected (its approved steps stay)."""
    day_records = []
    for r_source, r_steps, r_approved, r_status, r_deleted, r_intervals in records:
        status, approved = r_status, r_approved
        if r_source == source:
            status = decision
            approved = r_steps if decision == "approved" else r_approved
        day_records.append(DayRecord(r_source, r_steps, approved, status, r_deleted, r_intervals))
    return day_records


def outcome_note(
    validation_id: int,
    user_id: uuid.UUID,
    day: date,
    decision: str,
    coins: int,
    note: str | None,
) -> notify.Note:
    """What the walker is told of how the review of a day ended (inbox and push)."""
    when = f"{day:%A} {day.day} {day:%B}"
    if decision == "approved":
        title = "Your steps are approved"
        body = f"{when}: {coins} coins are in your wallet." if coins else f"{when}: approved."
    else:
        title = "Your steps were not approved"
        body = f"{when}: {note}" if note else f"{when}: see the app for the reason."
    return notify.Note(
        user_id,
        "review_outcome",
        title,
        body,
        f"review:{validation_id}",
        {"date": day.isoformat(), "status": decision, "coins": coins},
        collapse_key=f"review:{day.isoformat()}",
    )


async def list_user_steps(
    session: AsyncSession, user_id: uuid.UUID, start: date, end: date
) -> list[dict[str, Any]]:
    rows = (
        (
            await session.execute(
                text(
                    f"""
                    SELECT r.recorded_date AS date, r.source, r.steps, r.status, r.reasons,
                           r.is_deleted AS deleted, r.synced_at,
                           coalesce(d.credited_source = r.source, false) AS credited,
                           v.note AS review_note, a.appeal
                    FROM step_records r
                    LEFT JOIN step_days d
                      ON d.user_id = r.user_id AND d.recorded_date = r.recorded_date
                    LEFT JOIN step_validations v ON v.id = r.validation_id
                    LEFT JOIN LATERAL (
                        SELECT json_build_object(
                                   'status', x.status, 'rule_hits', x.rule_hits,
                                   'created_at', x.created_at, 'reviewed_at', x.reviewed_at,
                                   'note', x.note, 'superseded_by', x.superseded_by) AS appeal
                        FROM step_validations x
                        WHERE x.user_id = r.user_id AND x.recorded_date = r.recorded_date
                          AND x.source = r.source AND x.{IS_APPEAL}
                        ORDER BY x.id DESC LIMIT 1
                    ) a ON true
                    WHERE r.user_id = :u AND r.recorded_date BETWEEN :start AND :end
                    ORDER BY r.recorded_date DESC, r.source
                    """
                ),
                {"u": user_id, "start": start, "end": end},
            )
        )
        .mappings()
        .all()
    )
    return [_with_appeal(dict(r)) for r in rows]


def _with_appeal(row: dict[str, Any]) -> dict[str, Any]:
    raw = row.pop("appeal")
    if isinstance(raw, (str, bytes)):
        raw = orjson.loads(raw)
    if raw is not None:
        for stamp in ("created_at", "reviewed_at"):
            if raw[stamp] is not None:
                raw[stamp] = datetime.fromisoformat(raw[stamp])
    row["appeal"] = appeal_state(raw)
    return row


def check_note(note: str | None) -> str | None:
    """The reviewer's note: optional for approving and rejecting alike (API.md: `note?`), at
    most MAX_NOTE characters; an empty note is no note."""
    if not note:
        return None
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"The note is longer than {MAX_NOTE} characters.", code="note")
    return note


async def decide_many(
    session: AsyncSession,
    *,
    validation_ids: Sequence[int],
    reviewer_id: uuid.UUID,
    decision: Literal["approved", "rejected"],
    note: str | None,
) -> list[dict[str, Any]]:
    """Decide several records in the caller's transaction: the first failure raises (naming
    its record) and the caller's rollback undoes them all.

    The owners' wallets are locked in user-id order first, so two bulk decisions cannot
    deadlock (decide() locks each wallet again, which is then a no-op)."""
    ids = list(dict.fromkeys(validation_ids))
    if not ids:
        raise InvalidInput("Select at least one record.", code="invalid_ids")
    if len(ids) > MAX_BULK:
        raise InvalidInput(f"At most {MAX_BULK} records at once.", code="invalid_ids")
    note = check_note(note)
    await session.execute(
        text(
            "SELECT 1 FROM wallets WHERE user_id IN (SELECT user_id FROM step_validations "
            "WHERE id = ANY(:ids)) ORDER BY user_id FOR UPDATE"
        ),
        {"ids": ids},
    )
    decided = []
    driver = SessionDriver(session)
    for validation_id in ids:
        try:
            decided.append(
                await decide(
                    driver,
                    validation_id=validation_id,
                    reviewer_id=reviewer_id,
                    decision=decision,
                    note=note,
                )
            )
        except AppError as exc:
            exc.detail = f"Record {validation_id}: {exc.detail}"
            raise
    return decided


@dataclass(frozen=True, slots=True)
class QueueSummary:
    """The review queue's size and when its oldest record arrived."""

    size: int
    oldest: datetime | None

    def age(self, now: datetime | None = None) -> str:
        """How long the oldest record has waited: '3 d 4 h', '2 h 5 min', '7 min' ('—': none)."""
        if self.oldest is None:
            return "—"
        elapsed = (now or datetime.now(UTC)) - self.oldest
        minutes = max(0, int(elapsed.total_seconds() // 60))
        days, rest = divmod(minutes, 24 * 60)
        hours, mins = divmod(rest, 60)
        if days:
            return f"{days} d {hours} h"
        if hours:
            return f"{hours} h {mins} min"
        return f"{mins} min"


async def queue_summary(session: AsyncSession) -> QueueSummary:
    """Flagged records still waiting for a person, and when the oldest arrived.

    The same definition as list_validations(status="flagged"): flagged, not reviewed, not
    superseded by a newer sync. Cost: an index-only scan of the partial index
    ix_step_validations_review_queue, proportional to the queue (not to the table).
    """
    row = (
        await session.execute(
            text(
                "SELECT count(*) AS size, min(created_at) AS oldest FROM step_validations "
                "WHERE status = 'flagged' AND reviewed_at IS NULL AND superseded_by IS NULL"
            )
        )
    ).one()
    return QueueSummary(size=int(row.size), oldest=row.oldest)


async def list_own_steps(
    session: AsyncSession, user_id: uuid.UUID, start: date | None, end: date | None
) -> list[dict[str, Any]]:
    """A walker's own records in [start, end] (default: the last DEFAULT_STEP_DAYS days up to
    today in the walker's timezone); at most MAX_RANGE_DAYS days; 401 for a closed account."""
    timezone = await users_repository.timezone_if_active(session, user_id)
    if timezone is None:
        raise account_gone()
    end = end or local_today(timezone)
    start = start or end - timedelta(days=DEFAULT_STEP_DAYS - 1)
    if start > end:
        raise InvalidInput("`from` must not be after `to`.", code="invalid_range")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise InvalidInput(f"At most {MAX_RANGE_DAYS} days at once.", code="invalid_range")
    return await list_user_steps(session, user_id, start, end)


# --- coins a steps issuance budget held (stepcoin.wallet.budgets, apply_sync v6) ---------------

# a decision the budget alone sent to review: its only flag is the budget's. The first four
# conditions are ix_step_validations_budget_held's (migration 0053): the job finds these rows
# without reading the rest of the review queue
_HELD_BY_BUDGET = """
    status = 'flagged' AND reviewed_at IS NULL AND superseded_by IS NULL
    AND rule_hits @> CAST('[{"code": "issuance_budget"}]' AS jsonb)
    AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(rule_hits) h
                    WHERE h ->> 'code' <> 'issuance_budget'
                      AND h ->> 'action' IN ('flag', 'reject'))
"""


async def held_by_budget(session: AsyncSession, *, limit: int) -> list[int]:
    """The oldest decisions held only by a steps budget (their coins pending)."""
    rows = await session.execute(
        text(f"SELECT id FROM step_validations WHERE {_HELD_BY_BUDGET} ORDER BY id LIMIT :n"),
        {"n": limit},
    )
    return [int(r[0]) for r in rows]


async def release_budget_holds(database: Database, *, limit: int = 500) -> int:
    """Approve, oldest first, the records a steps budget held, each in its own transaction and
    through the review's own approval (which checks the budget again), until the budget has no
    room: returns how many were paid. The approvals are the system's (no reviewer) and audited
    as such. Then logs the budgets' alerts (the sync's own statement logs nothing)."""
    async with session_scope(database) as session:
        waiting = await held_by_budget(session, limit=limit)
    paid = 0
    async with (await database.fast_pool()).acquire() as driver:  # each decision commits alone
        for validation_id in waiting:
            try:
                await decide(
                    driver,
                    validation_id=validation_id,
                    reviewer_id=None,
                    decision="approved",
                    note="Paid when the steps issuance budget had room again.",
                )
                paid += 1
            except Conflict as exc:
                if exc.code == "issuance_budget_reached":
                    break  # no room yet: the rest wait for the next run
                # superseded or decided meanwhile: nothing to pay
    async with session_scope(database) as session:
        holding = bool(await held_by_budget(session, limit=1))
        await budgets.note_alerts(session, "steps", holding=holding)
    return paid

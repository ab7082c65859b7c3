"""stepcoin_review_open + stepcoin_review_decide (0041; v2: 0050) against the approval they
replaced: the whole stepcoin_apply_sync for the one day, then one statement for the record, the
decision and the audit row (`former_decide` below, the code before issue 13's change).

Each case builds a state through the API, then decides the same record twice in one
transaction: the former path in a savepoint, every row it wrote read back, rolled back; the
new path on the very same state, read back, rolled back. Both share the transaction's now(),
so timestamps compare exactly; generated ids (admin_logs, notifications) and the ledger's
clock_timestamp() are left out. The answer (or the refusal's code) must match too.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Literal

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.db import SessionDriver, session_scope
from stepcoin.errors import AppError, Conflict, Forbidden, NotFound
from stepcoin.notify import service as notify
from stepcoin.steps import review
from stepcoin.steps.appeals import IS_APPEAL
from stepcoin.steps.earn_rules import earn_rules
from stepcoin.steps.payload import SyncPayload, apply_locked, day_rows
from stepcoin.steps.settlement import DayRecord, settle_day
from stepcoin.wallet import budgets
from tests.conftest import bearer, register
from tests.notify.conftest import android_token
from tests.notify.helpers import add_device
from tests.steps.helpers import ledger_ok, make_admin, rec, sync, wallet
from tests.steps.test_appeals import appeal, rejected_walker
from tests.steps.test_review import flagged_walker, queue
from tests.steps.test_review_rules import admin_id
from tests.steps.test_steps_budget import cap


async def former_decide(
    session: AsyncSession,
    *,
    validation_id: int,
    reviewer_id: uuid.UUID | None,
    decision: Literal["approved", "rejected"],
    note: str | None,
) -> dict[str, Any]:
    """steps.review.decide as it was before 0041 (six round trips through stepcoin_apply_sync)."""
    owner = (
        await session.execute(
            text(
                "SELECT w.user_id, w.version FROM wallets w WHERE w.user_id = "
                "(SELECT v.user_id FROM step_validations v WHERE v.id = :id) FOR UPDATE OF w"
            ),
            {"id": validation_id},
        )
    ).one_or_none()
    if owner is None:
        raise NotFound("No such validation.", code="validation_not_found")
    if owner.user_id == reviewer_id:
        raise Forbidden("Nobody reviews their own records.", code="own_record")
    row = (
        (
            await session.execute(
                text(
                    "SELECT v.id, v.user_id, v.recorded_date, v.source, v.steps, v.status, "
                    f"v.reviewed_at, v.superseded_by, v.coins_pending, v.{IS_APPEAL} AS appeal, "
                    "(SELECT coalesce(json_agg(json_build_array(r.source, r.steps, "
                    "r.approved_steps, r.status, r.is_deleted, r.intervals IS NOT NULL)), "
                    "'[]') FROM step_records r WHERE r.user_id = v.user_id "
                    "AND r.recorded_date = v.recorded_date) AS records "
                    "FROM step_validations v WHERE v.id = :id FOR UPDATE OF v"
                ),
                {"id": validation_id},
            )
        )
        .mappings()
        .one()
    )
    if row["superseded_by"] is not None:
        raise Conflict("superseded", code="superseded")
    if row["status"] != "flagged" or row["reviewed_at"] is not None:
        raise Conflict("already reviewed", code="already_reviewed")
    user_id, day, source = row["user_id"], row["recorded_date"], row["source"]
    records = row["records"]
    if isinstance(records, (str, bytes)):
        records = orjson.loads(records)
    rule = (await earn_rules.all(session)).for_day(day)
    day_records = []
    for r_source, r_steps, r_approved, r_status, r_deleted, r_intervals in records:
        status, approved = r_status, r_approved
        if r_source == source:
            status = decision
            approved = r_steps if decision == "approved" else r_approved
        day_records.append(DayRecord(r_source, r_steps, approved, status, r_deleted, r_intervals))
    settlement = settle_day(day_records, rule)
    budget = None
    if decision == "approved":
        caps = await session.execute(
            text("SELECT period, cap_coins FROM issuance_budgets WHERE source = 'steps'")
        )
        budget = budgets.steps_shares_of(sorted(tuple(c) for c in caps), user_id)
    payload = SyncPayload(days=day_rows({day: settlement}), budget=budget)
    outcome = await apply_locked(session, user_id, owner.version, payload)
    if outcome.budget:
        raise Conflict("budget", code="issuance_budget_reached")
    delta = outcome.days[0].coins_delta if outcome.days else 0
    logged, log_params = audit.insert_statement(
        admin_id=reviewer_id,
        action=f"validation.{'approve' if decision == 'approved' else 'reject'}",
        entity_type="step_validation",
        entity_id=str(validation_id),
        before={"status": "flagged", "coins_pending": row["coins_pending"]},
        after={"status": decision, "coins_awarded": delta, "note": note},
        extra={
            "user_id": str(user_id),
            "date": day.isoformat(),
            "source": source,
            **({"appeal": True} if row["appeal"] else {}),
        },
    )
    await session.execute(
        text(
            "WITH rec AS (UPDATE step_records SET status = :st, approved_steps = CASE WHEN "
            ":approve THEN steps ELSE approved_steps END WHERE user_id = :u "
            "AND recorded_date = :d AND source = :s RETURNING 1), "
            "dec AS (UPDATE step_validations SET status = :st, reviewed_by = :by, "
            "reviewed_at = now(), note = :note, coins_awarded = :delta, coins_pending = 0 "
            f"WHERE id = :id RETURNING 1), logged AS ({logged} RETURNING 1) "
            "SELECT (SELECT count(*) FROM rec), (SELECT count(*) FROM dec), "
            "(SELECT count(*) FROM logged)"
        ),
        {
            "st": decision,
            "approve": decision == "approved",
            "u": user_id,
            "d": day,
            "s": source,
            "by": reviewer_id,
            "note": note,
            "delta": delta,
            "id": validation_id,
            **log_params,
        },
    )
    # the notification as notify_outcome wrote it (the text is review.outcome_note's)
    await notify.notify_many(
        session, [review.outcome_note(validation_id, user_id, day, decision, delta, note)]
    )
    return {
        "id": validation_id,
        "status": decision,
        "user_id": user_id,
        "date": day,
        "source": source,
        "coins_awarded": delta,
        "note": note,
    }


# every row a decision may write, as JSON without generated ids and clock stamps
SNAPSHOT = {
    "wallet": "SELECT to_jsonb(t) FROM wallets t WHERE user_id = :u",
    "ledger": "SELECT to_jsonb(t) - 'id' - 'created_at' FROM coin_transactions t "
    "WHERE user_id = :u ORDER BY id",
    "days": "SELECT to_jsonb(t) FROM step_days t WHERE user_id = :u ORDER BY recorded_date",
    "records": "SELECT to_jsonb(t) FROM step_records t WHERE user_id = :u ORDER BY id",
    "decisions": "SELECT to_jsonb(t) FROM step_validations t WHERE user_id = :u ORDER BY id",
    "audit": "SELECT to_jsonb(t) - 'id' FROM admin_logs t "
    "WHERE entity_type = 'step_validation' ORDER BY id",
    "notifications": "SELECT to_jsonb(t) - 'id' FROM notifications t WHERE user_id = :u "
    "ORDER BY id",
    "dirty": "SELECT to_jsonb(t) FROM achievements_dirty t WHERE user_id = :u",
    "boards": "SELECT to_jsonb(t) - 'id' FROM leaderboard_dirty t WHERE user_id = :u "
    "ORDER BY recorded_date, steps_delta",
    "budgets": "SELECT to_jsonb(t) FROM issuance_usage t ORDER BY 1",
}


async def snapshot(session: AsyncSession, user_id: Any) -> dict[str, list[Any]]:
    out = {}
    for name, sql in SNAPSHOT.items():
        out[name] = [r[0] for r in await session.execute(text(sql), {"u": user_id})]
    return out


async def both_ways(
    engine: Any,
    validation_id: int,
    reviewer: uuid.UUID | None,
    decision: Literal["approved", "rejected"] = "approved",
    note: str | None = None,
) -> tuple[Any, Any]:
    """The former and the new decision of one record on the same state: (answer or refusal
    code, rows) each, compared here; the new path's answer is returned."""
    async with AsyncSession(engine) as session, session.begin():
        user_id = (
            await session.execute(
                text("SELECT user_id FROM step_validations WHERE id = :id"), {"id": validation_id}
            )
        ).scalar_one_or_none()
        results = []
        for way in (former_decide, review.decide):
            point = await session.begin_nested()
            try:
                on = session if way is former_decide else SessionDriver(session)
                answer: Any = await way(
                    on,  # type: ignore[arg-type]
                    validation_id=validation_id,
                    reviewer_id=reviewer,
                    decision=decision,
                    note=note,
                )
            except AppError as exc:
                answer = exc.code
            results.append((answer, await snapshot(session, user_id)))
            await point.rollback()
        await session.rollback()
    (old_answer, old_rows), (new_answer, new_rows) = results
    assert new_answer == old_answer
    for name in SNAPSHOT:
        assert new_rows[name] == old_rows[name], name
    return new_answer, new_rows


async def items_of(client, admin: str, walker: dict) -> list[dict]:
    items = (await queue(client, admin))["items"]
    return [i for i in items if i["user"]["id"] == walker["user"]["id"]]


async def item_of(client, admin: str, walker: dict) -> dict:
    [item] = await items_of(client, admin, walker)
    return item


async def test_approve_and_reject_write_what_the_former_path_wrote(client, engine):
    walker = await flagged_walker(client)
    admin = await make_admin(client, engine)
    item = await item_of(client, admin, walker)
    reviewer = await admin_id(engine)
    answer, rows = await both_ways(engine, item["id"], reviewer, "approved")
    assert answer["coins_awarded"] == 90 and len(rows["ledger"]) == 1
    assert rows["audit"][-1]["changes"]["after"]["coins_awarded"] == 90
    answer, rows = await both_ways(engine, item["id"], reviewer, "rejected", "typed in")
    assert answer["coins_awarded"] == 0 and rows["wallet"][0]["pending_coins"] == 0
    # the system's approval (no reviewer: the budget release) and an unknown record
    answer, rows = await both_ways(engine, item["id"], None, "approved", "room again")
    assert rows["audit"][-1]["admin_id"] is None
    assert (await both_ways(engine, 999_999, reviewer))[0] == "validation_not_found"


async def test_a_multi_source_day_and_an_appeal_match(client, engine):
    admin = await make_admin(client, engine)
    reviewer = await admin_id(engine)
    # an automatic source pays the day already; a higher manual entry waits
    walker = await register(client)
    await sync(client, walker["access_token"], rec(1, 4000), rec(2, 6000, "google_fit"))
    await sync(client, walker["access_token"], rec(1, 9000, "manual", manual=True))
    item = await item_of(client, admin, walker)
    answer, rows = await both_ways(engine, item["id"], reviewer, "approved")
    assert len(rows["days"]) == 2
    answer, _ = await both_ways(engine, item["id"], reviewer, "rejected")
    # an appeal of a rejected day, approved: the audit row says it was one
    appealing = await rejected_walker(client, admin)
    assert (await appeal(client, appealing["access_token"])).status_code == 201
    item = await item_of(client, admin, appealing)
    answer, rows = await both_ways(engine, item["id"], reviewer, "approved", "the watch agrees")
    assert answer["coins_awarded"] == 90 and rows["audit"][-1]["changes"]["appeal"] is True


async def test_the_walkers_notification_switches_and_devices_match(client, engine):
    """The decision reads the walker's switches with the record (notify.Reach): a walker with a
    push device gets a pending push, one who turned the kind off gets neither."""
    admin = await make_admin(client, engine)
    reviewer = await admin_id(engine)
    reachable = await flagged_walker(client)
    headers = {"headers": bearer(reachable["access_token"])}
    await add_device(client, headers, "android", android_token(61))
    item = await item_of(client, admin, reachable)
    _, rows = await both_ways(engine, item["id"], reviewer)
    assert [(n["push_status"], n["in_inbox"]) for n in rows["notifications"]] == [("pending", True)]
    quiet = await flagged_walker(client)
    off = await client.put(
        "/v1/me/notification-preferences",
        json={"types": {"review_outcome": {"push": False, "inbox": False}}},
        headers=bearer(quiet["access_token"]),
    )
    assert off.status_code == 200, off.text
    item = await item_of(client, admin, quiet)
    _, rows = await both_ways(engine, item["id"], reviewer, "rejected", "no")
    assert [(n["push_status"], n["in_inbox"]) for n in rows["notifications"]] == [("off", False)]


async def test_superseded_reviewed_own_and_budget_refusals_match(client, engine):
    admin = await make_admin(client, engine)
    reviewer = await admin_id(engine)
    walker = await flagged_walker(client)
    first = await item_of(client, admin, walker)
    await sync(client, walker["access_token"], rec(1, 9500, manual=True))
    assert (await both_ways(engine, first["id"], reviewer))[0] == "superseded"
    second = await item_of(client, admin, walker)
    done = await client.post(
        f"/v1/admin/validations/{second['id']}/approve", json={}, headers=bearer(admin)
    )
    assert done.status_code == 200
    assert (await both_ways(engine, second["id"], reviewer))[0] == "already_reviewed"
    other = await flagged_walker(client)
    mine = await item_of(client, admin, other)
    assert (await both_ways(engine, mine["id"], uuid.UUID(other["user"]["id"])))[0] == (
        "own_record"
    )
    # a budget share with no room: nothing written, either way
    await cap(client, admin, 100)
    held = await register(client)
    await sync(client, held["access_token"], rec(1, 10_000))
    await sync(client, held["access_token"], rec(1, 12_000), rec(2, 5_000))
    items = [
        i for i in (await queue(client, admin))["items"] if i["user"]["id"] == held["user"]["id"]
    ]
    assert len(items) == 2
    for waiting in items:
        answer, rows = await both_ways(engine, waiting["id"], reviewer)
        assert answer == "issuance_budget_reached"
        assert all(u["issued"] <= 100 for u in rows["budgets"])


async def test_an_approval_and_a_sync_of_the_day_at_once_pay_it_once(client, engine, app):
    """The approval locks the wallet before it reads the day: whichever goes first, the other
    sees its rows (a sync first supersedes the decision: 409 `superseded`), the day is paid
    what its records are worth and wallet = ledger."""
    admin = await make_admin(client, engine)
    for steps in (5000, 9000, 15000):
        walker = await flagged_walker(client)  # manual 9000 steps waits (90 coins held)
        token = walker["access_token"]
        item = await item_of(client, admin, walker)
        approved, synced = await asyncio.gather(
            client.post(f"/v1/admin/validations/{item['id']}/approve", headers=bearer(admin)),
            client.post("/v1/steps", json={"records": [rec(1, steps)]}, headers=bearer(token)),
        )
        assert synced.status_code == 200, synced.text
        if approved.status_code == 409 and approved.json()["code"] == "superseded":
            # the sync went first: it judged the day again (the automatic source now supports
            # it) and the old decision left the queue; a new flag, if any, is approved
            for waiting in await items_of(client, admin, walker):
                decided = await client.post(
                    f"/v1/admin/validations/{waiting['id']}/approve", headers=bearer(admin)
                )
                assert decided.status_code == 200, decided.text
            expected_again = "superseded"
        else:
            assert approved.status_code == 200, approved.text
            expected_again = "already_reviewed"
        # the day is worth its best-supported source: the automatic one, else the manual
        mine = await wallet(client, token)
        assert mine["available_coins"] == steps // 100 and mine["pending_coins"] == 0
        again = await client.post(
            f"/v1/admin/validations/{item['id']}/approve", headers=bearer(admin)
        )
        assert again.status_code == 409 and again.json()["code"] == expected_again
    await ledger_ok(engine)
    async with session_scope(app.state.database) as session:
        days = await session.execute(
            text("SELECT count(*) FROM step_days WHERE coins_pending <> 0")
        )
        assert days.scalar_one() == 0

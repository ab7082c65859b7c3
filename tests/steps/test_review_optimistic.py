"""A review's decision without a transaction around it (stepcoin_review_open v2 and
stepcoin_review_decide v2, migration 0050): the decision writes only what it read, and reads
again when the walker's wallet or the decision moved in between.

Each case makes something happen between the read and the write, on another connection and
committed, the way a sync or a second reviewer would; the decision must then either write
nothing (the SQL's answer) or read again and decide on what is there now (review.decide).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from stepcoin.auth.dependencies import STAFF_ROLES
from stepcoin.errors import Conflict
from stepcoin.steps import review
from stepcoin.wallet import service as wallet_service
from tests.conftest import bearer
from tests.notify.conftest import android_token
from tests.notify.helpers import add_device
from tests.steps.helpers import ledger_ok, make_admin, rec, sync, wallet
from tests.steps.test_review import flagged_walker, queue
from tests.steps.test_review_decide import SNAPSHOT
from tests.steps.test_review_rules import admin_id


async def _rows(engine: Any, user_id: Any) -> dict[str, list[Any]]:
    async with engine.connect() as conn:
        return {
            name: [r[0] for r in await conn.execute(text(sql), {"u": user_id})]
            for name, sql in SNAPSHOT.items()
            if name != "audit"
        }


async def _waiting(client: Any, admin: str, walker: dict[str, Any]) -> int:
    items = (await queue(client, admin))["items"]
    [item] = [i for i in items if i["user"]["id"] == walker["user"]["id"]]
    return int(item["id"])


class _Between:
    """A fast-pool connection that runs `meanwhile` (committed elsewhere) the first time the
    decision is about to write, and counts the reads."""

    def __init__(self, driver: Any, meanwhile: Any) -> None:
        self.driver, self.meanwhile, self.reads = driver, meanwhile, 0

    async def fetchval(self, sql: str, *args: Any) -> Any:
        if sql == review.REVIEW_OPEN_SQL:
            self.reads += 1
        if sql == review.REVIEW_DECIDE_SQL and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()
        return await self.driver.fetchval(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> Any:
        return await self.driver.fetch(sql, *args)


async def _a_decision_waiting(client, engine) -> tuple[str, Any, dict, uuid.UUID, int]:
    """An admin's token, the reviewer's id, a walker with a flagged day, the walker's id and
    the decision's id."""
    admin = await make_admin(client, engine)
    reviewer = await admin_id(engine)
    walker = await flagged_walker(client)
    vid = await _waiting(client, admin, walker)
    return admin, reviewer, walker, uuid.UUID(walker["user"]["id"]), vid


def _bonus(app, user_id: uuid.UUID, coins: int) -> Any:
    """A payment to the walker through the wallet's door (it bumps the wallet's version)."""

    async def bonus() -> None:
        async with app.state.database.sessionmaker() as session, session.begin():
            entry = wallet_service.Entry(
                coins, wallet_service.ADMIN_ADJUSTMENT, f"t:{uuid.uuid4()}"
            )
            await wallet_service.post(session, user_id, [entry])

    return bonus


async def test_a_wallet_that_moved_after_the_read_is_read_again(client, engine, app):
    """A payment to the walker between the read and the write (any post bumps the wallet's
    version): the first write is refused whole, the second read sees the new balance, and the
    decision pays its day once."""
    _, reviewer, walker, user_id, vid = await _a_decision_waiting(client, engine)
    bonus = _bonus(app, user_id, 7)

    async with (await app.state.database.fast_pool()).acquire() as conn:
        driver = _Between(conn, bonus)
        decided = await review.decide(
            driver, validation_id=vid, reviewer_id=reviewer, decision="approved", note=None
        )
    assert driver.reads == 2 and decided["coins_awarded"] == 90
    mine = await wallet(client, walker["access_token"])
    assert mine["available_coins"] == 97 and mine["pending_coins"] == 0
    rows = await _rows(engine, user_id)
    assert [n["data"]["coins"] for n in rows["notifications"]] == [90]
    await ledger_ok(engine)


class _AlwaysBetween(_Between):
    """`_Between` whose `always` runs before every write, not only the first."""

    def __init__(self, driver: Any, always: Any) -> None:
        super().__init__(driver, None)
        self.always = always

    async def fetchval(self, sql: str, *args: Any) -> Any:
        if sql == review.REVIEW_DECIDE_SQL:
            await self.always()
        return await super().fetchval(sql, *args)


async def test_a_wallet_that_never_stops_moving_is_a_409_and_nothing_written(client, engine, app):
    """If every read is outdated by its write, review.decide gives up after MAX_ATTEMPTS reads
    with 409 `review_conflict`; the decision still waits, its coins still held, no notification."""
    admin, reviewer, walker, user_id, vid = await _a_decision_waiting(client, engine)
    bonus = _bonus(app, user_id, 1)

    async with (await app.state.database.fast_pool()).acquire() as conn:
        driver = _AlwaysBetween(conn, bonus)
        with pytest.raises(Conflict) as refused:
            await review.decide(
                driver, validation_id=vid, reviewer_id=reviewer, decision="approved", note=None
            )
    assert refused.value.code == "review_conflict"
    assert driver.reads == review.MAX_ATTEMPTS
    mine = await wallet(client, walker["access_token"])
    assert mine["available_coins"] == review.MAX_ATTEMPTS  # the bonuses only
    assert mine["pending_coins"] > 0
    assert await _waiting(client, admin, walker) == vid
    assert (await _rows(engine, user_id))["notifications"] == []
    await ledger_ok(engine)


async def test_a_sync_that_supersedes_the_decision_in_between_wins(client, engine, app):
    """A newer sync of the day between the read and the write: the decision is not written on
    the old records; read again, it is `superseded` (409) and the sync's judgement stands."""
    admin = await make_admin(client, engine)
    reviewer = await admin_id(engine)
    walker = await flagged_walker(client)
    vid = await _waiting(client, admin, walker)

    async def resync() -> None:
        await sync(client, walker["access_token"], rec(1, 9500, manual=True))

    async with (await app.state.database.fast_pool()).acquire() as conn:
        driver = _Between(conn, resync)
        try:
            await review.decide(
                driver, validation_id=vid, reviewer_id=reviewer, decision="approved", note=None
            )
            raise AssertionError("decided a superseded record")
        except review.Conflict as exc:
            assert exc.code == "superseded"
    assert driver.reads == 2
    mine = await wallet(client, walker["access_token"])
    assert mine["available_coins"] == 0 and mine["pending_coins"] == 95
    await ledger_ok(engine)


async def _decide_sql(engine: Any, user_id: Any, version: int, payload: dict[str, Any]) -> Any:
    async with engine.begin() as conn:
        answer = (
            await conn.execute(
                text("SELECT stepcoin_review_decide(:u, :v, CAST(:p AS jsonb))"),
                {"u": user_id, "v": version, "p": orjson.dumps(payload).decode()},
            )
        ).scalar_one()
    return orjson.loads(answer) if isinstance(answer, str) else answer


async def _payload(engine: Any, vid: int, reviewer: Any) -> tuple[Any, int, dict[str, Any]]:
    """What review.decide would send for an approval of `vid` (captured, not sent)."""
    sent: dict[str, Any] = {}

    class Capture:
        async def fetchval(self, sql: str, *args: Any) -> Any:
            if sql == review.REVIEW_DECIDE_SQL:  # kept, not sent
                sent.update(user=args[0], version=args[1], payload=orjson.loads(args[2]))
                return '{"conflict": false, "coins_delta": 0}'
            async with engine.connect() as conn:
                return (await conn.exec_driver_sql(sql, args)).scalar()

        async def fetch(self, sql: str, *args: Any) -> Any:
            async with engine.connect() as conn:
                return list((await conn.exec_driver_sql(sql, args)).all())

    await review.decide(
        Capture(), validation_id=vid, reviewer_id=reviewer, decision="approved", note=None
    )
    return sent["user"], sent["version"], sent["payload"]


async def test_the_write_refuses_a_decision_no_longer_waiting_or_other_coins(client, engine):
    """stepcoin_review_decide v2 writes nothing when, under the wallet's lock, the decision is
    no longer waiting (even with the version unchanged: a writer that posts no coins) or the
    coins differ from the ones the caller's notification names."""
    admin = await make_admin(client, engine)
    reviewer = await admin_id(engine)
    walker = await flagged_walker(client)
    vid = await _waiting(client, admin, walker)
    user_id, version, payload = await _payload(engine, vid, reviewer)
    assert payload["expect_delta"] == 90 and payload["notice"]["kind"] == "review_outcome"
    before = await _rows(engine, user_id)
    wrong = {**payload, "expect_delta": 89}
    assert await _decide_sql(engine, user_id, version, wrong) == {"conflict": True}
    assert await _decide_sql(engine, user_id, version - 1, payload) == {"conflict": True}
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE step_validations SET reviewed_at = now() WHERE id = :id"), {"id": vid}
        )
    assert await _decide_sql(engine, user_id, version, payload) == {"conflict": True}
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE step_validations SET reviewed_at = NULL WHERE id = :id"), {"id": vid}
        )
    assert await _rows(engine, user_id) == before
    done = await _decide_sql(engine, user_id, version, payload)
    assert done["coins_delta"] == 90 and not done["conflict"]
    after = await _rows(engine, user_id)
    assert len(after["notifications"]) == 1 and len(after["ledger"]) == 1
    await ledger_ok(engine)


async def test_reviewers_racing_for_one_record_pay_it_once(client, engine):
    """Six approvals and rejections of one record at once through the API: one is taken, the
    others are told it was already reviewed; one payment, one notification, one push job."""
    admins = [await make_admin(client, engine) for _ in range(3)]
    walker = await flagged_walker(client)
    headers = {"headers": bearer(walker["access_token"])}
    await add_device(client, headers, "android", android_token(71))
    vid = await _waiting(client, admins[0], walker)
    answers = await asyncio.gather(
        *(
            client.post(f"/v1/admin/validations/{vid}/{verb}", headers=bearer(admin))
            for admin in admins
            for verb in ("approve", "reject")
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 409, 409, 409, 409, 409], [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"already_reviewed"}
    [taken] = [a.json() for a in answers if a.status_code == 200]
    mine = await wallet(client, walker["access_token"])
    paid = 90 if taken["status"] == "approved" else 0
    assert mine["available_coins"] == paid and mine["pending_coins"] == 0
    rows = await _rows(engine, walker["user"]["id"])
    assert [n["push_status"] for n in rows["notifications"]] == ["pending"]
    async with engine.connect() as conn:
        jobs = (
            await conn.execute(
                text(
                    "SELECT j.task_name, j.queue_name, j.lock, j.args FROM procrastinate_jobs j "
                    "JOIN notifications n ON j.args ->> 'notification_id' = CAST(n.id AS text) "
                    "WHERE n.user_id = :u"
                ),
                {"u": walker["user"]["id"]},
            )
        ).all()
    assert len(jobs) == 1
    await ledger_ok(engine)


async def test_a_reviewer_demoted_before_the_read_decides_nothing(client, engine, app):
    """The hot route reads the reviewer's role with the decision (staff_roles): a reviewer
    demoted to walker, or deactivated, is refused and nothing is written."""
    admin = await make_admin(client, engine)
    reviewer = await admin_id(engine)
    walker = await flagged_walker(client)
    vid = await _waiting(client, admin, walker)
    before = await _rows(engine, walker["user"]["id"])
    for change in ("role = 'user'", "role = 'admin', is_active = false"):
        async with engine.begin() as conn:
            await conn.execute(text(f"UPDATE users SET {change} WHERE id = :id"), {"id": reviewer})
        async with (await app.state.database.fast_pool()).acquire() as conn:
            try:
                await review.decide(
                    conn,
                    validation_id=vid,
                    reviewer_id=reviewer,
                    decision="approved",
                    note=None,
                    staff_roles=STAFF_ROLES,
                )
                raise AssertionError("a walker decided")
            except review.NotStaff:
                pass
    assert await _rows(engine, walker["user"]["id"]) == before

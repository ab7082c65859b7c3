"""Which judgments of a sync are written as decisions (step_validations rows).

Every record is judged on every change. A decision row is written when the judgment says
something the record's standing decision does not: a first judgment, a status other than
approved, any rule hit, or a record whose standing decision is not the rules' clean approval (a
reviewer's, a flag's, a withdrawal's). A new version that the rules approve without a hit, of a
record that stands cleanly approved, restates that decision: no row; its coins are in the
ledger under the day's version and its steps in the record (docs/steps.md, "Decisions").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.conftest import bearer, register
from tests.social.helpers import set_setting
from tests.steps.helpers import day, ledger_ok, make_admin, rec, sync, wallet


async def _decisions(engine: Any, user_id: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT id, recorded_date::text, source, steps, status, coins_awarded "
                "FROM step_validations WHERE user_id = :u ORDER BY id"
            ),
            {"u": user_id},
        )
        return [tuple(r) for r in rows]


async def _record(engine: Any, user_id: str, offset: int) -> tuple[Any, ...]:
    async with engine.connect() as conn:
        row = await conn.execute(
            text(
                "SELECT steps, approved_steps, status, validation_id FROM step_records "
                "WHERE user_id = :u AND recorded_date::text = :d AND source = 'healthkit'"
            ),
            {"u": user_id, "d": day(offset)},
        )
        return tuple(row.one())


async def _ledger(engine: Any, user_id: str) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT amount, reference_id FROM coin_transactions WHERE user_id = :u ORDER BY id"
            ),
            {"u": user_id},
        )
        return [tuple(r) for r in rows]


async def test_a_clean_resync_of_a_clean_approval_restates_it(client, engine):
    me = await register(client)
    token, uid = me["access_token"], me["user"]["id"]
    await sync(client, token, rec(1, 5000), rec(2, 6000))
    first = await _decisions(engine, uid)
    assert [(d[1], d[3], d[4], d[5]) for d in first] == [
        (day(1), 5000, "approved", 50),
        (day(2), 6000, "approved", 60),
    ]
    results = await sync(client, token, rec(1, 9000), rec(2, 6500))
    assert [(r["status"], r["coins_awarded"], r["reasons"]) for r in results] == [
        ("approved", 40, []),
        ("approved", 5, []),
    ]
    # no new decision; the record holds the new version under its standing decision
    assert await _decisions(engine, uid) == first
    assert await _record(engine, uid, 1) == (9000, 9000, "approved", first[0][0])
    # the new version's coins are in the ledger under the day's version
    assert sorted(await _ledger(engine, uid)) == [
        (5, f"steps:{uid}:{day(2)}:2"),
        (40, f"steps:{uid}:{day(1)}:2"),
        (50, f"steps:{uid}:{day(1)}:1"),
        (60, f"steps:{uid}:{day(2)}:1"),
    ]
    # a lower version is clawed back the same way
    lower = await sync(client, token, rec(1, 7000))
    assert lower[0]["coins_awarded"] == -20
    assert await _decisions(engine, uid) == first
    assert (await wallet(client, token))["available_coins"] == 135
    listed = await client.get(
        "/v1/steps", params={"from": day(2), "to": day(1)}, headers=bearer(token)
    )
    assert [(i["date"], i["steps"], i["status"]) for i in listed.json()["items"]] == [
        (day(1), 7000, "approved"),
        (day(2), 6500, "approved"),
    ]
    await ledger_ok(engine)


async def test_a_changed_judgment_is_written(client, engine):
    me = await register(client)
    token, uid = me["access_token"], me["user"]["id"]
    await sync(client, token, rec(1, 5000))
    # a rule hit on a cleanly approved record: written
    await set_setting(engine, "anticheat.new_account_max_steps", 6000)
    flagged = await sync(client, token, rec(1, 7000))
    assert flagged[0]["status"] == "flagged"
    assert [d[4] for d in await _decisions(engine, uid)] == ["approved", "flagged"]
    # a clean approval of a flagged record: written (and the flag leaves the queue)
    await set_setting(engine, "anticheat.new_account_max_steps", 40_000)
    assert (await sync(client, token, rec(1, 7500)))[0]["status"] == "approved"
    decisions = await _decisions(engine, uid)
    assert [(d[3], d[4]) for d in decisions] == [
        (5000, "approved"),
        (7000, "flagged"),
        (7500, "approved"),
    ]
    assert (await _record(engine, uid, 1))[3] == decisions[2][0]
    # and from there on, clean re-approvals restate that one
    await sync(client, token, rec(1, 8000))
    assert await _decisions(engine, uid) == decisions
    assert (await wallet(client, token))["available_coins"] == 80
    await ledger_ok(engine)


async def test_a_reviewers_approval_is_not_restated_by_the_rules(client, engine):
    admin = await make_admin(client, engine)
    me = await register(client)
    token, uid = me["access_token"], me["user"]["id"]
    await set_setting(engine, "anticheat.new_account_max_steps", 4000)
    assert (await sync(client, token, rec(1, 5000)))[0]["status"] == "flagged"
    [decision] = await _decisions(engine, uid)
    approved = await client.post(
        f"/v1/admin/validations/{decision[0]}/approve", json={}, headers=bearer(admin)
    )
    assert approved.status_code == 200, approved.text
    await set_setting(engine, "anticheat.new_account_max_steps", 40_000)
    # the record stands approved by a reviewer: the rules' approval of a new version is its own
    assert (await sync(client, token, rec(1, 6000)))[0]["status"] == "approved"
    decisions = await _decisions(engine, uid)
    assert [(d[3], d[4]) for d in decisions] == [(5000, "approved"), (6000, "approved")]
    assert (await _record(engine, uid, 1))[3] == decisions[1][0]
    # which is the rules' clean approval: the next version restates it
    await sync(client, token, rec(1, 6500))
    assert await _decisions(engine, uid) == decisions
    assert (await wallet(client, token))["available_coins"] == 65
    await ledger_ok(engine)


async def test_a_withdrawn_day_synced_again_is_judged_anew(client, engine):
    me = await register(client)
    token, uid = me["access_token"], me["user"]["id"]
    await sync(client, token, rec(1, 5000))
    gone = await sync(client, token, rec(1, 5000, deleted=True))
    assert gone[0]["coins_awarded"] == -50
    assert len(await _decisions(engine, uid)) == 1  # a withdrawal is no judgment
    back = await sync(client, token, rec(1, 5200))
    assert back[0]["coins_awarded"] == 52
    decisions = await _decisions(engine, uid)
    assert [(d[3], d[4]) for d in decisions] == [(5000, "approved"), (5200, "approved")]
    await ledger_ok(engine)

"""Entry fees in escrow: join debits once, leave before the start refunds, a rejoin is a new
entry, cancellations refund everyone, concurrent joins add up; every row through the wallet's
one door with a unique reference, and the ledger check passes."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.admin.helpers import ledger_report
from tests.challenges.helpers import (
    act,
    balance,
    befriend,
    create,
    escrow,
    get,
    later,
    ledger_rows,
    make_staff,
    rich_walker,
    shift,
    spec,
    tick,
)
from tests.steps.helpers import rec, sync


async def test_join_leave_rejoin_each_move_once_with_its_own_reference(app, client, engine):
    admin = await make_staff(client, engine)
    a = await rich_walker(client, admin, name="Ada Walker")
    b = await rich_walker(client, admin, 300, name="Ben Walker")
    await befriend(client, a, b)
    cid = (await create(client, a, spec("total_steps", entry_fee_coins=120, invitees=[b["id"]])))[
        "id"
    ]
    joined = await act(client, b, cid, "join")
    assert joined["me"] == {
        "status": "joined",
        "team": None,
        "fee_held": 120,
        "rank": None,
        "winner": False,
        "payout_coins": 0,
        "paid": False,
    }
    again = await act(client, b, cid, "join")  # joined already: the same, no second debit
    assert again["me"]["fee_held"] == 120 and await balance(client, b) == 180
    left = await act(client, b, cid, "leave")
    assert left["me"]["status"] == "left" and left["joinable"] is True
    assert await balance(client, b) == 300
    await act(client, b, cid, "join")
    assert await balance(client, b) == 180 and await escrow(engine, cid) == 240
    async with engine.connect() as conn:
        refs = [
            r[0]
            for r in await conn.execute(
                text(
                    "SELECT reference_id FROM coin_transactions WHERE user_id = :u "
                    "AND transaction_type LIKE 'challenge_%' ORDER BY id"
                ),
                {"u": b["id"]},
            )
        ]
    assert refs == [
        f"challenge:{cid}:{b['id']}:entry:1",
        f"challenge:{cid}:{b['id']}:refund:1",
        f"challenge:{cid}:{b['id']}:entry:2",
    ]
    # not enough coins: 409, nothing joined, nothing moved
    poor = await rich_walker(client, admin, 50, name="Poor Walker")
    await befriend(client, a, poor)
    cid2 = (
        await create(client, a, spec("total_steps", entry_fee_coins=120, invitees=[poor["id"]]))
    )["id"]
    refused = await client.post(f"/v1/challenges/{cid2}/join", headers=poor["headers"])
    assert refused.status_code == 409 and refused.json()["code"] == "insufficient_coins"
    assert (await get(client, poor, cid2))["me"] is None
    assert await escrow(engine, cid2) == 120
    # after the start: no leaving (the fee is in play)
    await shift(engine, cid, 1)
    late = await client.post(f"/v1/challenges/{cid}/leave", headers=b["headers"])
    assert late.status_code == 409 and late.json()["code"] == "challenge_started"
    closed = await client.post(f"/v1/challenges/{cid2}/join", headers=a["headers"])
    assert closed.status_code == 200  # a is in already: the same answer
    assert (await ledger_report(engine)).ok


async def test_the_creator_cancels_before_the_start_and_every_fee_goes_back(app, client, engine):
    admin = await make_staff(client, engine)
    a = await rich_walker(client, admin, name="Ada Walker")
    b = await rich_walker(client, admin, name="Ben Walker")
    await befriend(client, a, b)
    cid = (
        await create(
            client,
            a,
            spec("race", params={"target_total": 5000}, entry_fee_coins=70, invitees=[b["id"]]),
        )
    )["id"]
    await act(client, b, cid, "join")
    other = await client.post(f"/v1/challenges/{cid}/cancel", headers=b["headers"])
    assert other.status_code == 404  # only its creator
    cancelled = await act(client, a, cid, "cancel")
    assert cancelled["status"] == "cancelled" and cancelled["escrow_coins"] == 0
    assert cancelled["cancel_reason"] == "cancelled by its creator"
    assert await balance(client, a) == 1000 and await balance(client, b) == 1000
    again = await client.post(f"/v1/challenges/{cid}/cancel", headers=a["headers"])
    assert again.status_code == 409 and again.json()["code"] == "not_cancellable"
    assert sorted(t for _, t, _ in await ledger_rows(engine, cid)) == [
        "challenge_entry",
        "challenge_entry",
        "challenge_refund",
        "challenge_refund",
    ]
    assert (await ledger_report(engine)).ok


async def test_an_admin_cancels_a_running_challenge_audited(app, client, engine):
    admin = await make_staff(client, engine)
    support = await make_staff(client, engine, role="support")
    a = await rich_walker(client, admin, name="Ada Walker")
    b = await rich_walker(client, admin, name="Ben Walker")
    await befriend(client, a, b)
    cid = (await create(client, a, spec("total_steps", entry_fee_coins=90, invitees=[b["id"]])))[
        "id"
    ]
    await act(client, b, cid, "join")
    await shift(engine, cid, 2)
    await tick(app)
    assert (await get(client, a, cid))["status"] == "active"
    mine = await client.post(f"/v1/challenges/{cid}/cancel", headers=a["headers"])
    assert mine.status_code == 409  # started: only an admin cancels it now
    denied = await client.post(
        f"/v1/admin/challenges/{cid}/cancel", headers=support["headers"], json={}
    )
    assert denied.status_code == 403
    done = await client.post(
        f"/v1/admin/challenges/{cid}/cancel",
        headers=admin["headers"],
        json={"reason": "a broken sync day for everyone"},
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "cancelled" and body["escrow_coins"] == 0
    assert {p["payout_kind"] for p in body["participant_list"]} == {"refund"}
    assert all(p["paid_at"] for p in body["participant_list"])
    assert await balance(client, a) == 1000 and await balance(client, b) == 1000
    async with engine.connect() as conn:
        logged = (
            await conn.execute(
                text(
                    "SELECT admin_id, changes FROM admin_logs WHERE action = 'challenge.cancel' "
                    "AND entity_id = :c"
                ),
                {"c": cid},
            )
        ).one()
    assert str(logged.admin_id) == admin["user"]["id"]
    assert (await tick(app))["walkers_paid"] == 0
    assert (await ledger_report(engine)).ok


async def test_concurrent_joins_each_pay_once_and_the_escrow_adds_up(app, client, engine):
    admin = await make_staff(client, engine)
    cid = (await create(client, admin, spec("total_steps", entry_fee_coins=33)))["id"]
    walkers = [await rich_walker(client, admin, 100, name=f"W{i} Walker") for i in range(12)]
    responses = await asyncio.gather(
        *[client.post(f"/v1/challenges/{cid}/join", headers=w["headers"]) for w in walkers * 2]
    )
    assert {r.status_code for r in responses} == {200}
    assert await escrow(engine, cid) == 12 * 33
    assert (await get(client, walkers[0], cid))["participants"] == 12
    assert len(await ledger_rows(engine, cid)) == 12
    assert all([await balance(client, w) == 67 for w in walkers])
    assert (await ledger_report(engine)).ok


async def test_two_ticks_at_once_settle_once(app, client, engine):
    admin = await make_staff(client, engine)
    cid = (
        await create(
            client, admin, spec("group_goal", params={"target_total": 1000}, entry_fee_coins=7)
        )
    )["id"]
    walkers = [await rich_walker(client, admin, 100, name=f"W{i} Walker") for i in range(5)]
    for w in walkers:
        await act(client, w, cid, "join")
        await sync(client, w["access_token"], rec(2, 3000))
    await shift(engine, cid, 4)
    results = await asyncio.gather(*[tick(app, later(30)) for _ in range(3)])
    assert sum(r["walkers_paid"] for r in results) == 5
    assert sum(r["settled"] for r in results) == 1
    assert (await get(client, walkers[0], cid))["status"] == "settled"
    assert (
        sorted(a for _, t, a in await ledger_rows(engine, cid) if t == "challenge_prize") == [7] * 5
    )
    assert await escrow(engine, cid) == 0
    assert (await ledger_report(engine)).ok


async def test_joining_closes_at_the_start_unless_the_template_takes_late_joins(
    app, client, engine
):
    admin = await make_staff(client, engine)
    late_ok = (
        await create(
            client, admin, spec("group_goal", params={"target_total": 1000}, entry_fee_coins=5)
        )
    )["id"]
    closed = (await create(client, admin, spec("total_steps", entry_fee_coins=5)))["id"]
    early = [await rich_walker(client, admin, 100, name=f"E{i} Walker") for i in range(2)]
    for cid in (late_ok, closed):
        for w in early:
            await act(client, w, cid, "join")
        await shift(engine, cid, 2)  # started yesterday, ends tomorrow
    await tick(app)
    late = await rich_walker(client, admin, 100, name="Late Walker")
    assert (await get(client, late, late_ok))["joinable"] is True
    joined = await act(client, late, late_ok, "join")
    assert joined["me"]["status"] == "joined" and joined["participants"] == 3
    assert (await get(client, late, closed))["joinable"] is False
    refused = await client.post(f"/v1/challenges/{closed}/join", headers=late["headers"])
    assert refused.status_code == 409 and refused.json()["code"] == "joining_closed"
    assert await balance(client, late) == 95 and await escrow(engine, late_ok) == 15

"""Account deletion: the walker leaves every open challenge (the fee refunded before the start,
left in the pool after it) and their invitations go; the export lists their challenges."""

from __future__ import annotations

from sqlalchemy import text

from tests.accounts.helpers import delete_me
from tests.admin.helpers import ledger_report
from tests.challenges.helpers import (
    act,
    befriend,
    create,
    escrow,
    get,
    later,
    make_staff,
    rich_walker,
    shift,
    spec,
    tick,
)
from tests.steps.helpers import rec, sync


async def test_export_lists_the_walkers_challenges(client, engine):
    admin = await make_staff(client, engine)
    a = await rich_walker(client, admin, name="Ada Walker")
    b = await rich_walker(client, admin, name="Ben Walker")
    await befriend(client, a, b)
    cid = (await create(client, a, spec("total_steps", entry_fee_coins=15, invitees=[b["id"]])))[
        "id"
    ]
    export = await client.get("/v1/me/export", headers=a["headers"])
    assert export.status_code == 200, export.text
    [item] = export.json()["challenges"]
    assert item["challenge_id"] == cid and item["my_status"] == "joined"
    assert item["entry_fee_coins"] == 15
    other = await client.get("/v1/me/export", headers=b["headers"])
    assert other.json()["challenges"] == []


async def test_deletion_leaves_open_challenges_refunding_before_the_start(app, client, engine):
    admin = await make_staff(client, engine)
    a = await rich_walker(client, admin, name="Ada Walker")
    b = await rich_walker(client, admin, name="Ben Walker")
    c = await rich_walker(client, admin, name="Cy Walker")
    await befriend(client, a, b)
    await befriend(client, a, c)
    later_one = (
        await create(
            client, a, spec("total_steps", entry_fee_coins=20, invitees=[b["id"], c["id"]])
        )
    )["id"]
    running = (
        await create(
            client, a, spec("total_steps", entry_fee_coins=30, invitees=[b["id"], c["id"]])
        )
    )["id"]
    for cid in (later_one, running):
        await act(client, b, cid, "join")
        await act(client, c, cid, "join")
    await shift(engine, running, 2)
    await tick(app)
    assert (await get(client, a, running))["status"] == "active"

    deleted = await delete_me(client, b["access_token"], password=b["password"])
    assert deleted.status_code in (200, 204), deleted.text
    assert (await get(client, a, later_one))["participants"] == 2
    assert await escrow(engine, later_one) == 40  # b's 20 back to b's (tombstone) wallet
    assert (await get(client, a, running))["participants"] == 2
    assert await escrow(engine, running) == 90  # b's 30 stays in the pool
    async with engine.connect() as conn:
        invited = (
            await conn.execute(
                text("SELECT count(*) FROM challenge_invitees WHERE user_id = :u"), {"u": b["id"]}
            )
        ).scalar_one()
        refund = (
            await conn.execute(
                text(
                    "SELECT amount FROM coin_transactions WHERE user_id = :u "
                    "AND transaction_type = 'challenge_refund'"
                ),
                {"u": b["id"]},
            )
        ).scalar_one()
        logged = (
            await conn.execute(
                text(
                    "SELECT changes ->> 'challenges_left' FROM admin_logs "
                    "WHERE action = 'account.deleted'"
                )
            )
        ).scalar_one()
    assert invited == 0 and refund == 20 and logged == "2"
    # the running one settles with the pool of 90 to the winner among those left
    await sync(client, c["access_token"], rec(1, 4000))
    await tick(app, later(24 * 4))
    view = await get(client, c, running)
    assert view["status"] == "settled" and view["me"]["payout_coins"] == 90
    async with engine.connect() as conn:
        held = (
            await conn.execute(
                text("SELECT sum(fee_held) FROM challenge_participants WHERE challenge_id = :c"),
                {"c": running},
            )
        ).scalar_one()
    assert held == 0  # b's fee went into the prize
    assert (await ledger_report(engine)).ok

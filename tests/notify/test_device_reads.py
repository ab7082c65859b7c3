"""push_devices is keyed by (user_id, id) (issue 19 item 4: a walker's rows together, the
shard key first) and has no index on `id` alone: every statement of the push paths must name
the walker, or it reads every device of every walker. At a million devices a push that looked
its devices up by id alone scanned the table each time (24-46 ms at 200,000 devices here,
with two parallel workers). Every statement that the device, push, batch and sweep paths ran,
planned against a table of 20,000 devices of other walkers, reads push_devices by its keys."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from stepcoin.notify import sending
from tests.fixtures.plans import plan_with, recorded, rows_of_walkers
from tests.notify.conftest import android_token, ios_token
from tests.notify.helpers import add_device, notify, walker

OTHERS = 20_000


async def test_every_push_path_reads_devices_by_their_walker(client, app, engine, push, fcm, apns):
    async with engine.begin() as conn:
        await conn.execute(
            text(
                rows_of_walkers(
                    "push_devices (user_id, platform, environment, token)",
                    "walker, 'android', 'production', 'others-' || n",
                    walkers=OTHERS,
                    rows=OTHERS,
                    label="devices",
                )
            )
        )
        await conn.execute(text("ANALYZE push_devices"))
        await conn.execute(text("ANALYZE users"))
    database = app.state.database
    with recorded(engine, "push_devices") as statements:
        ada, bob, cy = await walker(client), await walker(client), await walker(client)
        await add_device(client, ada, "android", android_token(91))
        moved = await add_device(client, ada, "ios", ios_token(92))
        assert await add_device(client, bob, "ios", ios_token(92)) == moved  # to bob, same id
        await add_device(client, ada, "android", android_token(93))
        listed = await client.get("/v1/me/devices", headers=ada["headers"])
        assert len(listed.json()["items"]) == 2  # the ios install moved to bob
        gone = await add_device(client, cy, "android", android_token(94))
        assert (
            await client.delete(f"/v1/me/devices/{gone}", headers=cy["headers"])
        ).status_code == 204
        await add_device(client, cy, "ios", ios_token(95))
        # one push: a dead token, a token in the other environment, a retry then a gone device
        fcm.dead.add(android_token(91))
        apns.register(ios_token(92), "sandbox")
        note = await notify(engine, ada["id"])
        assert await sending.send_notification(database, push, note) == "sent"
        assert await sending.send_notification(database, push, await notify(engine, bob["id"]))
        fcm.fail_next(503)
        retried = await notify(engine, ada["id"], dedupe_key="again")
        with pytest.raises(sending.PushRetry):
            await sending.send_notification(database, push, retried)
        assert await sending.send_notification(database, push, retried) == "sent"
        # a batch (a broadcast's): a dead token and a moved one among them
        apns.unregister(ios_token(95))
        batch = [
            await notify(engine, who["id"], type="broadcast", dedupe_key="b")
            for who in (ada, bob, cy)
        ]
        counts = await sending.send_batch(database, push, batch)
        assert counts.get("invalidated") == 1 and counts.get("sent") == 2, counts
        await sending.sweep(database, slice_=0)  # a 288th of the walkers' key
    assert statements
    kinds = {s.split()[0].upper() for s, _ in statements}
    assert {"SELECT", "INSERT", "DELETE", "UPDATE"} <= kinds, kinds
    scanning = []
    async with engine.connect() as conn:
        for statement, parameters in statements:
            plan = await plan_with(conn, statement, parameters)
            if "Seq Scan on push_devices" in plan:
                scanning.append(f"{statement}\n{plan}")
    assert scanning == [], "\n\n".join(scanning)

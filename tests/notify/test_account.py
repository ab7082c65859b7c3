"""Account deletion removes the walker's devices, notifications (with their deliveries) and
preferences; the export lists devices (no tokens), notifications and preferences."""

from __future__ import annotations

from sqlalchemy import text

from tests.accounts.helpers import delete_me
from tests.notify.conftest import ios_token
from tests.notify.helpers import add_device, notify, one, walker


async def test_export_lists_devices_notifications_and_preferences(client, engine):
    ada = await walker(client)
    await add_device(client, ada, "ios", ios_token(21))
    note = await notify(engine, ada["id"], title="Day approved")
    export = await client.get("/v1/me/export", headers=ada["headers"])
    assert export.status_code == 200, export.text
    part = export.json()["notifications"]
    assert [d["platform"] for d in part["devices"]] == ["ios"]
    assert "token" not in part["devices"][0]
    assert [(n["id"], n["title"]) for n in part["notifications"]] == [(note, "Day approved")]
    assert (part["preferences"]["quiet_start"], part["preferences"]["quiet_end"]) == (
        "00:00",
        "00:00",
    )


async def test_deletion_removes_devices_notifications_and_preferences(client, engine):
    ada = await walker(client)
    await add_device(client, ada, "ios", ios_token(22))
    note = await notify(engine, ada["id"])
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO notification_deliveries (notification_id, device_id, user_id, "
                "platform, status) VALUES (:n, 1, :u, 'ios', 'sent')"
            ),
            {"n": note, "u": ada["id"]},
        )
    deleted = await delete_me(client, ada["access_token"], password=ada["password"])
    assert deleted.status_code in (200, 204), deleted.text
    for table in ("push_devices", "notifications", "notification_preferences"):
        count = await one(engine, f"SELECT count(*) FROM {table} WHERE user_id = :u", u=ada["id"])
        assert count[0] == 0, table
    assert (await one(engine, "SELECT count(*) FROM notification_deliveries"))[0] == 0

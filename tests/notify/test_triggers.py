"""Issue 18 item 6 (the triggers that exist today): a review outcome, an order shipped or
cancelled (refunded), an achievement unlocked each write one notification to the walker, in
the transaction of the change, with its push queued."""

from __future__ import annotations

from datetime import date

from tests.achievements.helpers import achievement, evaluate, set_days
from tests.conftest import bearer, register
from tests.notify.conftest import android_token
from tests.notify.helpers import add_device, rows
from tests.shop.helpers import order, product, walker_with_coins
from tests.steps.helpers import make_admin, rec, sync


async def notes(engine, user_id):
    return [
        tuple(r)
        for r in await rows(
            engine,
            "SELECT kind, title, data, push_status, in_inbox FROM notifications "
            "WHERE user_id = :u ORDER BY id",
            u=user_id,
        )
    ]


async def test_review_outcomes(client, engine):
    ada, bob = await register(client), await register(client)
    await add_device(client, {"headers": bearer(ada["access_token"])}, "android", android_token(61))
    for who in (ada, bob):
        results = await sync(client, who["access_token"], rec(1, 9000, manual=True))
        assert results[0]["status"] == "flagged"
    admin = await make_admin(client, engine)
    queue = (await client.get("/v1/admin/validations", headers=bearer(admin))).json()["items"]
    by_user = {i["user"]["id"]: i["id"] for i in queue}
    approve = await client.post(
        f"/v1/admin/validations/{by_user[ada['user']['id']]}/approve", headers=bearer(admin)
    )
    reject = await client.post(
        f"/v1/admin/validations/{by_user[bob['user']['id']]}/reject",
        json={"note": "Manual entries need a photo of the pedometer."},
        headers=bearer(admin),
    )
    assert approve.status_code == 200 and reject.status_code == 200, reject.text
    [(kind, title, data, push, inbox)] = await notes(engine, ada["user"]["id"])
    assert (kind, title, push, inbox) == (
        "review_outcome",
        "Your steps are approved",
        "pending",
        True,
    )
    assert data["status"] == "approved" and data["coins"] == 90
    [(kind, title, data, _, _)] = await notes(engine, bob["user"]["id"])
    assert title == "Your steps were not approved" and data["status"] == "rejected"
    inbox = (await client.get("/v1/me/notifications", headers=bearer(bob["access_token"]))).json()
    assert inbox["items"][0]["body"].endswith("Manual entries need a photo of the pedometer.")


async def test_order_cancelled_and_shipped(client, engine):
    bottle = await product(engine, price=100)
    me = await walker_with_coins(client, engine, 500)
    token = me["access_token"]
    first = (await order(client, token, [(bottle, 1)])).json()
    cancelled = await client.post(f"/v1/orders/{first['id']}/cancel", headers=bearer(token))
    assert cancelled.status_code == 200, cancelled.text
    second = (await order(client, token, [(bottle, 1)])).json()
    admin = await make_admin(client, engine)
    for status in ("submitted", "shipped"):
        moved = await client.patch(
            f"/v1/admin/orders/{second['id']}", json={"status": status}, headers=bearer(admin)
        )
        assert moved.status_code == 200, moved.text
    found = await notes(engine, me["user"]["id"])
    assert [(k, t.split(" ", 2)[2], d["status"]) for k, t, d, _, _ in found] == [
        ("order", "cancelled", "cancelled"),
        ("order", "shipped", "shipped"),
    ]
    assert found[0][2]["order_id"] == first["id"] and found[1][2]["order_id"] == second["id"]


async def test_order_notifications_cannot_be_turned_off(client, engine):
    bottle = await product(engine, price=100)
    me = await walker_with_coins(client, engine, 500)
    token = me["access_token"]
    await add_device(client, {"headers": bearer(token)}, "android", android_token(62))
    off = await client.put(
        "/v1/me/notification-preferences",
        json={"types": {"review_outcome": {"push": False, "inbox": False}}},
        headers=bearer(token),
    )
    assert off.status_code == 200
    placed = (await order(client, token, [(bottle, 1)])).json()
    await client.post(f"/v1/orders/{placed['id']}/cancel", headers=bearer(token))
    [(kind, _, _, push, inbox)] = await notes(engine, me["user"]["id"])
    assert (kind, push, inbox) == ("order", "pending", True)


async def test_achievement_unlocked_once(client, app, engine):
    await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 50)
    me = (await register(client))["user"]["id"]
    await set_days(engine, me, {date(2026, 3, 2): 12000})
    assert await evaluate(app, me) == ["ten_k"]
    assert await evaluate(app, me) == []
    [(kind, title, data, push, _)] = await notes(engine, me)
    # no push device: the inbox row only, and no push job (push_status no_device)
    assert (kind, title, push) == ("achievement", "Achievement unlocked: Ten K", "no_device")
    assert data == {"code": "ten_k", "reward_coins": 50}

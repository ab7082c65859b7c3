"""A walker with a low trust score (stepcoin.fairplay.trust) has orders held for a reviewer
before they reach Shopify (issue 16, item 2): released, they go once; cancelled, the coins come
back; an honest walker's order goes straight through."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from stepcoin.shop.tasks import sync_catalogue
from tests.conftest import bearer
from tests.shop.conftest import run_jobs
from tests.shop.helpers import order, walker_with_coins
from tests.shop.test_shopify_flow import order_row, products, vgid
from tests.steps.helpers import ledger_ok, make_admin, rec, sync, wallet


async def _bottle(app: Any, engine: Any, standin: Any) -> int:
    bottle = standin.add_product(title="Bottle", price="12.50", inventory=10)
    await sync_catalogue(app.state.database, trigger="test")
    return int((await products(engine))[vgid(bottle.variants[0])]["id"])


async def _farm_walker(client: Any, engine: Any) -> dict[str, Any]:
    """The last of four accounts on one phone: three linked accounts, a trust score of 20."""
    accounts = [await walker_with_coins(client, engine, 5000) for _ in range(4)]
    for account in accounts:
        await sync(client, account["access_token"], rec(1, 6000, device_id="farm-phone"))
    return accounts[-1]


async def test_a_low_trust_order_waits_for_a_reviewer_then_goes_once(client, app, engine, standin):
    admin = await make_admin(client, engine)
    product_id = await _bottle(app, engine, standin)
    farm = await _farm_walker(client, engine)
    placed = (await order(client, farm["access_token"], [(product_id, 1)])).json()
    await run_jobs(app)
    row = await order_row(engine, placed["id"])
    assert row["status"] == "held" and row["held_at"] is not None
    assert standin.orders_with_tag(f"stepcoin-{placed['order_code']}") == []
    mine = await client.get(f"/v1/orders/{placed['id']}", headers=bearer(farm["access_token"]))
    assert mine.json()["status"] == "held"
    held = await client.get("/v1/admin/orders?status=held", headers=bearer(admin))
    assert [o["id"] for o in held.json()["items"]] == [placed["id"]]

    released = await client.patch(
        f"/v1/admin/orders/{placed['id']}",
        json={"status": "pending", "note": "known walker"},
        headers=bearer(admin),
    )
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "pending"
    await run_jobs(app)
    await run_jobs(app)
    assert (await order_row(engine, placed["id"]))["status"] == "submitted"
    assert len(standin.orders_with_tag(f"stepcoin-{placed['order_code']}")) == 1
    async with engine.connect() as conn:
        actions = (
            await conn.execute(
                text("SELECT action FROM admin_logs WHERE entity_id = :id ORDER BY id"),
                {"id": placed["id"]},
            )
        ).scalars()
        assert list(actions) == ["order.held", "order.released"]


async def test_a_held_order_cancelled_by_staff_or_walker_gives_the_coins_back(
    client, app, engine, standin
):
    admin = await make_admin(client, engine)
    product_id = await _bottle(app, engine, standin)
    farm = await _farm_walker(client, engine)
    before = (await wallet(client, farm["access_token"]))["available_coins"]
    first = (await order(client, farm["access_token"], [(product_id, 1)])).json()
    second = (await order(client, farm["access_token"], [(product_id, 1)])).json()
    await run_jobs(app)
    assert (await order_row(engine, first["id"]))["status"] == "held"
    assert (await order_row(engine, second["id"]))["status"] == "held"

    refused = await client.patch(
        f"/v1/admin/orders/{first['id']}", json={"status": "cancelled"}, headers=bearer(admin)
    )
    assert refused.status_code == 200 and refused.json()["status"] == "cancelled"
    cancelled = await client.post(
        f"/v1/orders/{second['id']}/cancel", headers=bearer(farm["access_token"])
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await wallet(client, farm["access_token"]))["available_coins"] == before
    again = await client.patch(
        f"/v1/admin/orders/{first['id']}", json={"status": "pending"}, headers=bearer(admin)
    )
    assert again.status_code == 409
    await ledger_ok(engine)


async def test_an_honest_walkers_order_is_not_held(client, app, engine, standin):
    product_id = await _bottle(app, engine, standin)
    walker = await walker_with_coins(client, engine, 5000)
    placed = (await order(client, walker["access_token"], [(product_id, 1)])).json()
    await run_jobs(app)
    assert (await order_row(engine, placed["id"]))["status"] == "submitted"


async def test_the_hold_can_be_switched_off(client, app, engine, standin):
    admin = await make_admin(client, engine)
    switched = await client.put(
        "/v1/admin/settings/fairplay.redemption_hold_below",
        json={"value": 0},
        headers=bearer(admin),
    )
    assert switched.status_code == 200, switched.text
    product_id = await _bottle(app, engine, standin)
    farm = await _farm_walker(client, engine)
    placed = (await order(client, farm["access_token"], [(product_id, 1)])).json()
    await run_jobs(app)
    assert (await order_row(engine, placed["id"]))["status"] == "submitted"


async def test_deleting_the_account_refunds_a_held_order(client, app, engine, standin):
    product_id = await _bottle(app, engine, standin)
    farm = await _farm_walker(client, engine)
    placed = (await order(client, farm["access_token"], [(product_id, 1)])).json()
    await run_jobs(app)
    assert (await order_row(engine, placed["id"]))["status"] == "held"
    gone = await client.request(
        "DELETE",
        "/v1/me",
        json={"password": farm["password"]},
        headers=bearer(farm["access_token"]),
    )
    assert gone.status_code == 204, gone.text
    assert (await order_row(engine, placed["id"]))["status"] == "cancelled"
    await ledger_ok(engine)

"""A deactivated walker's still-valid access token opens none of the order routes (issue 12,
hole 6): no list with shipping addresses, no order, no cancel with a refund."""

from __future__ import annotations

from sqlalchemy import text

from tests.admin.helpers import make_staff
from tests.conftest import bearer
from tests.shop.helpers import order, product, walker_with_coins


async def test_order_routes_refuse_a_deactivated_account(client, engine):
    bottle = await product(engine, price=100)
    walker = await walker_with_coins(client, engine, 300)
    token = walker["access_token"]
    placed = await order(client, token, [(bottle, 1)])
    assert placed.status_code == 201
    order_id = placed.json()["id"]
    admin = await make_staff(client, engine)
    off = await client.patch(
        f"/v1/admin/users/{walker['user']['id']}",
        json={"is_active": False},
        headers=admin["headers"],
    )
    assert off.status_code == 200, off.text

    for method, path in [
        ("GET", "/v1/orders"),
        ("GET", f"/v1/orders/{order_id}"),
        ("POST", f"/v1/orders/{order_id}/cancel"),
    ]:
        response = await client.request(method, path, headers=bearer(token))
        assert response.status_code == 401, (path, response.text)
        assert response.json()["code"] == "invalid_token"
    async with engine.connect() as conn:
        status = (
            await conn.execute(text("SELECT status FROM orders WHERE id = :id"), {"id": order_id})
        ).scalar_one()
        refunds = (
            await conn.execute(
                text("SELECT count(*) FROM coin_transactions WHERE transaction_type = 'refund'")
            )
        ).scalar_one()
    assert (status, refunds) == ("pending", 0)

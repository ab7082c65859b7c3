"""Staff never pay themselves: no adjustment of one's own wallet, no review of one's own record
(issue 12, hole 7; the rules live in the wallet and review services, so API and console agree)."""

from __future__ import annotations

from tests.admin.helpers import adjust, count, make_staff
from tests.conftest import bearer
from tests.steps.helpers import rec, sync, wallet


async def test_an_admin_cannot_adjust_their_own_wallet(client, engine):
    admin = await make_staff(client, engine)
    response = await adjust(client, admin, admin["user"]["id"], 1_000_000, "bonus for me")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "own_wallet"
    assert await count(engine, "SELECT count(*) FROM coin_transactions") == 0
    assert await count(engine, "SELECT count(*) FROM admin_logs") == 0
    assert (await wallet(client, admin["access_token"]))["available_coins"] == 0


async def test_staff_cannot_review_their_own_flagged_record(client, engine):
    for role in ("support", "admin"):
        staff = await make_staff(client, engine, role)
        flagged = await sync(client, staff["access_token"], rec(1, 9000, manual=True))
        assert flagged[0]["status"] == "flagged"
        queue = await client.get(
            "/v1/admin/validations", params={"status": "flagged"}, headers=staff["headers"]
        )
        mine = [i for i in queue.json()["items"] if i["user"]["id"] == staff["user"]["id"]]
        approve = await client.post(
            f"/v1/admin/validations/{mine[0]['id']}/approve", json={}, headers=staff["headers"]
        )
        assert approve.status_code == 403, approve.text
        assert approve.json()["code"] == "own_record"
        assert (await wallet(client, staff["access_token"]))["available_coins"] == 0
        # another reviewer may decide it
        other = await make_staff(client, engine, "admin")
        ok = await client.post(
            f"/v1/admin/validations/{mine[0]['id']}/approve",
            json={},
            headers=bearer(other["access_token"]),
        )
        assert ok.status_code == 200, ok.text
        assert (await wallet(client, staff["access_token"]))["available_coins"] == 90

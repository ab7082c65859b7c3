"""GET /v1/me/export: everything held about the walker, and nothing of anyone else."""

from __future__ import annotations

import json

from sqlalchemy import text

from tests.accounts.helpers import verified_walker_with_coins
from tests.achievements.helpers import achievement, evaluate
from tests.conftest import GOOGLE_CLIENT_ID, bearer
from tests.shop.helpers import order, product
from tests.steps.helpers import rec, sync


async def busy_walker(app, client, engine, bottle: int, steps: int):
    """A walker with synced steps (records, days, step rewards), an order and an achievement."""
    me = await verified_walker_with_coins(client, engine, 500)
    await sync(
        client,
        me["access_token"],
        rec(1, steps, device_id="export-phone"),
        rec(2, steps + 1, source="manual"),
    )
    placed = (await order(client, me["access_token"], [(bottle, 1)])).json()
    await evaluate(app, me["user"]["id"])
    return me, placed


async def test_the_export_holds_the_walkers_data_and_nothing_of_another(
    app, client, engine, keyset
):
    await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 5)
    bottle = await product(engine, price=100, stock=10)
    me, mine = await busy_walker(app, client, engine, bottle, 12_345)
    other, theirs = await busy_walker(app, client, engine, bottle, 11_111)
    google = keyset.id_token(
        issuer="https://accounts.google.com",
        audience=GOOGLE_CLIENT_ID,
        subject="google-export-1",
        email=me["user"]["email"],
    )
    async with engine.begin() as conn:  # a verified email: Google sign-in links to it
        await conn.execute(
            text("UPDATE users SET email_verified_at = now() WHERE id = :id"),
            {"id": me["user"]["id"]},
        )
    linked = await client.post("/v1/auth/google", json={"id_token": google})
    assert linked.status_code == 200, linked.text

    response = await client.get("/v1/me/export", headers=bearer(me["access_token"]))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["cache-control"] == "no-store"
    data = response.json()

    assert data["format"] == "stepcoin-export/1"
    assert data["profile"]["id"] == me["user"]["id"]
    assert data["profile"]["email"] == me["user"]["email"]
    assert data["profile"]["wallet"]["available_coins"] >= 400
    assert {s["steps"] for s in data["steps"]["records"]} == {12_345, 12_346}
    assert all("status" in s and "reasons" in s for s in data["steps"]["records"])
    assert {d["credited_steps"] for d in data["steps"]["days"]} >= {12_345}
    assert [d["device_id"] for d in data["steps"]["devices"]] == ["export-phone"]
    assert data["standing"]["standing"] in {"good", "building", "limited"}
    assert "score" not in str(data["standing"])
    assert [o["id"] for o in data["orders"]] == [mine["id"]]
    assert data["orders"][0]["items"][0]["product_id"] == bottle
    assert data["orders"][0]["shipping_address"]["line1"] == "1 Step Street"
    types = {row["transaction_type"] for row in data["ledger"]}
    assert {"admin_adjustment", "redemption", "step_reward"} <= types
    assert [a["code"] for a in data["achievements"]] == ["ten_k"]
    assert len(data["sessions"]) == 2  # registration and the Google sign-in
    assert [s["current"] for s in data["sessions"]].count(True) == 1
    assert data["sign_ins"] and all("revoked_at" in s for s in data["sign_ins"])
    assert [(i["provider"], i["subject"]) for i in data["identities"]] == [
        ("google", "google-export-1")
    ]
    assert set(data["identities"][0]) == {"provider", "subject", "email", "created_at"}

    raw = response.text
    for foreign in (other["user"]["id"], other["user"]["email"], theirs["id"], "11111", "11112"):
        assert foreign not in raw
    assert "password" not in raw and "token_hash" not in raw and "totp" not in raw
    assert json.loads(raw) == data


async def test_the_export_is_for_the_signed_in_walker_only(client):
    assert (await client.get("/v1/me/export")).status_code == 401
    forged = {"Authorization": "Bearer not-a-token"}
    assert (await client.get("/v1/me/export", headers=forged)).status_code == 401
    # the walker is named by the token alone (no id in the path), so there is no one else's
    # export to ask for; a deleted walker's token gets nothing (test_deletion)

"""The review queue: flagged records wait; approve pays the held coins, reject releases them."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import bearer, register
from tests.steps.helpers import ledger_ok, make_admin, rec, sync, wallet


async def flagged_walker(client):
    me = await register(client)
    results = await sync(client, me["access_token"], rec(1, 9000, manual=True))
    assert results[0]["status"] == "flagged" and results[0]["coins_pending"] == 90
    return me


async def queue(client, token, **params):
    response = await client.get("/v1/admin/validations", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


async def test_queue_shows_flagged_records_with_hits_history_and_sources(client, engine):
    walker = await register(client)
    token = walker["access_token"]
    await sync(client, token, rec(3, 4000), rec(2, 5000))
    await sync(client, token, rec(1, 9000, manual=True), rec(1, 8800, "google_fit"))
    admin = await make_admin(client, engine)
    page = await queue(client, admin)
    assert len(page["items"]) == 1
    item = page["items"][0]
    assert item["user"]["id"] == walker["user"]["id"]
    assert item["rule_hits"][0]["code"] == "manual_entry"
    assert {"observed", "threshold", "action"} <= set(item["rule_hits"][0])
    assert [h["credited_steps"] for h in item["history"]] == [4000, 5000]
    assert {s["source"] for s in item["day_sources"]} == {"healthkit", "google_fit"}


async def test_queue_is_oldest_first_and_paginates(client, engine):
    admin = await make_admin(client, engine)
    walkers = [await flagged_walker(client) for _ in range(3)]
    first = await queue(client, admin, limit=2)
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = await queue(client, admin, limit=2, cursor=first["next_cursor"])
    ids = [i["user"]["id"] for i in first["items"] + second["items"]]
    assert ids == [w["user"]["id"] for w in walkers]
    assert second["next_cursor"] is None
    bad = await client.get(
        "/v1/admin/validations", params={"cursor": "nonsense"}, headers=bearer(admin)
    )
    assert bad.status_code == 422


async def test_approve_credits_the_held_coins_once(client, engine):
    walker = await flagged_walker(client)
    admin = await make_admin(client, engine)
    item = (await queue(client, admin))["items"][0]
    approve = await client.post(
        f"/v1/admin/validations/{item['id']}/approve",
        json={"note": "looks fine"},
        headers=bearer(admin),
    )
    assert approve.status_code == 200, approve.text
    assert approve.json()["coins_awarded"] == 90
    assert await wallet(client, walker["access_token"]) == {
        "available_coins": 90,
        "pending_coins": 0,
        "lifetime_earned": 90,
        "lifetime_spent": 0,
    }
    again = await client.post(f"/v1/admin/validations/{item['id']}/approve", headers=bearer(admin))
    assert again.status_code == 409
    assert (await wallet(client, walker["access_token"]))["available_coins"] == 90
    assert (await queue(client, admin))["items"] == []
    async with engine.connect() as conn:
        log = (
            await conn.execute(
                text("SELECT action, changes FROM admin_logs WHERE entity_type = 'step_validation'")
            )
        ).one()
    assert log.action == "validation.approve"
    assert log.changes["before"]["status"] == "flagged"
    assert log.changes["after"]["coins_awarded"] == 90
    await ledger_ok(engine)


async def test_reject_releases_the_hold_and_the_walker_sees_the_note(client, engine):
    walker = await flagged_walker(client)
    admin = await make_admin(client, engine)
    item = (await queue(client, admin))["items"][0]
    reject = await client.post(
        f"/v1/admin/validations/{item['id']}/reject",
        json={"note": "typed in by hand"},
        headers=bearer(admin),
    )
    assert reject.status_code == 200
    assert await wallet(client, walker["access_token"]) == {
        "available_coins": 0,
        "pending_coins": 0,
        "lifetime_earned": 0,
        "lifetime_spent": 0,
    }
    items = (await client.get("/v1/steps", headers=bearer(walker["access_token"]))).json()["items"]
    assert items[0]["status"] == "rejected" and items[0]["review_note"] == "typed in by hand"
    await ledger_ok(engine)


async def test_a_newer_sync_supersedes_the_waiting_review(client, engine):
    walker = await flagged_walker(client)
    admin = await make_admin(client, engine)
    old = (await queue(client, admin))["items"][0]
    newer = await sync(client, walker["access_token"], rec(1, 7000))
    assert newer[0]["status"] == "approved" and newer[0]["coins_awarded"] == 70
    assert (await wallet(client, walker["access_token"]))["pending_coins"] == 0
    stale = await client.post(f"/v1/admin/validations/{old['id']}/approve", headers=bearer(admin))
    assert stale.status_code == 409 and stale.json()["code"] == "superseded"
    await ledger_ok(engine)


async def test_review_needs_a_reviewer(client, engine):
    walker = await flagged_walker(client)
    anonymous = await client.get("/v1/admin/validations")
    assert anonymous.status_code == 401
    as_walker = await client.get("/v1/admin/validations", headers=bearer(walker["access_token"]))
    assert as_walker.status_code == 403
    support = await make_admin(client, engine, role="support")
    item = (await queue(client, support))["items"][0]
    forbidden = await client.post(
        f"/v1/admin/validations/{item['id']}/approve", headers=bearer(walker["access_token"])
    )
    assert forbidden.status_code == 403
    missing = await client.post("/v1/admin/validations/999999/approve", headers=bearer(support))
    assert missing.status_code == 404
    ok = await client.post(f"/v1/admin/validations/{item['id']}/reject", headers=bearer(support))
    assert ok.status_code == 200


async def test_flagged_higher_resync_keeps_what_was_approved(client, engine):
    me = await register(client)
    token = me["access_token"]
    async with engine.begin() as conn:  # an old account, so only the baseline rules can fire
        await conn.execute(
            text("UPDATE users SET created_at = now() - interval '90 days' WHERE id = :id"),
            {"id": me["user"]["id"]},
        )
        await conn.execute(
            text(
                "UPDATE settings SET value = '1' WHERE key = 'anticheat.baseline_min_history_days'"
            )
        )
    from stepcoin.runtime_settings.service import runtime_settings

    runtime_settings.invalidate()
    await sync(client, token, rec(3, 5000), rec(2, 5000))
    await sync(client, token, rec(1, 6000))
    jump = await sync(client, token, rec(1, 19000))
    # 19,000 after days of 5,000-6,000: far above the walker's highest day lately
    assert jump[0]["status"] == "flagged" and jump[0]["reasons"] == ["sudden_jump"]
    assert jump[0]["coins_awarded"] == 0 and jump[0]["coins_pending"] == 130
    assert await wallet(client, token) == {
        "available_coins": 160,
        "pending_coins": 130,
        "lifetime_earned": 160,
        "lifetime_spent": 0,
    }
    await ledger_ok(engine)


async def test_a_flagged_record_shows_the_coins_it_holds(client, engine):
    walker = await flagged_walker(client)
    async with engine.connect() as conn:
        held = (
            await conn.execute(
                text("SELECT coins_pending FROM step_validations WHERE user_id = :u"),
                {"u": walker["user"]["id"]},
            )
        ).scalar_one()
    assert held == 90
    admin = await make_admin(client, engine)
    items = (await queue(client, admin, status="flagged"))["items"]
    assert [i["coins_pending"] for i in items] == [90]

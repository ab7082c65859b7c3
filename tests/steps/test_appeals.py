"""Appeals: a walker sends a rejected day back to review once (POST /v1/steps/{date}/appeal);
the reviewer's approve pays the day once, reject keeps it rejected; the walker sees both."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import bearer, register
from tests.steps.helpers import day, ledger_ok, make_admin, rec, sync, wallet


async def queue(client, token):
    response = await client.get("/v1/admin/validations", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def rejected_walker(client, admin: str, note: str = "typed in by hand"):
    """A walker whose manual entry of yesterday (9000 steps, 90 coins) a reviewer rejected."""
    me = await register(client)
    results = await sync(client, me["access_token"], rec(1, 9000, manual=True))
    assert results[0]["status"] == "flagged" and results[0]["coins_pending"] == 90
    [item] = [i for i in await queue(client, admin) if i["user"]["id"] == me["user"]["id"]]
    response = await client.post(
        f"/v1/admin/validations/{item['id']}/reject", json={"note": note}, headers=bearer(admin)
    )
    assert response.status_code == 200, response.text
    return me


async def appeal(client, token: str, offset: int = 1, note: str = "I walked, really"):
    return await client.post(
        f"/v1/steps/{day(offset)}/appeal", json={"note": note}, headers=bearer(token)
    )


async def my_day(client, token: str, offset: int = 1) -> dict:
    items = (await client.get("/v1/steps", headers=bearer(token))).json()["items"]
    [item] = [i for i in items if i["date"] == day(offset)]
    return item


async def test_appeal_then_approve_pays_the_day_once(client, engine):
    admin = await make_admin(client, engine)
    walker = await rejected_walker(client, admin)
    token = walker["access_token"]
    assert (await my_day(client, token))["appeal"] is None
    response = await appeal(client, token)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["sources"] == ["healthkit"] and body["status"] == "pending"
    assert body["coins_pending"] == 90
    assert await wallet(client, token) == {
        "available_coins": 0,
        "pending_coins": 90,
        "lifetime_earned": 0,
        "lifetime_spent": 0,
    }
    mine = await my_day(client, token)
    assert mine["status"] == "flagged" and mine["reasons"] == ["appeal"]
    assert mine["appeal"]["status"] == "pending"
    assert mine["appeal"]["note"] == "I walked, really"
    assert mine["appeal"]["review_note"] is None and mine["appeal"]["decided_at"] is None

    [item] = await queue(client, admin)
    assert item["appeal"]["note"] == "I walked, really"
    original = item["appeal"]["original"]
    assert original["status"] == "rejected" and original["note"] == "typed in by hand"
    assert [h["code"] for h in original["rule_hits"]] == ["manual_entry"]
    assert item["coins_pending"] == 90

    approve = await client.post(
        f"/v1/admin/validations/{item['id']}/approve",
        json={"note": "the watch agrees"},
        headers=bearer(admin),
    )
    assert approve.status_code == 200, approve.text
    assert approve.json()["coins_awarded"] == 90
    again = await client.post(f"/v1/admin/validations/{item['id']}/approve", headers=bearer(admin))
    assert again.status_code == 409
    second = await appeal(client, token, note="and once more")
    assert second.status_code == 409 and second.json()["code"] == "already_appealed"
    # a resend of the same day changes nothing
    await sync(client, token, rec(1, 9000, manual=True))
    assert await wallet(client, token) == {
        "available_coins": 90,
        "pending_coins": 0,
        "lifetime_earned": 90,
        "lifetime_spent": 0,
    }
    mine = await my_day(client, token)
    assert mine["status"] == "approved" and mine["review_note"] == "the watch agrees"
    assert mine["appeal"]["status"] == "approved"
    assert mine["appeal"]["review_note"] == "the watch agrees"
    assert mine["appeal"]["decided_at"] is not None
    async with engine.connect() as conn:
        logs = (
            await conn.execute(
                text(
                    "SELECT action, changes FROM admin_logs "
                    "WHERE entity_type = 'step_validation' AND entity_id = :id"
                ),
                {"id": str(item["id"])},
            )
        ).all()
        rewards = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM coin_transactions WHERE user_id = :u "
                    "AND transaction_type = 'step_reward'"
                ),
                {"u": walker["user"]["id"]},
            )
        ).scalar_one()
    assert [log.action for log in logs] == ["validation.approve"]
    assert logs[0].changes["appeal"] is True
    assert rewards == 1
    await ledger_ok(engine)


async def test_appeal_then_reject_keeps_the_day_rejected(client, engine):
    admin = await make_admin(client, engine)
    walker = await rejected_walker(client, admin)
    token = walker["access_token"]
    assert (await appeal(client, token)).status_code == 201
    [item] = await queue(client, admin)
    reject = await client.post(
        f"/v1/admin/validations/{item['id']}/reject",
        json={"note": "still typed in"},
        headers=bearer(admin),
    )
    assert reject.status_code == 200, reject.text
    assert reject.json()["coins_awarded"] == 0
    assert await wallet(client, token) == {
        "available_coins": 0,
        "pending_coins": 0,
        "lifetime_earned": 0,
        "lifetime_spent": 0,
    }
    mine = await my_day(client, token)
    assert mine["status"] == "rejected" and mine["review_note"] == "still typed in"
    assert mine["appeal"]["status"] == "rejected"
    assert mine["appeal"]["review_note"] == "still typed in"
    assert mine["appeal"]["note"] == "I walked, really"
    second = await appeal(client, token)
    assert second.status_code == 409 and second.json()["code"] == "already_appealed"
    assert await queue(client, admin) == []
    await ledger_ok(engine)


async def test_a_day_the_rules_rejected_can_be_appealed(client, engine):
    admin = await make_admin(client, engine)
    walker = await register(client)
    token = walker["access_token"]
    [result] = await sync(client, token, rec(2, 500_000))
    assert result["status"] == "rejected" and "over_daily_max" in result["reasons"]
    response = await appeal(client, token, offset=2)
    assert response.status_code == 201, response.text
    [item] = await queue(client, admin)
    assert item["appeal"]["original"]["reviewed_at"] is None
    assert item["appeal"]["original"]["decided_at"] is not None
    assert "over_daily_max" in [h["code"] for h in item["appeal"]["original"]["rule_hits"]]
    await ledger_ok(engine)


async def test_a_rejection_older_than_30_days_cannot_be_appealed(client, engine):
    admin = await make_admin(client, engine)
    walker = await rejected_walker(client, admin)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE step_validations SET reviewed_at = now() - interval '30 days 1 minute', "
                "created_at = now() - interval '31 days' WHERE user_id = :u"
            ),
            {"u": walker["user"]["id"]},
        )
    late = await appeal(client, walker["access_token"])
    assert late.status_code == 422 and late.json()["code"] == "appeal_window_closed"
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE step_validations SET reviewed_at = now() - interval '29 days' "
                "WHERE user_id = :u"
            ),
            {"u": walker["user"]["id"]},
        )
    assert (await appeal(client, walker["access_token"])).status_code == 201


async def test_only_a_rejected_day_of_ones_own_can_be_appealed(client, engine):
    admin = await make_admin(client, engine)
    walker = await register(client)
    token = walker["access_token"]
    await sync(client, token, rec(3, 5000), rec(2, 9000, manual=True))
    approved = await appeal(client, token, offset=3)
    assert approved.status_code == 409 and approved.json()["code"] == "not_rejected"
    flagged = await appeal(client, token, offset=2)
    assert flagged.status_code == 409 and flagged.json()["code"] == "not_rejected"
    missing = await appeal(client, token, offset=4)
    assert missing.status_code == 404 and missing.json()["code"] == "step_day_not_found"

    owner = await rejected_walker(client, admin)
    other = await appeal(client, token)  # the path is the caller's own day: not the owner's
    assert other.status_code == 404
    anonymous = await client.post(f"/v1/steps/{day(1)}/appeal", json={"note": "x"})
    assert anonymous.status_code == 401
    mine = await my_day(client, owner["access_token"])
    assert mine["status"] == "rejected" and mine["appeal"] is None
    assert [i["user"]["id"] for i in await queue(client, admin)] == [walker["user"]["id"]]


async def test_an_appeal_needs_a_note(client, engine):
    admin = await make_admin(client, engine)
    walker = await rejected_walker(client, admin)
    token = walker["access_token"]
    for body in ({}, {"note": ""}, {"note": "x" * 1001}, {"note": "ok", "extra": 1}):
        response = await client.post(f"/v1/steps/{day(1)}/appeal", json=body, headers=bearer(token))
        assert response.status_code == 422, body
    blank = await appeal(client, token, note="   ")
    assert blank.status_code == 422 and blank.json()["code"] == "note"
    bad_day = await client.post(
        "/v1/steps/not-a-day/appeal", json={"note": "x"}, headers=bearer(token)
    )
    assert bad_day.status_code == 422
    assert (await my_day(client, token))["appeal"] is None


async def test_appeals_are_rate_limited_per_account(client, engine):
    from stepcoin.runtime_settings.service import runtime_settings

    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE settings SET value = to_jsonb(CAST('1/hour' AS text)) "
                "WHERE key = 'ratelimit.appeals_per_account'"
            )
        )
    runtime_settings.invalidate()
    admin = await make_admin(client, engine)
    walker = await rejected_walker(client, admin)
    token = walker["access_token"]
    assert (await appeal(client, token, offset=5)).status_code == 404  # counted all the same
    refused = await appeal(client, token)
    assert refused.status_code == 429 and refused.json()["policy"] == "appeals_per_account"
    assert (await my_day(client, token))["appeal"] is None


async def test_an_approved_appeal_pays_under_the_steps_budget(client, app, engine):
    from stepcoin.queue import JobRuntime
    from stepcoin.steps.tasks import release_budget_holds
    from stepcoin.wallet import budgets

    admin = await make_admin(client, engine)
    walker = await rejected_walker(client, admin)
    token = walker["access_token"]
    assert (await appeal(client, token)).status_code == 201
    put = await client.put(
        "/v1/admin/economy/budgets/steps/day",
        json={"cap_coins": 50 * budgets.STRIPES, "alert_percent": 50},
        headers=bearer(admin),
    )
    assert put.status_code == 200, put.text
    [item] = await queue(client, admin)
    full = await client.post(f"/v1/admin/validations/{item['id']}/approve", headers=bearer(admin))
    assert full.status_code == 409 and full.json()["code"] == "issuance_budget_reached"
    # an appeal waits for a person: the budget's release job does not approve it
    JobRuntime.database = app.state.database
    assert await release_budget_holds(timestamp=0) == 0
    assert await wallet(client, token) == {
        "available_coins": 0,
        "pending_coins": 90,
        "lifetime_earned": 0,
        "lifetime_spent": 0,
    }
    put = await client.put(
        "/v1/admin/economy/budgets/steps/day",
        json={"cap_coins": 100 * budgets.STRIPES, "alert_percent": 50},
        headers=bearer(admin),
    )
    assert put.status_code == 200, put.text
    paid = await client.post(f"/v1/admin/validations/{item['id']}/approve", headers=bearer(admin))
    assert paid.status_code == 200 and paid.json()["coins_awarded"] == 90
    assert (await wallet(client, token))["available_coins"] == 90
    await ledger_ok(engine)

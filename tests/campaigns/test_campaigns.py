"""Issue 15 item 3: campaigns pay a segment of walkers once each, set-based in chunks,
resumable, with a preview, a second admin's approval above the threshold, and the campaign's
message on each walker's ledger row."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import text

from tests.achievements.helpers import set_days
from tests.admin.helpers import count, ledger_report, make_staff
from tests.campaigns.helpers import (
    campaign_rows,
    create,
    many_walkers,
    pay_one_chunk,
    run_job,
    set_setting,
)
from tests.conftest import bearer, register

CHUNK = "economy.campaign_chunk_walkers"
THRESHOLD = "economy.campaign_approval_threshold_coins"


async def test_a_list_campaign_pays_each_walker_once_with_its_message(app, client, engine):
    await set_setting(engine, CHUNK, 100)  # 301 walkers: four chunks
    admin = await make_staff(client, engine)
    other_admin = await make_staff(client, engine)
    walkers = await many_walkers(engine, 300)
    app_walker = await register(client)
    listed = [*walkers, app_walker["user"]["id"], other_admin["user"]["id"], str(uuid.uuid4())]
    created = await create(client, admin, {"user_ids": listed}, coins=25)
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert campaign["status"] == "draft" and campaign["walkers_paid"] == 0

    preview = await client.post(
        f"/v1/admin/campaigns/{campaign['id']}/preview", headers=admin["headers"]
    )
    assert preview.status_code == 200, preview.text
    seen = preview.json()
    # staff and an unknown id are never in a segment
    assert seen["walkers"] == 301 and seen["total_coins"] == 301 * 25
    assert len(seen["sample"]) == 10
    assert {s["user_id"] for s in seen["sample"]} <= set(listed) - {other_admin["user"]["id"]}
    assert seen["needs_approval"] is False

    started = await client.post(
        f"/v1/admin/campaigns/{campaign['id']}/run", headers=admin["headers"]
    )
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "running" and started.json()["walkers_total"] == 301
    again = await client.post(f"/v1/admin/campaigns/{campaign['id']}/run", headers=admin["headers"])
    assert again.status_code == 202  # already running: the same run, no second job
    jobs = await count(
        engine, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'campaigns:run'"
    )
    assert jobs == 1

    result = await run_job(app, campaign["id"])
    assert result["chunks"] == 4
    done = (
        await client.get(f"/v1/admin/campaigns/{campaign['id']}", headers=admin["headers"])
    ).json()
    assert done["status"] == "done" and done["finished_at"] is not None
    assert (done["walkers_paid"], done["coins_paid"]) == (301, 301 * 25)

    rows = await campaign_rows(engine, campaign["id"])
    assert sorted(str(r.user_id) for r in rows) == sorted([*walkers, app_walker["user"]["id"]])
    assert {(r.amount, r.note) for r in rows} == {(25, "Thanks for walking with us this spring!")}
    mine = await client.get("/v1/wallet/transactions", headers=bearer(app_walker["access_token"]))
    [row] = mine.json()["items"]
    assert row["transaction_type"] == "campaign_reward"
    assert row["note"] == "Thanks for walking with us this spring!" and row["amount"] == 25
    async with engine.connect() as conn:
        earned = (
            await conn.execute(
                text("SELECT lifetime_earned FROM wallets WHERE user_id = :u"),
                {"u": app_walker["user"]["id"]},
            )
        ).scalar_one()
    assert earned == 25

    finished = await client.post(
        f"/v1/admin/campaigns/{campaign['id']}/run", headers=admin["headers"]
    )
    assert finished.status_code == 409 and finished.json()["code"] == "campaign_already_run"
    await run_job(app, campaign["id"])  # a stray second run of the job pays nobody
    assert len(await campaign_rows(engine, campaign["id"])) == 301
    assert (await ledger_report(engine)).ok
    actions = await count(
        engine,
        "SELECT count(DISTINCT action) FROM admin_logs WHERE entity_type = 'campaign' "
        "AND entity_id = :id AND action IN ('campaign.created', 'campaign.previewed', "
        "'campaign.run')",
        id=campaign["id"],
    )
    assert actions == 3


async def test_a_run_replayed_from_a_lost_cursor_pays_nobody_twice(app, client, engine):
    """A run that restarts from an older cursor (a chunk paid again) moves no coin twice:
    every walker's row has the reference campaign:<id>:<user>; the progress counts new rows."""
    await set_setting(engine, CHUNK, 100)
    admin = await make_staff(client, engine)
    walkers = await many_walkers(engine, 250)
    campaign = (await create(client, admin, {"all_walkers": True}, coins=7)).json()
    assert (
        await client.post(f"/v1/admin/campaigns/{campaign['id']}/run", headers=admin["headers"])
    ).status_code == 202
    assert await pay_one_chunk(app, campaign["id"], 100) is False
    assert await pay_one_chunk(app, campaign["id"], 100) is False
    assert len(await campaign_rows(engine, campaign["id"])) == 200
    async with engine.begin() as conn:  # the cursor goes back to the start
        await conn.execute(
            text("UPDATE campaigns SET resume_after = NULL WHERE id = :id"), {"id": campaign["id"]}
        )
    await run_job(app, campaign["id"])
    rows = await campaign_rows(engine, campaign["id"])
    assert sorted(str(r.user_id) for r in rows) == walkers
    got = (
        await client.get(f"/v1/admin/campaigns/{campaign['id']}", headers=admin["headers"])
    ).json()
    assert (got["status"], got["walkers_paid"], got["coins_paid"]) == ("done", 250, 250 * 7)
    assert (await ledger_report(engine)).ok


async def test_filters_pick_walkers_by_steps_sign_up_and_orders(app, client, engine):
    admin = await make_staff(client, engine)
    old, walked, ordered, fresh = await many_walkers(engine, 4)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET created_at = '2026-01-05T12:00:00Z' WHERE id = ANY(:ids)"),
            {"ids": [uuid.UUID(old), uuid.UUID(walked), uuid.UUID(ordered)]},
        )
        await conn.execute(
            text(
                "INSERT INTO orders (user_id, order_code, total_coins, status, shipping_address,"
                " idempotency_key, request_fingerprint) VALUES (:u, 'SC-TEST1', 10, 'delivered',"
                " '{}', 'k1', 'f1')"
            ),
            {"u": ordered},
        )
    await set_days(engine, walked, {date(2026, 3, 1): 6000, date(2026, 3, 2): 5000})
    await set_days(engine, old, {date(2026, 3, 1): 9000, date(2026, 4, 1): 9000})
    steps = {"min_steps": 10_000, "steps_from": "2026-03-01", "steps_to": "2026-03-31"}

    async def walkers_of(segment):
        made = await create(client, admin, segment)
        assert made.status_code == 201, made.text
        preview = await client.post(
            f"/v1/admin/campaigns/{made.json()['id']}/preview", headers=admin["headers"]
        )
        return {s["user_id"] for s in preview.json()["sample"]}

    assert await walkers_of(steps) == {walked}
    assert await walkers_of({"joined_before": "2026-02-01"}) == {old, walked, ordered}
    assert await walkers_of({"has_not_ordered": True}) == {old, walked, fresh}
    assert await walkers_of({"joined_before": "2026-02-01", "has_not_ordered": True}) == {
        old,
        walked,
    }
    assert await walkers_of({"user_ids": [old, fresh], "has_not_ordered": True}) == {old, fresh}
    assert await walkers_of({"all_walkers": True}) == {old, walked, ordered, fresh}


async def test_above_the_threshold_a_second_admin_approves_first(app, client, engine):
    await set_setting(engine, THRESHOLD, 1_000)
    creator = await make_staff(client, engine)
    second = await make_staff(client, engine)
    await many_walkers(engine, 50)
    campaign = (await create(client, creator, {"all_walkers": True}, coins=25)).json()
    url = f"/v1/admin/campaigns/{campaign['id']}"
    preview = (await client.post(f"{url}/preview", headers=creator["headers"])).json()
    assert preview["needs_approval"] is True and preview["total_coins"] == 1_250

    refused = await client.post(f"{url}/run", headers=creator["headers"])
    assert refused.status_code == 409 and refused.json()["code"] == "campaign_needs_approval"
    own = await client.post(f"{url}/approve", headers=creator["headers"])
    assert own.status_code == 403 and own.json()["code"] == "own_campaign"
    approved = await client.post(f"{url}/approve", headers=second["headers"])
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "approved" and body["approved_coins"] == 1_250
    assert body["approved_by"] == second["user"]["id"]

    await many_walkers(engine, 2, prefix="late")  # the segment grew past what was approved
    grown = await client.post(f"{url}/run", headers=creator["headers"])
    assert grown.status_code == 409 and grown.json()["code"] == "campaign_needs_approval"
    assert (await client.post(f"{url}/approve", headers=second["headers"])).status_code == 200
    started = await client.post(f"{url}/run", headers=creator["headers"])
    assert started.status_code == 202, started.text
    late = await client.post(f"{url}/approve", headers=second["headers"])
    assert late.status_code == 409 and late.json()["code"] == "campaign_already_run"
    await run_job(app, campaign["id"])
    assert len(await campaign_rows(engine, campaign["id"])) == 52
    assert (
        await count(
            engine,
            "SELECT count(*) FROM admin_logs WHERE action = 'campaign.approved' AND admin_id = :a",
            a=second["user"]["id"],
        )
        == 2
    )


@pytest.mark.parametrize(
    "segment",
    [
        {},
        {"all_walkers": False},
        {"min_steps": 1000},
        {"steps_from": "2026-03-01", "steps_to": "2026-03-02"},
        {"min_steps": 1000, "steps_from": "2026-03-02", "steps_to": "2026-03-01"},
        {"min_steps": 1000, "steps_from": "2025-01-01", "steps_to": "2026-03-01"},
        {"all_walkers": True, "has_not_ordered": True},
        {"user_ids": []},
        {"user_ids": ["not-a-uuid"]},
        {"all_walkers": True, "vip": True},
        {"all_walkers": 1},
        {"joined_before": 0},
        {"min_steps": 1000.0, "steps_from": "2026-03-01", "steps_to": "2026-03-02"},
    ],
)
async def test_a_bad_segment_is_422(client, engine, segment):
    admin = await make_staff(client, engine)
    response = await create(client, admin, segment)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


async def test_who_may_do_what(client, engine):
    support = await make_staff(client, engine, role="support")
    admin = await make_staff(client, engine)
    walker = await register(client)
    assert (await create(client, support, {"all_walkers": True})).status_code == 403
    walker_headers = {"headers": bearer(walker["access_token"])}
    assert (await create(client, walker_headers, {"all_walkers": True})).status_code == 403
    assert (await client.get("/v1/admin/campaigns")).status_code == 401
    campaign = (await create(client, admin, {"all_walkers": True})).json()
    listed = await client.get("/v1/admin/campaigns", headers=support["headers"])
    assert [c["id"] for c in listed.json()["items"]] == [campaign["id"]]
    ids = [walker["user"]["id"], admin["user"]["id"]]
    named = (await create(client, admin, {"user_ids": ids, "has_not_ordered": True})).json()
    assert named["segment"]["user_ids"] == sorted(ids) and named["user_ids_count"] == 2
    listed = await client.get("/v1/admin/campaigns", headers=support["headers"])
    first = listed.json()["items"][0]
    assert first["id"] == named["id"] and first["user_ids_count"] == 2
    assert first["segment"] == {"has_not_ordered": True}  # the ids stay out of the list
    for path in ("preview", "approve", "run"):
        response = await client.post(
            f"/v1/admin/campaigns/{campaign['id']}/{path}", headers=support["headers"]
        )
        assert response.status_code == 403, path
    missing = await client.get(f"/v1/admin/campaigns/{uuid.uuid4()}", headers=admin["headers"])
    assert missing.status_code == 404 and missing.json()["code"] == "campaign_not_found"
    bad = await client.get("/v1/admin/campaigns/not-an-id", headers=admin["headers"])
    assert bad.status_code == 422


async def test_a_campaigns_budget_holds_who_does_not_fit_and_pays_them_later(app, client, engine):
    """Issue 15, item 2: a campaign pays under the campaigns' issuance budget; the walkers
    beyond the cap see the coins pending, and wallet:release_held pays them when there is
    room, each once."""
    from stepcoin.db import session_scope
    from stepcoin.wallet import budgets

    admin = await make_staff(client, engine)
    capped = await client.put(
        "/v1/admin/economy/budgets/campaigns/month",
        json={"cap_coins": 100, "alert_percent": 90},
        headers=admin["headers"],
    )
    assert capped.status_code == 200, capped.text
    walkers = await many_walkers(engine, 6)
    created = (await create(client, admin, {"user_ids": walkers}, coins=25)).json()
    started = await client.post(
        f"/v1/admin/campaigns/{created['id']}/run", headers=admin["headers"]
    )
    assert started.status_code == 202, started.text
    result = await run_job(app, created["id"])
    assert result["walkers_paid"] == 4  # 4 x 25 = the cap; two held
    assert len(await campaign_rows(engine, created["id"])) == 4
    assert await count(engine, "SELECT count(*) FROM issuance_holds") == 2
    assert await count(engine, "SELECT sum(pending_coins) FROM wallets") == 50
    assert (await ledger_report(engine)).ok
    await client.put(
        "/v1/admin/economy/budgets/campaigns/month",
        json={"cap_coins": 150, "alert_percent": 90},
        headers=admin["headers"],
    )
    async with session_scope(app.state.database) as session:
        assert await budgets.release_held(session) == 2
    rows = await campaign_rows(engine, created["id"])
    assert sorted(str(r.user_id) for r in rows) == sorted(walkers)  # everyone once
    assert await count(engine, "SELECT sum(pending_coins) FROM wallets") == 0
    assert (await ledger_report(engine)).ok

"""POST /v1/steps and GET /v1/steps through the API, on a real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import bearer, register
from tests.steps.helpers import day, ledger_ok, rec, sync, wallet


async def test_approved_days_pay_at_the_configured_rate(client, engine):
    me = await register(client)
    results = await sync(client, me["access_token"], rec(0, 8000), rec(1, 12345))
    assert [r["status"] for r in results] == ["approved", "approved"]
    assert [r["coins_awarded"] for r in results] == [80, 123]
    assert (await wallet(client, me["access_token"]))["available_coins"] == 203
    await ledger_ok(engine)


async def test_resync_higher_pays_the_difference_lower_claws_back(client, engine):
    me = await register(client)
    token = me["access_token"]
    assert (await sync(client, token, rec(1, 5000)))[0]["coins_awarded"] == 50
    assert (await sync(client, token, rec(1, 9000)))[0]["coins_awarded"] == 40
    lower = await sync(client, token, rec(1, 6000))
    assert lower[0]["coins_awarded"] == -30
    assert (await wallet(client, token))["available_coins"] == 60
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT amount, transaction_type, balance_after FROM coin_transactions "
                    "ORDER BY id"
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (50, "step_reward", 50),
        (40, "step_reward", 90),
        (-30, "reversal", 60),
    ]
    await ledger_ok(engine)


async def test_identical_resend_pays_nothing_and_writes_nothing(client, engine):
    me = await register(client)
    batch = [rec(i, 7000 + i) for i in range(7)]
    await sync(client, me["access_token"], *batch)
    async with engine.connect() as conn:
        before = (await conn.execute(text("SELECT count(*) FROM step_validations"))).scalar_one()
    again = await sync(client, me["access_token"], *batch)
    assert all(r["coins_awarded"] == 0 and r["status"] == "approved" for r in again)
    async with engine.connect() as conn:
        after = (await conn.execute(text("SELECT count(*) FROM step_validations"))).scalar_one()
        ledger = (await conn.execute(text("SELECT count(*) FROM coin_transactions"))).scalar_one()
    assert after == before and ledger == 7


async def test_two_sources_for_one_day_pay_once(client, engine):
    me = await register(client)
    token = me["access_token"]
    await sync(client, token, rec(1, 8000, "google_fit"))
    second = await sync(client, token, rec(1, 8500, "healthkit"))
    assert second[0]["coins_awarded"] == 5  # healthkit now credited: only the difference
    assert (await wallet(client, token))["available_coins"] == 85
    listed = (await client.get("/v1/steps", headers=bearer(token))).json()["items"]
    credited = {i["source"]: i["credited"] for i in listed}
    assert credited == {"healthkit": True, "google_fit": False}
    await ledger_ok(engine)


async def test_deletion_claws_back_and_falls_back_to_the_other_source(client, engine):
    me = await register(client)
    token = me["access_token"]
    await sync(client, token, rec(2, 9000, "healthkit"), rec(2, 7000, "google_fit"))
    assert (await wallet(client, token))["available_coins"] == 90
    deleted = await sync(client, token, rec(2, 0, "healthkit", deleted=True))
    assert deleted[0]["coins_awarded"] == -20 and deleted[0]["reasons"] == ["withdrawn"]
    assert (await wallet(client, token))["available_coins"] == 70
    gone = await sync(client, token, rec(2, 0, "google_fit", deleted=True))
    assert gone[0]["coins_awarded"] == -70
    assert (await wallet(client, token))["available_coins"] == 0
    await ledger_ok(engine)


async def test_client_record_versions_only_move_forward(client, engine):
    me = await register(client)
    token = me["access_token"]
    v2 = rec(1, 9000, "health_connect", client_record_id="hc-1", client_record_version=2)
    v1 = rec(1, 3000, "health_connect", client_record_id="hc-1", client_record_version=1)
    await sync(client, token, v2)
    stale = await sync(client, token, v1)
    assert stale[0]["reasons"] == ["stale_version"] and stale[0]["coins_awarded"] == 0
    v3 = {**v1, "client_record_version": 3}
    newer = await sync(client, token, v3)
    assert newer[0]["coins_awarded"] == -60
    await ledger_ok(engine)


async def test_duplicates_in_one_batch_keep_the_highest_version(client):
    me = await register(client)
    results = await sync(
        client,
        me["access_token"],
        rec(1, 9000, client_record_version=5),
        rec(1, 4000, client_record_version=4),
    )
    assert len(results) == 2
    assert results[0]["coins_awarded"] == 90
    assert "duplicate_in_batch" in results[1]["reasons"] and results[1]["coins_awarded"] == 0


async def test_rejections_are_per_record_and_future_days_are_not_stored(client, engine):
    me = await register(client)
    results = await sync(
        client,
        me["access_token"],
        rec(0, 8000),
        rec(-1, 8000),  # tomorrow
        rec(30, 8000),  # outside the 7-day window
        rec(1, 150_000),  # above the hard maximum
    )
    assert [r["status"] for r in results] == ["approved", "rejected", "rejected", "rejected"]
    assert results[1]["reasons"] == ["future_day"]
    assert results[2]["reasons"] == ["outside_sync_window"]
    assert "over_daily_max" in results[3]["reasons"]
    async with engine.connect() as conn:
        stored = (
            (await conn.execute(text("SELECT recorded_date::text FROM step_records ORDER BY 1")))
            .scalars()
            .all()
        )
        decisions = (await conn.execute(text("SELECT count(*) FROM step_validations"))).scalar_one()
    assert stored == sorted([day(0), day(1)])
    assert decisions == 4  # every decision is kept, stored or not


async def test_rejected_reason_is_visible_in_the_users_list(client):
    me = await register(client)
    await sync(client, me["access_token"], rec(1, 150_000))
    items = (await client.get("/v1/steps", headers=bearer(me["access_token"]))).json()["items"]
    assert items[0]["status"] == "rejected" and "over_daily_max" in items[0]["reasons"]


@pytest.mark.parametrize(
    "bad",
    [
        {"date": "2026-13-40", "steps": 100, "source": "healthkit"},
        {"date": day(0), "steps": -5, "source": "healthkit"},
        {"date": day(0), "steps": 100, "source": "fitbit"},
        {"date": day(0), "steps": "many", "source": "healthkit"},
        {"date": day(0), "steps": 100, "source": "healthkit", "coins": 5},
        {
            "date": day(0),
            "steps": 100,
            "source": "healthkit",
            "intervals": [
                {"start": "2026-01-01T10:00:00Z", "end": "2026-01-01T09:00:00Z", "steps": 5}
            ],
        },
    ],
)
async def test_one_malformed_record_rejects_the_batch_and_stores_nothing(client, engine, bad):
    me = await register(client)
    response = await client.post(
        "/v1/steps",
        json={"records": [rec(0, 8000), bad, rec(1, 9000)]},
        headers=bearer(me["access_token"]),
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    async with engine.connect() as conn:
        for table in ("step_records", "step_validations", "coin_transactions"):
            assert (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0


async def test_batch_limits(client):
    me = await register(client)
    empty = await client.post("/v1/steps", json={"records": []}, headers=bearer(me["access_token"]))
    assert empty.status_code == 422
    too_many = {"records": [rec(0, 1)] * 501}
    response = await client.post("/v1/steps", json=too_many, headers=bearer(me["access_token"]))
    assert response.status_code == 422


async def test_steps_need_a_token_and_show_only_your_own(client):
    anonymous = await client.post("/v1/steps", json={"records": [rec(0, 100)]})
    assert anonymous.status_code == 401
    alice, bob = await register(client), await register(client)
    await sync(client, alice["access_token"], rec(0, 8000))
    bobs = (await client.get("/v1/steps", headers=bearer(bob["access_token"]))).json()["items"]
    assert bobs == []


async def test_list_range_validation(client):
    me = await register(client)
    bad = await client.get(
        f"/v1/steps?from={day(0)}&to={day(3)}", headers=bearer(me["access_token"])
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_range"
    malformed = await client.get("/v1/steps?from=yesterday", headers=bearer(me["access_token"]))
    assert malformed.status_code == 422


async def test_intervals_are_stored_and_judged(client, engine):
    me = await register(client)
    d = day(1)
    fast = {"start": f"{d}T08:00:00Z", "end": f"{d}T08:10:00Z", "steps": 5000}
    results = await sync(client, me["access_token"], rec(1, 5000, intervals=[fast]))
    assert results[0]["status"] == "flagged"
    assert "cadence_too_high" in results[0]["reasons"]
    assert results[0]["coins_pending"] == 50 and results[0]["coins_awarded"] == 0
    assert (await wallet(client, me["access_token"]))["pending_coins"] == 50
    await ledger_ok(engine)

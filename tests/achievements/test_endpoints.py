"""The achievements API: the walker's list, and the admins' catalogue (audited, validated)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.achievements.helpers import achievement, evaluate, set_days
from tests.conftest import bearer, register
from tests.steps.helpers import make_admin, today

STREAK = {"kind": "streak", "streak_days": 7, "min_steps": 5000}
NEW = {
    "code": "streak_3",
    "name": "Three in a row",
    "description": "Three days of 4,000 steps.",
    "unlock_criteria": {"kind": "streak", "streak_days": 3, "min_steps": 4000},
    "reward_coins": 30,
}


async def test_my_achievements_anonymous_is_401(client):
    response = await client.get("/v1/achievements")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_my_achievements_lists_active_ones_with_unlocks_and_progress(app, client, engine):
    await achievement(engine, "first", {"kind": "first_redemption"}, 25)
    await achievement(engine, "week", STREAK, 100)
    await achievement(engine, "ten_k", {"kind": "single_day_steps", "min_steps": 10000}, 50)
    await achievement(engine, "hidden", {"kind": "approved_days", "days": 1}, active=False)
    me = await register(client)
    uid = me["user"]["id"]
    await set_days(engine, uid, {today() - timedelta(days=k): 12000 for k in range(1, 7)})
    assert await evaluate(app, uid) == ["ten_k"]
    response = await client.get("/v1/achievements", headers=bearer(me["access_token"]))
    assert response.status_code == 200
    items = {i["code"]: i for i in response.json()["items"]}
    assert set(items) == {"first", "week", "ten_k"}
    assert items["first"]["unlocked_at"] is None and items["first"]["progress"] is None
    assert items["week"]["progress"] == {"current": 6, "target": 7}
    assert items["week"]["unlock_criteria"] == STREAK
    assert items["ten_k"]["unlocked_at"] is not None
    assert items["ten_k"]["reward_coins"] == 50


async def test_a_deactivated_walker_gets_401(client, engine):
    me = await register(client)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET is_active = false WHERE id = :u"), {"u": me["user"]["id"]}
        )
    response = await client.get("/v1/achievements", headers=bearer(me["access_token"]))
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/admin/achievements"),
        ("get", "/v1/admin/achievements/1"),
        ("post", "/v1/admin/achievements"),
        ("patch", "/v1/admin/achievements/1"),
    ],
)
async def test_admin_routes_anonymous_401_and_walker_403(client, method, path):
    body = {"json": NEW} if method != "get" else {}
    assert (await getattr(client, method)(path, **body)).status_code == 401
    walker = await register(client)
    response = await getattr(client, method)(path, headers=bearer(walker["access_token"]), **body)
    assert response.status_code == 403


async def test_support_reads_but_cannot_write(client, engine):
    await achievement(engine, "week", STREAK)
    support = await make_admin(client, engine, role="support")
    listed = await client.get("/v1/admin/achievements", headers=bearer(support))
    assert listed.status_code == 200 and listed.json()["items"][0]["code"] == "week"
    assert (
        await client.get("/v1/admin/achievements/1", headers=bearer(support))
    ).status_code == 200
    created = await client.post("/v1/admin/achievements", json=NEW, headers=bearer(support))
    assert created.status_code == 403
    patched = await client.patch(
        "/v1/admin/achievements/1", json={"is_active": False}, headers=bearer(support)
    )
    assert patched.status_code == 403


async def test_create_is_audited_and_queues_the_backfill(
    client, engine, no_queued_achievement_jobs
):
    admin = await make_admin(client, engine)
    response = await client.post("/v1/admin/achievements", json=NEW, headers=bearer(admin))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["code"] == "streak_3" and body["is_active"] is True
    assert body["unlock_criteria"] == NEW["unlock_criteria"]
    assert body["unlocked_count"] == 0
    async with engine.connect() as conn:
        log = (
            await conn.execute(
                text(
                    "SELECT action, entity_id, changes FROM admin_logs "
                    "WHERE entity_type = 'achievement'"
                )
            )
        ).one()
        job = (
            await conn.execute(
                text(
                    "SELECT args FROM procrastinate_jobs WHERE task_name = "
                    "'achievements:backfill' AND (args->>'achievement_id')::bigint = :id"
                ),
                {"id": body["id"]},
            )
        ).scalar_one()
    assert log.action == "achievement.create" and log.entity_id == str(body["id"])
    assert log.changes["after"]["unlock_criteria"] == NEW["unlock_criteria"]
    assert job == {"achievement_id": body["id"], "after_user": None}
    again = await client.post("/v1/admin/achievements", json=NEW, headers=bearer(admin))
    assert again.status_code == 409 and again.json()["code"] == "achievement_code_taken"


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        ({"kind": "walk_far", "km": 5}, "does not match any of the expected tags"),
        ({"min_steps": 10000}, "Unable to extract tag using discriminator 'kind'"),
        ({"kind": "streak", "streak_days": 7}, "unlock_criteria.streak.min_steps: Field required"),
        ({"kind": "single_day_steps", "min_steps": 0}, "greater than or equal to 1"),
        ({"kind": "total_steps", "total_steps": "100000"}, "valid integer"),
        ({"kind": "approved_days", "days": 3, "extra": 1}, "Extra inputs are not permitted"),
        ({"kind": "first_redemption", "min_steps": 1}, "Extra inputs are not permitted"),
        ("streak", "unlock_criteria"),
    ],
)
async def test_invalid_criteria_are_422_with_a_clear_message(client, engine, criteria, message):
    admin = await make_admin(client, engine)
    response = await client.post(
        "/v1/admin/achievements", json={**NEW, "unlock_criteria": criteria}, headers=bearer(admin)
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert "unlock_criteria" in problem["detail"] and message in problem["detail"], problem
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM achievements"))).scalar_one() == 0


async def test_patch_changes_deactivates_and_audits(client, engine):
    admin = await make_admin(client, engine)
    created = (await client.post("/v1/admin/achievements", json=NEW, headers=bearer(admin))).json()
    path = f"/v1/admin/achievements/{created['id']}"
    renamed = await client.patch(
        path, json={"name": "Three strong days", "reward_coins": 40}, headers=bearer(admin)
    )
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Three strong days" and renamed.json()["reward_coins"] == 40
    off = await client.patch(path, json={"is_active": False}, headers=bearer(admin))
    assert off.status_code == 200 and off.json()["is_active"] is False
    walker = await register(client)
    mine = await client.get("/v1/achievements", headers=bearer(walker["access_token"]))
    assert mine.json()["items"] == []
    async with engine.connect() as conn:
        logs = (
            await conn.execute(
                text(
                    "SELECT action, changes FROM admin_logs WHERE entity_type = 'achievement' "
                    "ORDER BY id"
                )
            )
        ).all()
    assert [log.action for log in logs] == [
        "achievement.create",
        "achievement.update",
        "achievement.deactivate",
    ]
    assert logs[1].changes["before"] == {"name": "Three in a row", "reward_coins": 30}
    assert logs[1].changes["after"] == {"name": "Three strong days", "reward_coins": 40}
    assert logs[2].changes == {"before": {"is_active": True}, "after": {"is_active": False}}


async def test_patch_refuses_code_null_and_bad_criteria(client, engine):
    admin = await make_admin(client, engine)
    created = (await client.post("/v1/admin/achievements", json=NEW, headers=bearer(admin))).json()
    path = f"/v1/admin/achievements/{created['id']}"
    for body in (
        {"code": "renamed"},
        {"name": None},
        {"unlock_criteria": {"kind": "streak", "streak_days": 0, "min_steps": 1}},
    ):
        response = await client.patch(path, json=body, headers=bearer(admin))
        assert response.status_code == 422, body


async def test_unknown_achievement_is_404(client, engine):
    admin = await make_admin(client, engine)
    for response in (
        await client.get("/v1/admin/achievements/999", headers=bearer(admin)),
        await client.patch(
            "/v1/admin/achievements/999", json={"is_active": False}, headers=bearer(admin)
        ),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "achievement_not_found"
    huge = await client.get(f"/v1/admin/achievements/{2**70}", headers=bearer(admin))
    assert huge.status_code == 422

"""Console achievements pages: list, create and edit through the service; criteria checked."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import text

from tests.console.helpers import post_form

VALID = {
    "code": "streak_7",
    "name": "Seven in a row",
    "description": "A week of walks",
    "reward_coins": "50",
    "is_active": "1",
    "kind": "streak",
    "streak_days": "7",
    "min_steps": "8000",
    "total_steps": "",
    "days": "",
}


async def rows(engine: Any, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(text(sql), params)).mappings()]


async def create(console: Any, **changes: str) -> Any:
    return await post_form(
        console, "/admin/achievements/new", "/admin/achievements", {**VALID, **changes}
    )


async def test_admin_creates_an_achievement_and_it_is_audited(console, engine):
    response = await create(console)
    assert response.status_code == 303, response.text
    (row,) = await rows(engine, "SELECT * FROM achievements")
    assert response.headers["location"] == f"/admin/achievements/{row['id']}"
    assert row["code"] == "streak_7" and row["reward_coins"] == 50 and row["is_active"]
    assert row["unlock_criteria"] == {"kind": "streak", "streak_days": 7, "min_steps": 8000}
    (log,) = await rows(engine, "SELECT * FROM admin_logs WHERE entity_type = 'achievement'")
    assert log["action"] == "achievement.create" and log["entity_id"] == str(row["id"])
    assert str(log["admin_id"]) == console.account["user"]["id"]
    assert log["changes"]["after"]["unlock_criteria"]["streak_days"] == 7
    jobs = await rows(
        engine, "SELECT args FROM procrastinate_jobs WHERE task_name = 'achievements:backfill'"
    )
    assert [j["args"]["achievement_id"] for j in jobs] == [row["id"]]
    page = await console.get(response.headers["location"])
    assert "Achievement streak_7 created" in page.text
    assert '<option value="streak" selected>' in page.text and 'value="8000"' in page.text
    listing = await console.get("/admin/achievements")
    assert f'data-achievement-id="{row["id"]}"' in listing.text
    assert "streak_days 7, min_steps 8,000" in listing.text


async def test_first_redemption_needs_no_fields_and_other_inputs_are_ignored(console, engine):
    response = await create(console, code="first_order", kind="first_redemption", is_active="")
    assert response.status_code == 303, response.text
    (row,) = await rows(engine, "SELECT unlock_criteria, is_active FROM achievements")
    assert row == {"unlock_criteria": {"kind": "first_redemption"}, "is_active": False}
    assert not await rows(
        engine, "SELECT 1 FROM procrastinate_jobs WHERE queue_name <> 'mail'"
    )  # inactive: no backfill


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "teleport"}, "Input tag &#39;teleport&#39; found using &#39;kind&#39;"),
        ({"min_steps": "-5"}, "criteria.min_steps: Input should be greater than or equal to 1"),
        ({"streak_days": ""}, "criteria.streak_days: Field required"),
        ({"streak_days": "seven"}, "criteria.streak_days: Input should be a valid integer"),
        ({"streak_days": "99999999"}, "criteria.streak_days: Input should be less than or equal"),
        ({"kind": "single_day_steps", "min_steps": "0"}, "greater than or equal to 1"),
        ({"reward_coins": "-1"}, "reward_coins: Input should be greater than or equal to 0"),
        ({"reward_coins": "1.5"}, "reward_coins: Input should be a valid integer"),
        ({"code": "Bad Code!"}, "code: String should match pattern"),
        ({"name": ""}, "name: String should have at least 1 character"),
    ],
)
async def test_invalid_input_is_refused_with_the_parsers_message_and_kept(
    console, engine, changes, message
):
    response = await create(console, **changes)
    assert response.status_code == 422
    assert message in response.text
    assert 'value="Seven in a row"' in response.text or changes.get("name") == ""
    assert "A week of walks" in response.text  # the admin's input is still there
    assert not await rows(engine, "SELECT id FROM achievements")
    assert not await rows(engine, "SELECT id FROM admin_logs WHERE entity_type = 'achievement'")
    assert not await rows(engine, "SELECT id FROM procrastinate_jobs WHERE queue_name <> 'mail'")


async def test_a_taken_code_is_refused_and_the_form_kept(console, engine):
    assert (await create(console)).status_code == 303
    again = await create(console, name="Another name")
    assert again.status_code == 409 and "exists" in again.text
    assert 'value="Another name"' in again.text
    assert len(await rows(engine, "SELECT id FROM achievements")) == 1


async def test_admin_edits_an_achievement_and_it_is_audited(console, engine):
    location = (await create(console)).headers["location"]
    achievement_id = int(location.rsplit("/", 1)[1])
    edit = {
        **VALID,
        "code": "ignored",
        "name": "Ten in a row",
        "reward_coins": "75",
        "streak_days": "10",
    }
    response = await post_form(console, location, location, edit)
    assert response.status_code == 303 and response.headers["location"] == location
    (row,) = await rows(engine, "SELECT * FROM achievements")
    assert row["code"] == "streak_7" and row["name"] == "Ten in a row"
    assert row["reward_coins"] == 75
    assert row["unlock_criteria"] == {"kind": "streak", "streak_days": 10, "min_steps": 8000}
    logs = await rows(
        engine,
        "SELECT action, changes FROM admin_logs WHERE entity_type = 'achievement' "
        "AND entity_id = :id ORDER BY id",
        id=str(achievement_id),
    )
    assert [log["action"] for log in logs] == ["achievement.create", "achievement.update"]
    assert logs[1]["changes"]["before"] == {
        "name": "Seven in a row",
        "reward_coins": 50,
        "unlock_criteria": {"kind": "streak", "streak_days": 7, "min_steps": 8000},
    }
    page = await console.get(location)
    assert "Achievement streak_7 saved." in page.text and 'value="Ten in a row"' in page.text

    # Unticking "active" deactivates; invalid criteria on edit change nothing.
    off = await post_form(console, location, location, {**edit, "is_active": ""})
    assert off.status_code == 303
    bad = await post_form(console, location, location, {**edit, "kind": "total_steps"})
    assert bad.status_code == 422 and "criteria.total_steps: Field required" in bad.text
    assert '<option value="total_steps" selected>' in bad.text
    (row,) = await rows(engine, "SELECT is_active, unlock_criteria FROM achievements")
    assert row["is_active"] is False and row["unlock_criteria"]["streak_days"] == 10
    actions = [
        r["action"]
        for r in await rows(
            engine, "SELECT action FROM admin_logs WHERE entity_type = 'achievement'"
        )
    ]
    assert actions.count("achievement.deactivate") == 1 and len(actions) == 3


async def test_saving_without_changes_writes_no_audit_row(console, engine):
    location = (await create(console)).headers["location"]
    response = await post_form(console, location, location, VALID)
    assert response.status_code == 303
    logs = await rows(engine, "SELECT action FROM admin_logs WHERE entity_type = 'achievement'")
    assert [log["action"] for log in logs] == ["achievement.create"]


async def test_support_reads_but_cannot_create_or_edit(console, support_console, engine):
    location = (await create(console)).headers["location"]
    listing = await support_console.get("/admin/achievements")
    assert listing.status_code == 200 and "streak_7" in listing.text
    assert 'id="new-achievement"' not in listing.text
    page = await support_console.get(location)
    assert page.status_code == 200 and "<fieldset disabled>" in page.text
    assert 'id="achievement-save"' not in page.text
    assert (await support_console.get("/admin/achievements/new")).status_code == 403
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    created = await support_console.post(
        "/admin/achievements", data={**VALID, "code": "other", "csrf_token": token.group(1)}
    )
    edited = await support_console.post(
        location, data={**VALID, "name": "Hacked", "csrf_token": token.group(1)}
    )
    assert created.status_code == edited.status_code == 403
    (row,) = await rows(engine, "SELECT code, name FROM achievements")
    assert row == {"code": "streak_7", "name": "Seven in a row"}


async def test_unknown_achievements_are_404(console):
    assert (await console.get("/admin/achievements/999")).status_code == 404
    assert (await console.get("/admin/achievements/abc")).status_code == 404
    page = await console.get("/admin/achievements/new")
    assert page.status_code == 200
    for kind in ("single_day_steps", "total_steps", "streak", "first_redemption", "approved_days"):
        assert f'<option value="{kind}"' in page.text and f"<code>{kind}</code>" in page.text

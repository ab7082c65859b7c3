"""The console's settings: every key with its meaning, typed forms, strict changes, history."""

from __future__ import annotations

import re
import uuid
from typing import Any

from markupsafe import escape
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.console.pages.settings import HISTORY_PAGE
from stepcoin.runtime_settings.admin import update_setting
from stepcoin.runtime_settings.registry import SPECS
from tests.console.helpers import post_form


async def stored(engine, key: str) -> tuple[Any, Any]:
    """(value, updated_by) of one key in the settings table."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT value, updated_by FROM settings WHERE key = :k"), {"k": key}
            )
        ).one()
    return row.value, row.updated_by


async def setting_logs(engine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT admin_id, entity_id, changes FROM admin_logs "
                "WHERE entity_type = 'setting' ORDER BY id"
            )
        )
        return [dict(r) for r in rows.mappings()]


async def change(console, key: str, value: str, return_to: str = "list"):
    return await post_form(
        console,
        "/admin/settings",
        f"/admin/settings/{key}",
        {"value": value, "return_to": return_to},
    )


def flash(html: str) -> str:
    match = re.search(r'<div class="flash flash-(\w+)"[^>]*>([^<]*)</div>', html)
    assert match, "no flash message on the page"
    return f"{match.group(1)}: {match.group(2)}"


async def test_every_key_is_listed_with_its_description_and_a_typed_form(console):
    page = await console.get("/admin/settings")
    assert page.status_code == 200
    html = page.text
    for key, spec in SPECS.items():
        assert f'data-setting-row="{key}"' in html
        assert str(escape(spec.description)) in html
        assert f'<form method="post" action="/admin/settings/{key}" data-setting="{key}"' in html
    for group in ("anticheat", "auth", "shop", "steps", "leaderboards", "console"):
        assert f'data-group="{group}"' in html
    assert html.index('data-group="anticheat"') < html.index('data-group="backup"')
    form = html[html.index('data-setting="shop.max_quantity_per_item"') :]
    form = form[: form.index("</form>")]
    assert 'type="number"' in form and 'min="1"' in form and 'max="1000"' in form
    assert 'value="10"' in form  # the current value
    enum = html[html.index('data-setting="anticheat.manual_entry_action"') :]
    enum = enum[: enum.index("</form>")]
    assert "<select" in enum and '<option value="flag" selected>' in enum
    assert '<option value="reject">' in enum and '<option value="allow">' in enum
    floats = html[html.index('data-setting="anticheat.baseline_multiplier"') :]
    assert 'step="any"' in floats[: floats.index("</form>")]


async def test_admin_changes_an_integer_setting_stored_audited_and_in_its_history(console, engine):
    response = await change(console, "anticheat.baseline_floor_steps", "250")
    assert response.status_code == 303 and response.headers["location"] == "/admin/settings"
    value, updated_by = await stored(engine, "anticheat.baseline_floor_steps")
    assert value == 250 and str(updated_by) == console.account["user"]["id"]
    logs = await setting_logs(engine)
    assert len(logs) == 1 and logs[0]["entity_id"] == "anticheat.baseline_floor_steps"
    assert logs[0]["changes"]["before"] == {"value": 15000}
    assert logs[0]["changes"]["after"] == {"value": 250}
    assert str(logs[0]["admin_id"]) == console.account["user"]["id"]

    listing = await console.get("/admin/settings")
    assert flash(listing.text) == "ok: anticheat.baseline_floor_steps is now 250."
    row = listing.text[listing.text.index('data-setting-row="anticheat.baseline_floor_steps"') :]
    assert console.account["email"] in row[: row.index("</tr>")]

    # a second change from the key's own page comes back to it
    again = await post_form(
        console,
        "/admin/settings/anticheat.baseline_floor_steps",
        "/admin/settings/anticheat.baseline_floor_steps",
        {"value": "300", "return_to": "detail"},
    )
    assert again.headers["location"] == "/admin/settings/anticheat.baseline_floor_steps"
    detail = (await console.get("/admin/settings/anticheat.baseline_floor_steps")).text
    assert 'id="setting-value" data-value>300<' in detail
    history = detail[detail.index('id="setting-history"') :]
    history = history[: history.index("</table>")]
    changes = re.findall(
        r'<span class="removed">([^<]*)</span>\s*→\s*<span class="added">([^<]*)</span>', history
    )
    assert changes == [("250", "300"), ("15000", "250")]  # newest first
    assert history.count(console.account["email"]) == 2


async def test_out_of_range_and_wrong_type_values_are_refused_and_change_nothing(console, engine):
    for key, value, message in (
        ("shop.max_quantity_per_item", "1001", "less than or equal to 1000"),
        ("shop.max_quantity_per_item", "0", "greater than or equal to 1"),
        ("shop.max_quantity_per_item", "abc", "must be a whole number"),
        ("shop.max_quantity_per_item", "12.5", "must be a whole number"),
        ("shop.max_quantity_per_item", "", "must be a whole number"),
        ("anticheat.baseline_multiplier", "1", "greater than 1"),
        ("anticheat.baseline_multiplier", "nan", "must be a number"),
        ("anticheat.baseline_multiplier", "inf", "must be a number"),
        ("anticheat.manual_entry_action", "maybe", "flag"),
    ):
        response = await change(console, key, value)
        assert response.status_code == 303, (key, value)
        text_ = flash((await console.get("/admin/settings")).text)
        assert text_.startswith("error: ") and message in text_, (key, value, text_)
    assert (await stored(engine, "shop.max_quantity_per_item"))[0] == 10
    assert (await stored(engine, "anticheat.baseline_multiplier"))[0] == 6.0  # unchanged
    assert (await stored(engine, "anticheat.manual_entry_action"))[0] == "flag"
    assert await setting_logs(engine) == []


async def test_enum_and_float_settings_change_through_their_forms(console, engine):
    await change(console, "anticheat.manual_entry_action", "reject")
    await change(console, "anticheat.baseline_multiplier", "2.5")
    assert (await stored(engine, "anticheat.manual_entry_action"))[0] == "reject"
    assert (await stored(engine, "anticheat.baseline_multiplier"))[0] == 2.5
    html = (await console.get("/admin/settings")).text
    enum = html[html.index('data-setting="anticheat.manual_entry_action"') :]
    assert '<option value="reject" selected>' in enum[: enum.index("</form>")]
    logs = await setting_logs(engine)
    assert [(log["entity_id"], log["changes"]["after"]) for log in logs] == [
        ("anticheat.manual_entry_action", {"value": "reject"}),
        ("anticheat.baseline_multiplier", {"value": 2.5}),
    ]


async def test_support_reads_settings_but_cannot_change_them(support_console, engine):
    page = await support_console.get("/admin/settings")
    assert page.status_code == 200
    assert 'data-setting-row="anticheat.baseline_floor_steps"' in page.text
    assert "data-setting=" not in page.text  # no forms for support
    detail = await support_console.get("/admin/settings/anticheat.baseline_floor_steps")
    assert detail.status_code == 200 and 'id="setting-history"' in detail.text
    refused = await change(support_console, "anticheat.baseline_floor_steps", "250")
    assert refused.status_code == 403 and "admin role" in refused.text
    assert await stored(engine, "anticheat.baseline_floor_steps") == (15000, None)
    assert await setting_logs(engine) == []


async def test_a_form_without_its_csrf_token_is_refused(console, engine):
    response = await console.post(
        "/admin/settings/anticheat.baseline_floor_steps", data={"value": "250"}
    )
    assert response.status_code == 403
    assert (await stored(engine, "anticheat.baseline_floor_steps"))[0] == 15000


async def test_unknown_keys(console, engine):
    assert (await console.get("/admin/settings/coins.nope")).status_code == 404
    response = await change(console, "coins.nope", "1")
    assert response.status_code == 303 and response.headers["location"] == "/admin/settings"
    assert "no setting" in flash((await console.get("/admin/settings")).text)
    async with engine.connect() as conn:
        count = await conn.execute(text("SELECT count(*) FROM settings WHERE key = 'coins.nope'"))
        assert count.scalar_one() == 0


async def test_history_pages_through_many_changes(console, engine):
    async with AsyncSession(engine) as session:
        for n in range(HISTORY_PAGE + 2):  # the service audits each change
            await update_setting(
                session,
                "anticheat.baseline_floor_steps",
                201 + n,
                admin_id=uuid.UUID(console.account["user"]["id"]),
            )
        await session.commit()
    first = (await console.get("/admin/settings/anticheat.baseline_floor_steps")).text
    assert first.count('data-audit-action="setting.update"') == HISTORY_PAGE
    cursor = re.search(r'href="([^"]*cursor=[^"]+)"[^>]*rel="next"', first)
    assert cursor
    second = (await console.get(cursor.group(1).replace("&amp;", "&"))).text
    assert second.count('data-audit-action="setting.update"') == 2
    assert '<span class="removed">15000</span>' in second  # the oldest change comes last
    assert '<span class="added">227</span>' in first  # the newest first

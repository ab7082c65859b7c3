"""The console's audit log: every admin action, filters, the before/after diff, pagination."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.console.pages.audit import PAGE_SIZE, diff
from stepcoin.wallet.service import adjust_balance
from tests.admin.helpers import adjust
from tests.conftest import bearer, register
from tests.console.helpers import post_form
from tests.fixtures.database import REWRITE_HISTORY

ROW_RE = re.compile(
    r'<tr data-audit-action="([^"]*)" data-entity-type="([^"]*)" data-entity-id="([^"]*)" '
    r'data-audit-id="(\d+)">(.*?)</tr>',
    re.S,
)


def rows_of(html: str) -> list[dict[str, Any]]:
    return [
        {"action": a, "type": t, "entity": e, "id": int(i), "html": body}
        for a, t, e, i, body in ROW_RE.findall(html)
    ]


async def log_ids(engine, where: str = "TRUE", **params: Any) -> list[int]:
    """What the page should list for a filter: ids, newest first."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(f"SELECT id FROM admin_logs WHERE {where} ORDER BY created_at DESC, id DESC"),
            params,
        )
        return [r.id for r in rows]


async def world(console, support_console, client) -> dict[str, Any]:
    """An adjustment and a deactivation through the API, a setting change in the console,
    and the two sign-ins (admin and support) the fixtures already recorded."""
    admin = {"headers": bearer(console.account["access_token"])}
    walker = await register(client)
    other = await register(client)
    response = await adjust(client, admin, walker["user"]["id"], 30, reason="lost steps")
    assert response.status_code == 201
    response = await client.patch(
        f"/v1/admin/users/{other['user']['id']}",
        json={"is_active": False},
        headers=admin["headers"],
    )
    assert response.status_code == 200, response.text
    response = await post_form(
        console,
        "/admin/settings",
        "/admin/settings/anticheat.baseline_floor_steps",
        {"value": "250"},
    )
    assert response.status_code == 303
    return {"walker": walker, "other": other}


async def test_the_log_lists_every_action_newest_first_with_links_and_diffs(
    console, support_console, client, engine
):
    made = await world(console, support_console, client)
    page = await console.get("/admin/audit")
    assert page.status_code == 200
    rows = rows_of(page.text)
    assert [r["id"] for r in rows] == await log_ids(engine)
    assert [r["action"] for r in rows] == [
        "setting.update",
        "user.deactivate",
        "wallet.adjust",
        "console.sign_in",
        "console.sign_in",
    ]
    setting, deactivate, adjusted = rows[0], rows[1], rows[2]
    assert setting["type"] == "setting" and setting["entity"] == "anticheat.baseline_floor_steps"
    assert 'href="/admin/settings/anticheat.baseline_floor_steps"' in setting["html"]
    assert console.account["email"] in setting["html"]
    assert re.search(
        r'<span class="removed">15000</span>\s*→\s*<span class="added">250</span>', setting["html"]
    )
    walker_id = made["walker"]["user"]["id"]
    assert adjusted["entity"] == walker_id
    assert f'href="/admin/users/{walker_id}"' in adjusted["html"]
    assert re.search(
        r'data-field="available_coins"><code>available_coins</code>:\s*'
        r'<span class="removed">0</span>\s*→\s*<span class="added">30</span>',
        adjusted["html"],
    )
    assert 'data-extra="reason">lost steps<' in adjusted["html"]
    assert 'data-extra="amount">30<' in adjusted["html"]
    assert re.search(
        r'<span class="removed">true</span>\s*→\s*<span class="added">false</span>',
        deactivate["html"],
    )
    assert f'href="/admin/users/{made["other"]["user"]["id"]}"' in deactivate["html"]


async def test_support_can_read_the_log(console, support_console, client, engine):
    await world(console, support_console, client)
    page = await support_console.get("/admin/audit")
    assert page.status_code == 200
    assert [r["id"] for r in rows_of(page.text)] == await log_ids(engine)


async def test_each_filter_narrows_the_log(console, support_console, client, engine):
    made = await world(console, support_console, client)
    support_id = support_console.account["user"]["id"]
    walker_id = made["walker"]["user"]["id"]
    page = (await console.get("/admin/audit")).text
    assert f'<option value="{support_id}">' in page  # the admin select
    assert '<option value="setting">setting</option>' in page  # the entity type select
    cases = [
        ({"admin": support_id}, "admin_id = :v", support_id),
        ({"entity_type": "setting"}, "entity_type = :v", "setting"),
        ({"entity_id": walker_id}, "entity_id = :v", walker_id),
        ({"action": "console.sign_in"}, "action = :v", "console.sign_in"),
    ]
    everything = await log_ids(engine)
    for params, where, value in cases:
        response = await console.get("/admin/audit", params=params)
        assert response.status_code == 200
        shown = [r["id"] for r in rows_of(response.text)]
        expected = await log_ids(engine, where, v=value)
        assert shown == expected and 0 < len(shown) < len(everything), params
    # "user" also covers the user's wallet: user + id is everything done to one account
    account = await console.get(
        "/admin/audit", params={"entity_type": "user", "entity_id": walker_id}
    )
    assert [r["action"] for r in rows_of(account.text)] == ["wallet.adjust"]
    users = await console.get("/admin/audit", params={"entity_type": "user"})
    expected = await log_ids(engine, "entity_type IN ('user', 'wallet')")
    assert [r["id"] for r in rows_of(users.text)] == expected and len(expected) == 4
    wallets = await console.get("/admin/audit", params={"entity_type": "wallet"})
    assert [r["action"] for r in rows_of(wallets.text)] == ["wallet.adjust"]
    both = await console.get(
        "/admin/audit", params={"action": "console.sign_in", "admin": support_id}
    )
    assert len(rows_of(both.text)) == 1
    none = await console.get("/admin/audit", params={"action": "nothing.like.this"})
    assert rows_of(none.text) == [] and "No admin action matches." in none.text


async def test_date_filters_are_whole_days_in_the_admins_timezone(
    console, support_console, client, engine
):
    await world(console, support_console, client)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET timezone = 'America/New_York' WHERE id = :id"),
            {"id": console.account["user"]["id"]},
        )
        await conn.execute(text(REWRITE_HISTORY))  # the audit log is append-only
        old = (
            await conn.execute(
                text(
                    "UPDATE admin_logs SET created_at = '2024-03-10 03:30:00+00' "
                    "WHERE action = 'wallet.adjust' RETURNING id"
                )
            )
        ).scalar_one()
    # 03:30 UTC on 10 March is 22:30 on 9 March in New York
    on_the_9th = await console.get(
        "/admin/audit", params={"from": "2024-03-09", "to": "2024-03-09"}
    )
    assert [r["id"] for r in rows_of(on_the_9th.text)] == [old]
    assert "2024-03-09 22:30:00" in on_the_9th.text
    on_the_10th = await console.get(
        "/admin/audit", params={"from": "2024-03-10", "to": "2024-03-10"}
    )
    assert rows_of(on_the_10th.text) == []
    until_the_9th = await console.get("/admin/audit", params={"to": "2024-03-09"})
    assert [r["id"] for r in rows_of(until_the_9th.text)] == [old]
    since_the_10th = await console.get("/admin/audit", params={"from": "2024-03-10"})
    assert old not in [r["id"] for r in rows_of(since_the_10th.text)]
    assert len(rows_of(since_the_10th.text)) == len(await log_ids(engine)) - 1


async def test_malformed_filters_show_an_error_and_no_rows(console):
    for params, message in (
        ({"from": "10/03/2024"}, "From must be a date"),
        ({"admin": "not-a-uuid"}, "Unknown admin"),
        ({"cursor": "garbage"}, "cursor is malformed"),
    ):
        response = await console.get("/admin/audit", params=params)
        assert response.status_code == 422 and message in response.text, params
        assert rows_of(response.text) == []


async def test_pagination_walks_every_row_once(console, client, engine):
    walker = await register(client)
    admin_id = uuid.UUID(console.account["user"]["id"])
    async with AsyncSession(engine) as session:
        for n in range(PAGE_SIZE + 5):  # one transaction: equal created_at, ids break the tie
            await adjust_balance(
                session,
                user_id=uuid.UUID(walker["user"]["id"]),
                amount=n + 1,
                reason=f"batch {n}",
                admin_id=admin_id,
            )
        await session.commit()
    seen: list[int] = []
    url: str | None = "/admin/audit"
    pages = 0
    while url:
        html = (await console.get(url)).text
        rows = rows_of(html)
        assert len(rows) <= PAGE_SIZE
        seen += [r["id"] for r in rows]
        match = re.search(r'href="([^"]*)" class="next" rel="next"', html)
        url = match.group(1).replace("&amp;", "&") if match else None
        pages += 1
    assert pages == 2
    assert seen == await log_ids(engine)
    assert len(seen) == PAGE_SIZE + 5 + 1  # the adjustments and the admin's sign-in
    filtered = await console.get("/admin/audit", params={"action": "wallet.adjust"})
    nxt = re.search(r'href="([^"]*)" class="next" rel="next"', filtered.text)
    assert nxt and "action=wallet.adjust" in nxt.group(1)  # the filter stays on the next page


def test_diff_keeps_changed_fields_and_extras_only():
    fields, extra = diff(
        {
            "before": {"status": "pending", "title": "Cap", "tags": ["a"]},
            "after": {"status": "shipped", "title": "Cap", "tags": ["a", "b"], "new": None},
            "note": "sent",
        }
    )
    assert [(f.key, f.old, f.new) for f in fields] == [
        ("status", "pending", "shipped"),
        ("tags", '["a"]', '["a","b"]'),
        ("new", None, "null"),
    ]
    assert extra == [("note", "sent")]
    created, _ = diff({"before": None, "after": {"id": 3, "spec": {"k": 1}}})
    assert [(f.key, f.old, f.new) for f in created] == [
        ("id", None, "3"),
        ("spec", None, '{"k":1}'),
    ]

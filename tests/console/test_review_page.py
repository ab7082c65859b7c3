"""The console's review queue: the page, single and bulk decisions, notes, support's access."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.conftest import register
from tests.console.helpers import csrf_of, post_form
from tests.steps.helpers import day, ledger_ok, rec, sync, wallet


async def flagged_walker(client, **extra):
    """A walker whose manual entry of yesterday (9000 steps, 90 coins held) waits for review."""
    me = await register(client, **extra)
    results = await sync(client, me["access_token"], rec(1, 9000, manual=True))
    assert results[0]["status"] == "flagged" and results[0]["coins_pending"] == 90
    return me


async def validation_ids(engine) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT id FROM step_validations ORDER BY id"))
        return [r.id for r in rows]


async def validation(engine, validation_id: int):
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT status, reviewed_by, note FROM step_validations WHERE id = :id"),
                {"id": validation_id},
            )
        ).one()


async def review_logs(engine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT action, entity_id FROM admin_logs "
                "WHERE entity_type = 'step_validation' ORDER BY id"
            )
        )
        return [(r.action, r.entity_id) for r in rows]


async def decide(console, data):
    response = await post_form(console, "/admin/review", "/admin/review/decide", data)
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/admin/review")
    return await console.get(response.headers["location"])


async def test_queue_shows_records_with_hits_chart_sources_and_forms(console, client):
    walker = await register(client, full_name="Queue Walker")
    token = walker["access_token"]
    await sync(client, token, rec(3, 4000), rec(2, 5000))
    await sync(client, token, rec(1, 9000, manual=True), rec(1, 8800, "google_fit"))
    page = await console.get("/admin/review")
    assert page.status_code == 200
    html = page.text
    [vid] = re.findall(r'data-review-row data-validation-id="(\d+)"', html)
    assert f'href="/admin/users/{walker["user"]["id"]}"' in html
    assert "Queue Walker" in html and day(1) in html
    assert 'data-rule="manual_entry"' in html and "threshold" in html
    assert "<svg" in html and 'class="bar hl"' in html  # the flagged day stands out
    assert f"{day(1)}: 9,000" in html  # the chart's bar for the record's day
    assert f"{day(2)}: 5,000" in html  # ...and the credited history
    assert "google_fit" in html  # the day's other source
    assert 'id="bulk-form"' in html and 'data-select-all="ids"' in html
    assert f'name="ids" value="{vid}" form="bulk-form"' in html
    assert "data-decide" in html and 'value="approve"' in html and 'value="reject"' in html
    assert "<kbd>j</kbd>" in html and "<kbd>r</kbd>" in html
    size = re.search(r'id="queue-size">\s*<div class="value">(\d+)<', html)
    assert size and size.group(1) == "1"
    assert "style=" not in html and "onclick" not in html


async def test_queue_is_oldest_first(console, client):
    first = await flagged_walker(client)
    second = await flagged_walker(client)
    html = (await console.get("/admin/review")).text
    assert html.index(first["user"]["id"]) < html.index(second["user"]["id"])


async def test_approve_from_the_queue_credits_the_wallet_and_is_audited(console, client, engine):
    walker = await flagged_walker(client)
    [vid] = await validation_ids(engine)
    page = await decide(console, {"ids": str(vid), "decision": "approve", "note": ""})
    assert "Approved 1 record." in page.text
    assert f'data-validation-id="{vid}"' not in page.text
    assert (await wallet(client, walker["access_token"]))["available_coins"] == 90
    row = await validation(engine, vid)
    assert row.status == "approved" and str(row.reviewed_by) == console.account["user"]["id"]
    assert await review_logs(engine) == [("validation.approve", str(vid))]
    await ledger_ok(engine)


async def test_reject_without_a_note_releases_the_hold_as_the_api_does(console, client, engine):
    # API.md: approve and reject take `note?`; the console follows the same domain rule
    # (review.decide_many), so a rejection without a note goes through server-side (the
    # form's script still asks for one before sending).
    walker = await flagged_walker(client)
    [vid] = await validation_ids(engine)
    page = await decide(console, {"ids": str(vid), "decision": "reject", "note": "  "})
    assert "Rejected 1 record." in page.text
    row = await validation(engine, vid)
    assert row.status == "rejected" and row.note is None
    assert await wallet(client, walker["access_token"]) == {
        "available_coins": 0,
        "pending_coins": 0,
        "lifetime_earned": 0,
        "lifetime_spent": 0,
    }
    assert await review_logs(engine) == [("validation.reject", str(vid))]
    await ledger_ok(engine)


async def test_reject_with_a_note_keeps_it_for_the_walker(console, client, engine):
    walker = await flagged_walker(client)
    [vid] = await validation_ids(engine)
    page = await decide(console, {"ids": str(vid), "decision": "reject", "note": "typed by hand"})
    assert "Rejected 1 record." in page.text
    row = await validation(engine, vid)
    assert row.status == "rejected" and row.note == "typed by hand"
    assert (await wallet(client, walker["access_token"]))["pending_coins"] == 0
    assert await review_logs(engine) == [("validation.reject", str(vid))]
    await ledger_ok(engine)


async def test_a_note_longer_than_the_api_allows_changes_nothing(console, client, engine):
    walker = await flagged_walker(client)
    [vid] = await validation_ids(engine)
    page = await decide(console, {"ids": str(vid), "decision": "reject", "note": "x" * 1001})
    assert "longer than 1000 characters" in page.text
    assert (await validation(engine, vid)).status == "flagged"
    assert (await wallet(client, walker["access_token"]))["pending_coins"] == 90
    assert await review_logs(engine) == []


async def test_bulk_approve_pays_every_selected_record(console, client, engine):
    walkers = [await flagged_walker(client) for _ in range(3)]
    ids = await validation_ids(engine)
    page = await console.get("/admin/review")
    response = await console.post(
        "/admin/review/decide",
        data={
            "ids": [str(i) for i in ids[:2]],
            "decision": "approve",
            "note": "",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert response.status_code == 303
    after = await console.get(response.headers["location"])
    assert "Approved 2 records." in after.text
    coins = [(await wallet(client, w["access_token"]))["available_coins"] for w in walkers]
    assert coins == [90, 90, 0]
    assert (await validation(engine, ids[2])).status == "flagged"
    assert sorted(await review_logs(engine)) == sorted(
        ("validation.approve", str(i)) for i in ids[:2]
    )
    await ledger_ok(engine)


async def test_bulk_is_all_or_nothing(console, client, engine):
    walkers = [await flagged_walker(client) for _ in range(2)]
    ids = await validation_ids(engine)
    await decide(console, {"ids": str(ids[1]), "decision": "approve"})
    page = await console.get("/admin/review")
    response = await console.post(
        "/admin/review/decide",
        data={
            "ids": [str(i) for i in ids],
            "decision": "approve",
            "csrf_token": csrf_of(page.text),
        },
    )
    after = await console.get(response.headers["location"])
    assert "already reviewed" in after.text and "Nothing was changed" in after.text
    assert (await validation(engine, ids[0])).status == "flagged"
    assert (await wallet(client, walkers[0]["access_token"]))["available_coins"] == 0
    assert await review_logs(engine) == [("validation.approve", str(ids[1]))]


async def test_invalid_decisions_change_nothing(console, client, engine):
    await flagged_walker(client)
    [vid] = await validation_ids(engine)
    for data, message in [
        ({"ids": str(vid), "decision": "maybe"}, "Choose approve or reject"),
        ({"decision": "approve"}, "Select at least one record"),
        ({"ids": "abc", "decision": "approve"}, "is not a record id"),
        ({"ids": "999999", "decision": "approve"}, "No such validation"),
    ]:
        page = await decide(console, data)
        assert message in page.text
    assert (await validation(engine, vid)).status == "flagged"
    assert await review_logs(engine) == []


async def test_the_cursor_is_kept_after_a_decision(console, client, engine):
    await flagged_walker(client)
    [vid] = await validation_ids(engine)
    page = await console.get("/admin/review")
    response = await console.post(
        "/admin/review/decide",
        data={
            "ids": str(vid),
            "decision": "approve",
            "cursor": "abc=",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert response.headers["location"] == "/admin/review?cursor=abc%3D"


async def test_support_may_review(support_console, client, engine):
    walker = await flagged_walker(client)
    [vid] = await validation_ids(engine)
    page = await support_console.get("/admin/review")
    assert page.status_code == 200 and f'data-validation-id="{vid}"' in page.text
    after = await decide(support_console, {"ids": str(vid), "decision": "approve"})
    assert "Approved 1 record." in after.text
    assert (await wallet(client, walker["access_token"]))["available_coins"] == 90
    row = await validation(engine, vid)
    assert str(row.reviewed_by) == support_console.account["user"]["id"]


async def test_a_decision_without_csrf_token_is_refused(console, client, engine):
    await flagged_walker(client)
    [vid] = await validation_ids(engine)
    response = await console.post("/admin/review/decide", data={"ids": vid, "decision": "approve"})
    assert response.status_code == 403
    assert (await validation(engine, vid)).status == "flagged"


async def test_the_empty_queue_and_a_bad_cursor(console):
    page = await console.get("/admin/review")
    assert page.status_code == 200 and 'id="queue-empty"' in page.text
    assert (await console.get("/admin/review", params={"cursor": "nonsense"})).status_code == 422

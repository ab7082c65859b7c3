"""The console's referral review page: the queue with reasons, the status filter, approving
and rejecting through the page (audited), support's access, and never one's own referral."""

from __future__ import annotations

import json

from sqlalchemy import text

from tests.console.helpers import post_form
from tests.referrals.helpers import (
    approved_days,
    backdate,
    invite,
    rewards,
    row,
    set_setting,
    settle,
    walker,
)
from tests.referrals.test_settle import days_back


async def in_review(client, engine, referrer=None):
    """Two claims of one code with the burst limit at 1: the second is in review."""
    await set_setting(engine, "referrals.burst_claims_per_day", 1)
    referrer = referrer or await walker(client, "Rex Referrer")
    _, first = await invite(client, referrer, "Fay First")
    invitee, second = await invite(client, referrer, "Sam Second")
    assert (first["status"], second["status"]) == ("pending", "review")
    return referrer, invitee, first, second


async def test_the_page_lists_the_queue_with_reasons_and_filters(console, client, engine):
    _, _, first, second = await in_review(client, engine)
    page = await console.get("/admin/referrals")
    assert page.status_code == 200, page.text
    assert f'data-referral-id="{second["id"]}"' in page.text
    assert f'data-referral-id="{first["id"]}"' not in page.text
    assert "referral_burst" in page.text and f'data-decide="{second["id"]}"' in page.text
    assert 'href="/admin/referrals"' in page.text  # the nav link
    pending = await console.get("/admin/referrals?status=pending")
    assert f'data-referral-id="{first["id"]}"' in pending.text
    assert f'data-decide="{first["id"]}"' not in pending.text
    everything = await console.get("/admin/referrals?status=all")
    assert f'data-referral-id="{first["id"]}"' in everything.text
    assert f'data-referral-id="{second["id"]}"' in everything.text


async def test_approving_through_the_page_pays_when_the_hold_is_over(app, console, client, engine):
    referrer, invitee, _, second = await in_review(client, engine)
    await backdate(engine, second["id"], 10)
    await approved_days(engine, invitee["id"], days_back(9, 8, 7, 6, 5))
    async with engine.begin() as conn:  # qualified and past its hold while in review
        await conn.execute(
            text(
                "UPDATE referrals SET qualified_at = now() - interval '9 days', "
                "hold_until = now() - interval '2 days' WHERE id = :id"
            ),
            {"id": second["id"]},
        )
    response = await post_form(
        console,
        "/admin/referrals",
        f"/admin/referrals/{second['id']}/decide",
        {"decision": "approve", "status": "review"},
    )
    assert response.status_code == 303, response.text
    shown = await console.get(response.headers["location"])
    assert f"Approved referral {second['id']}: it is paid now." in shown.text
    assert (await row(engine, second["id"])).status == "paid"
    assert [a for a, _ in await rewards(engine, referrer["id"])] == [500]
    assert [a for a, _ in await rewards(engine, invitee["id"])] == [250]
    assert (await settle(app))["paid"] == 0
    async with engine.connect() as conn:
        logged = (
            await conn.execute(
                text("SELECT action, admin_id::text FROM admin_logs WHERE entity_type = 'referral'")
            )
        ).all()
    assert [tuple(r) for r in logged] == [("referral.approved", console.account["user"]["id"])]


async def test_support_rejects_with_a_note_the_referrer_reads(support_console, client, engine):
    referrer, _, _, second = await in_review(client, engine)
    response = await post_form(
        support_console,
        "/admin/referrals",
        f"/admin/referrals/{second['id']}/decide",
        {"decision": "reject", "note": "Two accounts of one person.", "status": "review"},
    )
    assert response.status_code == 303
    rejected = await row(engine, second["id"])
    assert rejected.status == "rejected" and rejected.note == "Two accounts of one person."
    listed = (await client.get("/v1/me/referrals", headers=referrer["headers"])).json()
    reasons = {i["id"]: i["reason"] for i in listed["items"]}
    assert "Two accounts of one person." in reasons[second["id"]]


async def test_staff_cannot_decide_their_own_referral_on_the_page(console, client, engine):
    me = console.account
    me["headers"] = {"Authorization": f"Bearer {me['access_token']}"}
    _, _, _, second = await in_review(client, engine, referrer=me)
    response = await post_form(
        console,
        "/admin/referrals",
        f"/admin/referrals/{second['id']}/decide",
        {"decision": "approve", "status": "review"},
    )
    assert response.status_code == 303
    shown = await console.get(response.headers["location"])
    assert "Staff do not review their own referrals." in shown.text
    assert (await row(engine, second["id"])).status == "review"


async def test_the_terms_are_edited_as_json_on_the_settings_page(console, engine):
    page = await console.get("/admin/settings/referrals.terms")
    assert page.status_code == 200, page.text
    assert '<textarea name="value"' in page.text and "&#34;referrer_coins&#34;:500" in page.text
    terms = {
        "version": 1,
        "referrer_coins": 700,
        "invitee_coins": 250,
        "qualifying_days": 5,
        "qualifying_window_days": 30,
        "claim_window_days": 7,
        "hold_days": 7,
        "monthly_cap": 10,
    }
    for value, shown in (
        (json.dumps(terms), "changed terms need a higher version than 1"),
        ("{not json", "must be a JSON object"),
        (json.dumps({**terms, "version": 2}), "referrals.terms is now"),
    ):
        response = await post_form(
            console,
            "/admin/settings/referrals.terms",
            "/admin/settings/referrals.terms",
            {"value": value, "return_to": "detail"},
        )
        assert response.status_code == 303
        assert shown in (await console.get(response.headers["location"])).text
    async with engine.connect() as conn:
        stored = (
            await conn.execute(text("SELECT value FROM settings WHERE key = 'referrals.terms'"))
        ).scalar_one()
    assert stored["version"] == 2 and stored["referrer_coins"] == 700

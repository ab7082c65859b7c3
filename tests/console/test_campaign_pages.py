"""Issue 15 item 6 (campaigns and prizes in the console): the segment builder, the preview, a
second admin's approval, the run and its progress; the prize tables. Every action audited."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import text

from stepcoin.leaderboards import service as boards
from tests.achievements.helpers import set_days
from tests.admin.helpers import count, ledger_report
from tests.campaigns.helpers import campaign_rows, many_walkers, run_job, set_setting
from tests.console.helpers import browser_client, make_staff, post_form, sign_in
from tests.console.test_users_pages import follow
from tests.leaderboards.helpers import utc, walker
from tests.steps.helpers import today

CAMPAIGN_RE = re.compile(r'data-campaign-id="([0-9a-f-]{36})"')


async def test_build_preview_approve_and_run_a_campaign(console, app, client, engine):
    await set_setting(engine, "economy.campaign_approval_threshold_coins", 100)
    walkers = await many_walkers(engine, 30)
    refused = await post_form(
        console,
        "/admin/campaigns",
        "/admin/campaigns",
        {"name": "Spring", "message": "Hi", "coins_per_walker": "10", "steps_from": "2026-03-01"},
    )
    assert refused.status_code == 422
    assert "steps_from and steps_to go with min_steps" in refused.text
    assert 'value="Spring"' in refused.text  # the input is kept

    created = await post_form(
        console,
        "/admin/campaigns",
        "/admin/campaigns",
        {
            "name": "Spring",
            "message": "Thanks for walking!",
            "coins_per_walker": "10",
            "user_ids": "\n".join(walkers[:20]),
        },
    )
    page = await follow(console, created)
    campaign_id = CAMPAIGN_RE.search(page.text).group(1)
    assert 'id="campaign-approve-form"' not in page.text  # the creator gets no approve button

    preview = await post_form(
        console,
        f"/admin/campaigns/{campaign_id}",
        f"/admin/campaigns/{campaign_id}/preview",
        {},
    )
    assert preview.status_code == 200
    assert 'id="preview-walkers">20<' in preview.text
    assert 'id="preview-needs-approval"' in preview.text

    run = await post_form(
        console, f"/admin/campaigns/{campaign_id}", f"/admin/campaigns/{campaign_id}/run", {}
    )
    assert "second admin" in (await follow(console, run)).text
    assert await campaign_rows(engine, campaign_id) == []

    second = await make_staff(client, engine, "admin")
    async with browser_client(app) as other:
        assert (await sign_in(other, second["email"])).status_code == 303
        approved = await post_form(
            other, f"/admin/campaigns/{campaign_id}", f"/admin/campaigns/{campaign_id}/approve", {}
        )
        assert "Approved: up to 200 coins." in (await follow(other, approved)).text

    run = await post_form(
        console, f"/admin/campaigns/{campaign_id}", f"/admin/campaigns/{campaign_id}/run", {}
    )
    running = await follow(console, run)
    assert "Running: 20 walkers" in running.text
    assert 'http-equiv="refresh"' in running.text
    await run_job(app, campaign_id)
    done = await console.get(f"/admin/campaigns/{campaign_id}")
    assert 'data-status="done"' in done.text and 'id="campaign-walkers-paid">20 of 20' in done.text
    assert len(await campaign_rows(engine, campaign_id)) == 20
    listed = await console.get("/admin/campaigns")
    assert f'data-campaign-id="{campaign_id}" data-status="done"' in listed.text
    actions = await count(
        engine,
        "SELECT count(*) FROM admin_logs WHERE entity_type = 'campaign' AND entity_id = :id",
        id=campaign_id,
    )
    assert actions == 4  # created, previewed, approved, run
    assert (await ledger_report(engine)).ok


async def test_support_reads_but_cannot_act(support_console, console, engine):
    await many_walkers(engine, 3)
    created = await post_form(
        console,
        "/admin/campaigns",
        "/admin/campaigns",
        {"name": "All", "message": "Hi all", "coins_per_walker": "5", "all_walkers": "1"},
    )
    campaign_id = CAMPAIGN_RE.search((await follow(console, created)).text).group(1)
    page = await support_console.get(f"/admin/campaigns/{campaign_id}")
    assert page.status_code == 200 and 'id="campaign-run-form"' not in page.text
    refused = await post_form(
        support_console, "/admin/campaigns", f"/admin/campaigns/{campaign_id}/run", {}
    )
    assert refused.status_code == 403
    assert (await support_console.get("/admin/campaigns/not-an-id")).status_code == 404
    prizes = await support_console.get("/admin/prizes")
    assert prizes.status_code == 200 and 'action="/admin/prizes/daily"' not in prizes.text
    forged = await post_form(
        support_console, "/admin/prizes", "/admin/prizes/daily", {"table": "1 500"}
    )
    assert forged.status_code == 403
    assert await count(engine, "SELECT count(*) FROM leaderboard_prizes") == 0


async def test_prize_tables_in_the_console(console, app, client, engine):
    refused = await post_form(console, "/admin/prizes", "/admin/prizes/daily", {"table": "1-x 5"})
    assert "Line 1" in (await follow(console, refused)).text
    saved = await post_form(
        console, "/admin/prizes", "/admin/prizes/daily", {"table": "1 500\n2-3 100\n"}
    )
    page = await follow(console, saved)
    assert "The daily prizes are saved (2 lines)." in page.text
    assert "1 500\n2-3 100" in page.text
    winner = await walker(client, engine, "Win Ner")
    await set_days(engine, winner["id"], {today() - timedelta(days=1): 9000})
    await boards.rebuild_if_due(app.state.database, now=utc(today(), 12, 1))
    await boards.pay_prizes(app.state.database)
    page = await console.get("/admin/prizes")
    assert 'data-status="paid"' in page.text and "Win Ner" in page.text
    async with engine.connect() as conn:
        logged = (
            await conn.execute(
                text("SELECT count(*) FROM admin_logs WHERE action = 'leaderboard.prizes_set'")
            )
        ).scalar_one()
    assert logged == 1

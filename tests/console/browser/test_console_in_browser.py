"""The console in a real headless chromium: the daily work of an admin, end to end.

Sign in, approve a flagged record from the queue (with the keyboard) and see the walker's wallet
change, reject one with a note, adjust coins, change a setting, then find each of these in the
audit log, shown in the admin's timezone. Also: support's limits, a walker refused at the door,
a CSRF-less post refused, an idle session sent back to sign-in. Screenshots of the overview and
the review queue land in test-artifacts/console/.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from tests.console.browser.conftest import screenshot_path
from tests.console.helpers import make_staff
from tests.steps.helpers import rec, sync

pytestmark = pytest.mark.slow

ADMIN_TZ = "Asia/Tokyo"


async def flagged_walker(client: Any, engine: Any, name: str) -> dict[str, Any]:
    """A walker with five ordinary (paid) days and a flagged manual entry for yesterday."""
    walker = await make_staff(client, engine, "user", full_name=name)
    history = [rec(offset, 4000 + 700 * offset) for offset in range(2, 7)]
    assert all(
        r["status"] == "approved" for r in await sync(client, walker["access_token"], *history)
    )
    results = await sync(client, walker["access_token"], rec(1, 9000, manual=True))
    assert results[0]["status"] == "flagged" and results[0]["coins_pending"] == 90
    return walker


async def validation_of(engine: Any, user_id: str) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text(
                        "SELECT id FROM step_validations WHERE user_id = :u AND status = 'flagged'"
                    ),
                    {"u": user_id},
                )
            ).scalar_one()
        )


async def wallet_row(engine: Any, user_id: str) -> tuple[int, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT available_coins, pending_coins FROM wallets WHERE user_id = :u"),
                {"u": user_id},
            )
        ).one()
    return int(row[0]), int(row[1])


async def sign_in(page: Any, email: str, password: str) -> None:
    await page.goto("/admin/login")
    await page.fill('input[name="email"]', email)
    await page.fill('input[name="password"]', password)
    await page.click('button[type="submit"]')


def digits(value: str) -> int:
    return int(re.sub(r"[^\d-]", "", value))


async def test_an_admins_day_in_the_console(new_page, client, engine):
    admin = await make_staff(client, engine, "admin", full_name="Ada Admin")
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE users SET timezone = :tz WHERE id = :id"),
            {"tz": ADMIN_TZ, "id": admin["user"]["id"]},
        )
    approve_me = await flagged_walker(client, engine, "Walker Approve")
    reject_me = await flagged_walker(client, engine, "Walker Reject")
    approve_id = await validation_of(engine, approve_me["user"]["id"])
    reject_id = await validation_of(engine, reject_me["user"]["id"])
    paid, held = await wallet_row(engine, approve_me["user"]["id"])
    assert paid > 0 and held == 90

    page = await new_page()
    page.on("dialog", lambda dialog: dialog.accept())

    # sign in: the overview
    await sign_in(page, admin["email"], admin["password"])
    await page.wait_for_url(re.compile(r"/admin/$"))
    assert digits(await page.inner_text("#queue-size")) == 2
    assert digits(await page.inner_text("#pending-coins")) == 180
    assert digits(await page.inner_text("#outstanding-coins")) == 2 * paid

    # the review queue, oldest first; approve the first row with the keyboard
    await page.click("nav.main >> text=Review queue")
    await page.wait_for_url(re.compile(r"/admin/review"))
    rows = page.locator("[data-review-row]")
    assert await rows.count() == 2
    assert await rows.nth(0).get_attribute("data-validation-id") == str(approve_id)
    assert await page.locator(f'[data-validation-id="{approve_id}"] svg').count() >= 1
    await page.screenshot(path=screenshot_path("review-queue"), full_page=True)
    assert "90" in await rows.nth(0).locator("td.num").all_inner_texts()
    await page.keyboard.press("a")
    await page.wait_for_selector(".flash-ok")
    assert await wallet_row(engine, approve_me["user"]["id"]) == (paid + 90, 0)

    # reject the other one with a note
    row = page.locator(f'[data-validation-id="{reject_id}"]')
    await row.locator('input[name="note"]').fill("Manual entry without a device")
    await row.locator('button[name="decision"][value="reject"]').click()
    await page.wait_for_selector(".flash-ok")
    assert await page.locator("[data-review-row]").count() == 0
    assert await wallet_row(engine, reject_me["user"]["id"]) == (paid, 0)

    # the walker's page shows the approved coins; adjust them with a reason
    await page.click("nav.main >> text=Users")
    await page.fill("#user-search", approve_me["email"].split("@")[0])
    await page.press("#user-search", "Enter")
    await page.click("a.user-link")
    assert digits(await page.inner_text("#wallet-available")) == paid + 90
    await page.fill('#adjust-form input[name="amount"]', "25")
    await page.fill('#adjust-form [name="reason"]', "Goodwill for a lost sync")
    await page.click('#adjust-form button[type="submit"]')
    await page.wait_for_selector(".flash-ok")
    assert digits(await page.inner_text("#wallet-available")) == paid + 115
    assert await wallet_row(engine, approve_me["user"]["id"]) == (paid + 115, 0)

    # change a setting
    await page.click("nav.main >> text=Settings")
    form = page.locator('form[data-setting="anticheat.baseline_floor_steps"]')
    await form.locator('[name="value"]').fill("300")
    await form.locator('button[type="submit"]').click()
    await page.wait_for_selector(".flash-ok")
    async with engine.connect() as conn:
        cap = (
            await conn.execute(
                text("SELECT value FROM settings WHERE key = 'anticheat.baseline_floor_steps'")
            )
        ).scalar_one()
    assert cap == 300

    # every action is in the audit log, with the admin's timezone
    await page.click("nav.main >> text=Audit log")
    for action in ("validation.approve", "validation.reject", "wallet.adjust", "setting.update"):
        assert await page.locator(f'tr[data-audit-action="{action}"]').count() == 1, action
    setting_row = page.locator('tr[data-audit-action="setting.update"]')
    assert "15000" in await setting_row.inner_text() and "300" in await setting_row.inner_text()
    reject_row = page.locator('tr[data-audit-action="validation.reject"]')
    assert "Manual entry without a device" in await reject_row.inner_text()
    async with engine.connect() as conn:
        logged_at = (
            await conn.execute(
                text("SELECT created_at FROM admin_logs WHERE action = 'setting.update'")
            )
        ).scalar_one()
    assert isinstance(logged_at, datetime)
    shown = logged_at.astimezone(ZoneInfo(ADMIN_TZ)).strftime("%Y-%m-%d %H:%M")
    assert shown in await setting_row.inner_text()
    # the audit log filters by entity
    await page.goto(f"/admin/audit?entity_type=user&entity_id={approve_me['user']['id']}")
    assert await page.locator('tr[data-audit-action="wallet.adjust"]').count() == 1
    assert await page.locator('tr[data-audit-action="setting.update"]').count() == 0

    # the overview after the day's work, for a person to look at
    await page.click("nav.main >> text=Overview")
    assert digits(await page.inner_text("#queue-size")) == 0
    assert digits(await page.inner_text("#outstanding-coins")) == 2 * paid + 115
    await page.screenshot(path=screenshot_path("overview"), full_page=True)


async def test_support_walkers_csrf_and_idle_sessions(new_page, client, engine):
    support = await make_staff(client, engine, "support", full_name="Sam Support")
    walker = await make_staff(client, engine, "user", full_name="Wanda Walker")

    # a walker's correct credentials do not open the console
    page = await new_page()
    await sign_in(page, walker["email"], walker["password"])
    await page.wait_for_selector(".flash-error")
    assert "/admin/login" in page.url
    await page.goto("/admin/")
    assert "/admin/login" in page.url

    # support reads the user page but has no adjustment form, and a forged post is refused
    page = await new_page()
    await sign_in(page, support["email"], support["password"])
    await page.wait_for_url(re.compile(r"/admin/$"))
    await page.goto(f"/admin/users/{walker['user']['id']}")
    assert await page.locator("#wallet-available").count() == 1
    assert await page.locator("#adjust-form").count() == 0
    csrf = await page.get_attribute("body", "data-csrf")
    response = await page.request.post(
        f"/admin/users/{walker['user']['id']}/adjust",
        form={
            "csrf_token": csrf,
            "amount": "1000",
            "reason": "free money",
            "idempotency_key": "k1",
        },
        max_redirects=0,
    )
    assert response.status == 403
    response = await page.request.post(
        "/admin/settings/anticheat.baseline_floor_steps",
        form={"csrf_token": csrf, "value": "999"},
        max_redirects=0,
    )
    assert response.status == 403
    await page.goto("/admin/settings")
    assert (
        await page.locator('form[data-setting="anticheat.baseline_floor_steps"] button').count()
        == 0
    )
    assert await wallet_row(engine, walker["user"]["id"]) == (0, 0)

    # an admin's form posted without its CSRF token is refused and changes nothing
    admin = await make_staff(client, engine, "admin")
    page = await new_page()
    await sign_in(page, admin["email"], admin["password"])
    await page.wait_for_url(re.compile(r"/admin/$"))
    response = await page.request.post(
        f"/admin/users/{walker['user']['id']}/adjust",
        form={"amount": "1000", "reason": "no token", "idempotency_key": "k2"},
        max_redirects=0,
    )
    assert response.status == 403 and "CSRF" in await response.text()
    assert await wallet_row(engine, walker["user"]["id"]) == (0, 0)
    async with engine.connect() as conn:
        cap = (
            await conn.execute(
                text("SELECT value FROM settings WHERE key = 'anticheat.baseline_floor_steps'")
            )
        ).scalar_one()
        adjustments = (
            await conn.execute(
                text("SELECT count(*) FROM admin_logs WHERE action = 'wallet.adjust'")
            )
        ).scalar_one()
    assert cap == 15000 and adjustments == 0

    # a session left idle past the timeout ends: the next click lands on the sign-in page
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE admin_sessions SET last_seen_at = now() - interval '31 minutes' "
                "WHERE user_id = :id"
            ),
            {"id": admin["user"]["id"]},
        )
    await page.click("nav.main >> text=Orders")
    await page.wait_for_url(re.compile(r"/admin/login"))
    assert "ended" in await page.inner_text("main")

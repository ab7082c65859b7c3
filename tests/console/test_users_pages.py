"""The console's users pages: search, one user's page, (de)activation and coin adjustments."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import text

from tests.conftest import bearer, register, unique_email
from tests.console.helpers import csrf_of, make_staff
from tests.steps.helpers import ledger_ok, rec, sync, wallet

KEY_RE = re.compile(r'name="idempotency_key" value="([^"]+)"')


def available_on(html: str) -> str:
    match = re.search(r'id="wallet-available">([^<]*)<', html)
    assert match, "the page shows no available balance"
    return match.group(1)


async def logs(engine, action: str) -> list[dict]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT admin_id, entity_id, changes FROM admin_logs WHERE action = :a"),
            {"a": action},
        )
        return [dict(r._mapping) for r in rows]


async def ledger_rows(engine, user_id: str) -> list[tuple[int, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT amount, transaction_type FROM coin_transactions WHERE user_id = :u "
                "ORDER BY created_at, id"
            ),
            {"u": user_id},
        )
        return [(r.amount, r.transaction_type) for r in rows]


async def adjust(console, user_id: str, data: dict, *, form_html: str | None = None):
    """Post the adjust form like the browser would (its CSRF token and idempotency key)."""
    html = form_html or (await console.get(f"/admin/users/{user_id}")).text
    key = KEY_RE.search(html)
    assert key
    body = {"csrf_token": csrf_of(html), "idempotency_key": key.group(1), **data}
    return await console.post(f"/admin/users/{user_id}/adjust", data=body)


async def follow(console, response):
    assert response.status_code == 303, response.text
    return await console.get(response.headers["location"])


async def test_search_by_email_part_and_by_name(console, client):
    marker = uuid.uuid4().hex[:8]
    alice = await register(client, email=f"alice-{marker}@example.com", full_name="Alice Runner")
    await register(client, email=unique_email(), full_name="Bob Strider")
    page = await console.get("/admin/users", params={"q": f"ALICE-{marker}"})
    assert page.status_code == 200 and 'id="user-search"' in page.text
    links = re.findall(r'href="/admin/users/([^"]+)" class="user-link"', page.text)
    assert links == [alice["user"]["id"]]
    by_name = await console.get("/admin/users", params={"q": "strider"})
    assert "Bob Strider" in by_name.text and "Alice Runner" not in by_name.text
    everyone = await console.get("/admin/users")
    assert len(re.findall('class="user-link"', everyone.text)) == 3  # two walkers + the admin
    none = await console.get("/admin/users", params={"q": "nobody-like-this"})
    assert 'id="no-users"' in none.text


async def test_users_list_paginates(console, client, engine):
    for _ in range(3):
        await register(client)
    from stepcoin.console.pages import users as page_module

    old = page_module.PAGE_SIZE
    page_module.PAGE_SIZE = 2
    try:
        first = await console.get("/admin/users")
        cursor = re.search(r'href="/admin/users\?cursor=([^"]+)"[^>]*rel="next"', first.text)
        assert cursor
        second = await console.get(f"/admin/users?cursor={cursor.group(1)}")
        third_ids = re.findall(r'class="user-link"', second.text)
        assert len(third_ids) == 2
        ids = re.findall(r'data-user-id="([^"]+)"', first.text + second.text)
        assert len(set(ids)) == 4
    finally:
        page_module.PAGE_SIZE = old
    assert (await console.get("/admin/users", params={"cursor": "junk"})).status_code == 422


async def test_user_page_shows_profile_wallet_ledger_steps_sessions(console, client, engine):
    walker = await register(client, full_name="Page Walker", address="203.0.113.7")
    uid = walker["user"]["id"]
    await sync(client, walker["access_token"], rec(1, 9000, manual=True), rec(2, 5000))
    page = await console.get(f"/admin/users/{uid}")
    assert page.status_code == 200
    html = page.text
    assert "Page Walker" in html and walker["user"]["email"] in html
    assert available_on(html) == "50"
    assert re.search(r'id="wallet-pending">90<', html)
    [(amount, kind)] = await ledger_rows(engine, uid)
    assert amount == 50 and f"<td>{kind}</td>" in html  # the ledger row of the paid day
    assert "flagged" in html and "manual_entry" in html  # step history with status/reasons
    assert "<h2>App sessions" in html and "203.0.113.7" in html  # the registration's session
    assert 'id="deactivate"' in html and 'id="adjust-form"' in html
    assert "style=" not in html


async def test_ledger_has_its_own_cursor(console, client, engine):
    walker = await register(client)
    uid = walker["user"]["id"]
    from stepcoin.console.pages import users as page_module

    for n in (1, 2, 3):
        await follow(console, await adjust(console, uid, {"amount": str(n), "reason": f"gift {n}"}))
    old = page_module.LEDGER_PAGE
    page_module.LEDGER_PAGE = 2
    try:
        first = await console.get(f"/admin/users/{uid}")
        assert "gift 3" in first.text and "gift 2" in first.text and "gift 1" not in first.text
        link = re.search(r'href="([^"]*ledger_cursor=[^"]+)"', first.text)
        assert link
        second = await console.get(link.group(1).replace("&amp;", "&"))
        assert "gift 1" in second.text and "gift 3" not in second.text
    finally:
        page_module.LEDGER_PAGE = old


async def test_unknown_or_malformed_user_is_a_404_page(console):
    assert (await console.get(f"/admin/users/{uuid.uuid4()}")).status_code == 404
    response = await console.get("/admin/users/not-a-uuid")
    assert response.status_code == 404 and "No such user" in response.text


async def test_adjust_credits_once_even_when_the_form_is_posted_twice(console, client, engine):
    walker = await register(client)
    uid = walker["user"]["id"]
    html = (await console.get(f"/admin/users/{uid}")).text
    data = {"amount": "250", "reason": "Welcome bonus"}
    first = await follow(console, await adjust(console, uid, data, form_html=html))
    assert "Credited 250 coins" in first.text and available_on(first.text) == "250"
    second = await follow(console, await adjust(console, uid, data, form_html=html))
    assert "already made" in second.text and available_on(second.text) == "250"
    assert (await wallet(client, walker["access_token"]))["available_coins"] == 250
    assert await ledger_rows(engine, uid) == [(250, "admin_adjustment")]
    [log] = await logs(engine, "wallet.adjust")
    assert log["entity_id"] == uid and str(log["admin_id"]) == console.account["user"]["id"]
    # a fresh form (new key) is a new adjustment; a debit works too
    third = await follow(console, await adjust(console, uid, {"amount": "-50", "reason": "Oops"}))
    assert "Debited 50 coins" in third.text and available_on(third.text) == "200"
    await ledger_ok(engine)


async def test_adjust_by_support_is_refused(support_console, client, engine):
    walker = await register(client)
    uid = walker["user"]["id"]
    page = await support_console.get(f"/admin/users/{uid}")
    assert page.status_code == 200 and 'id="adjust-form"' not in page.text
    response = await support_console.post(
        f"/admin/users/{uid}/adjust",
        data={
            "csrf_token": csrf_of(page.text),
            "amount": "100",
            "reason": "sneaky",
            "idempotency_key": "k1",
        },
    )
    assert response.status_code == 403
    assert await ledger_rows(engine, uid) == []
    assert (await wallet(client, walker["access_token"]))["available_coins"] == 0


async def test_invalid_adjustments_change_nothing(console, client, engine):
    walker = await register(client)
    uid = walker["user"]["id"]
    for data, message in [
        ({"amount": "abc", "reason": "a reason"}, "whole number"),
        ({"amount": "1.5", "reason": "a reason"}, "whole number"),
        ({"amount": "0", "reason": "a reason"}, "must not be zero"),
        ({"amount": "2000000", "reason": "a reason"}, "At most"),
        ({"amount": "10", "reason": ""}, "Give a reason"),
        ({"amount": "10"}, "Give a reason"),
        ({"amount": "-10", "reason": "overdraw"}, "would overdraw"),
    ]:
        page = await follow(console, await adjust(console, uid, data))
        assert message in page.text, data
        assert 'class="flash flash-error"' in page.text
    assert await ledger_rows(engine, uid) == []
    assert await logs(engine, "wallet.adjust") == []
    html = (await console.get(f"/admin/users/{uid}")).text
    missing = await adjust(
        console, str(uuid.uuid4()), {"amount": "5", "reason": "x" * 5}, form_html=html
    )
    assert missing.status_code == 303  # back to a page that is a 404: nothing to credit
    assert await logs(engine, "wallet.adjust") == []


async def test_deactivate_and_reactivate_are_audited(console, client, engine):
    walker = await register(client)
    uid = walker["user"]["id"]
    page = await console.get(f"/admin/users/{uid}")
    response = await console.post(
        f"/admin/users/{uid}/active",
        data={"csrf_token": csrf_of(page.text), "is_active": "false"},
    )
    after = await follow(console, response)
    assert "deactivated" in after.text and 'id="reactivate"' in after.text
    me = await client.get("/v1/me", headers=bearer(walker["access_token"]))
    assert me.status_code == 401
    async with engine.connect() as conn:
        revoked = (
            await conn.execute(
                text(
                    "SELECT bool_and(revoked_at IS NOT NULL) FROM refresh_tokens WHERE user_id = :u"
                ),
                {"u": uid},
            )
        ).scalar_one()
    assert revoked is True
    # the page still shows an inactive walker's wallet and ledger
    assert available_on(after.text) == "0"
    response = await console.post(
        f"/admin/users/{uid}/active",
        data={"csrf_token": csrf_of(after.text), "is_active": "true"},
    )
    again = await follow(console, response)
    assert "active again" in again.text and 'id="deactivate"' in again.text
    assert (await client.get("/v1/me", headers=bearer(walker["access_token"]))).status_code == 200
    entries = await logs(engine, "user.deactivate") + await logs(engine, "user.activate")
    assert [e["entity_id"] for e in entries] == [uid, uid]
    bad = await console.post(
        f"/admin/users/{uid}/active", data={"csrf_token": csrf_of(again.text), "is_active": "no"}
    )
    assert "true or false" in (await follow(console, bad)).text


async def test_support_may_deactivate_walkers_but_not_staff(support_console, client, engine):
    walker = await register(client)
    uid = walker["user"]["id"]
    page = await support_console.get(f"/admin/users/{uid}")
    response = await support_console.post(
        f"/admin/users/{uid}/active", data={"csrf_token": csrf_of(page.text), "is_active": "false"}
    )
    assert "deactivated" in (await follow(support_console, response)).text
    admin = await make_staff(client, engine, "admin")
    admin_page = await support_console.get(f"/admin/users/{admin['user']['id']}")
    assert 'id="deactivate"' not in admin_page.text
    response = await support_console.post(
        f"/admin/users/{admin['user']['id']}/active",
        data={"csrf_token": csrf_of(admin_page.text), "is_active": "false"},
    )
    refused = await follow(support_console, response)
    assert "Only an administrator" in refused.text
    async with engine.connect() as conn:
        active = (
            await conn.execute(
                text("SELECT is_active FROM users WHERE id = :u"), {"u": admin["user"]["id"]}
            )
        ).scalar_one()
    assert active is True
    assert len(await logs(engine, "user.deactivate")) == 1


async def test_staff_page_lists_console_sessions(console):
    page = await console.get(f"/admin/users/{console.account['user']['id']}")
    assert 'id="console-sessions"' in page.text and "198.51.100.9" in page.text
    assert 'id="deactivate"' not in page.text  # nobody deactivates themself


async def test_what_walkers_write_is_shown_as_text_never_as_markup(console, client):
    from tests.conftest import register

    walker = await register(client, full_name='<script>alert("x")</script><b>bold</b>')
    page = await console.get(f"/admin/users/{walker['user']['id']}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<b>bold</b>" not in page.text
    assert "&lt;script&gt;alert(" in page.text
    listing = await console.get("/admin/users", params={"q": "script"})
    assert "<script>alert" not in listing.text and "&lt;script&gt;" in listing.text


async def test_an_admin_cannot_adjust_their_own_wallet_in_the_console(console, engine):
    uid = console.account["user"]["id"]
    response = await adjust(console, uid, {"amount": "500", "reason": "bonus for me"})
    page = await follow(console, response)  # back to the page, with the service's refusal
    assert "never adjust their own wallet" in page.text
    assert await ledger_rows(engine, uid) == []

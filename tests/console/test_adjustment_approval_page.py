"""Issue 12 hole 7 in the console: a large adjustment from the form waits for a second admin,
who approves it on the walker's page; the requester is offered no button and is refused."""

from __future__ import annotations

import re

from tests.conftest import register
from tests.console.helpers import browser_client, csrf_of, make_staff, sign_in
from tests.console.test_users_pages import adjust, follow, ledger_rows

REQUEST_RE = re.compile(r'action="/admin/adjustments/([0-9a-f-]+)/approve"')


async def test_a_large_adjustment_waits_for_another_admin_in_the_console(
    console, app, client, engine
):
    walker = await register(client)
    uid = walker["user"]["id"]
    page = await follow(console, await adjust(console, uid, {"amount": "50000", "reason": "prize"}))
    assert "waits for a second admin" in page.text
    assert await ledger_rows(engine, uid) == []
    assert 'id="adjustment-requests"' in page.text
    assert REQUEST_RE.search(page.text) is None  # the requester gets no approve button
    # posting the approval anyway is refused by the service
    request_id = (await approval_ids(engine, uid))[0]
    refused = await console.post(
        f"/admin/adjustments/{request_id}/approve",
        data={"csrf_token": csrf_of(page.text), "back": f"/admin/users/{uid}"},
    )
    assert "second admin" in (await follow(console, refused)).text
    assert await ledger_rows(engine, uid) == []

    second = await make_staff(client, engine, "admin")
    async with browser_client(app) as other:
        assert (await sign_in(other, second["email"])).status_code == 303
        theirs = (await other.get(f"/admin/users/{uid}")).text
        found = REQUEST_RE.search(theirs)
        assert found and found.group(1) == request_id
        no_csrf = await other.post(
            f"/admin/adjustments/{request_id}/approve", data={"back": f"/admin/users/{uid}"}
        )
        assert no_csrf.status_code in (400, 403)
        assert await ledger_rows(engine, uid) == []
        approved = await other.post(
            f"/admin/adjustments/{request_id}/approve",
            data={"csrf_token": csrf_of(theirs), "back": f"/admin/users/{uid}"},
        )
        done = await follow(other, approved)
        assert "Approved: 50,000 coins moved." in done.text
    assert await ledger_rows(engine, uid) == [(50_000, "admin_adjustment")]


async def approval_ids(engine, user_id: str) -> list[str]:
    from sqlalchemy import text

    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id FROM adjustment_requests WHERE user_id = :u ORDER BY requested_at"),
            {"u": user_id},
        )
        return [str(r.id) for r in rows]

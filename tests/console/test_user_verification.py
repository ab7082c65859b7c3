"""The console's user page shows whether the walker's email is verified; support and admins
send a new verification mail (a CSRF-checked form, audited)."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import register
from tests.console.helpers import csrf_of
from tests.fixtures.smtp import smtp_server, token_in
from tests.mail.helpers import run_mail_jobs, with_smtp


async def follow(console, response):
    assert response.status_code == 303, response.text
    return await console.get(response.headers["location"])


async def test_support_sees_an_unverified_walker_and_resends_the_mail(
    support_console, client, engine, app, settings, monkeypatch
):
    walker = await register(client, verified=False)
    uid = walker["user"]["id"]
    page = await support_console.get(f"/admin/users/{uid}")
    assert page.status_code == 200
    assert 'id="email-state">not verified<' in page.text
    assert 'id="resend-verification"' in page.text

    refused = await support_console.post(f"/admin/users/{uid}/verification-mail", data={})
    assert refused.status_code in (400, 403)  # no CSRF token: nothing sent
    response = await support_console.post(
        f"/admin/users/{uid}/verification-mail", data={"csrf_token": csrf_of(page.text)}
    )
    shown = await follow(support_console, response)
    assert "A new verification mail is on its way" in shown.text

    async with engine.connect() as conn:
        log = (
            await conn.execute(
                text(
                    "SELECT admin_id, entity_id, changes FROM admin_logs "
                    "WHERE action = 'user.verification_mail_sent'"
                )
            )
        ).one()
    assert log.entity_id == uid and log.changes["email"] == walker["user"]["email"]

    with smtp_server() as mailbox:
        await run_mail_jobs(app, monkeypatch, with_smtp(settings, mailbox.url))
        mailbox.wait_for(3)  # the support account's, the walker's, the resent one
    _registration, second = mailbox.to(walker["user"]["email"])
    verified = await client.post("/v1/auth/verify-email", json={"token": token_in(second)})
    assert verified.status_code == 200
    page = await support_console.get(f"/admin/users/{uid}")
    assert 'id="email-state">verified<' in page.text
    assert 'id="resend-verification"' not in page.text


async def test_a_verified_email_gets_no_new_mail(console, client, engine):
    walker = await register(client)
    uid = walker["user"]["id"]
    page = await console.get(f"/admin/users/{uid}")
    response = await console.post(
        f"/admin/users/{uid}/verification-mail", data={"csrf_token": csrf_of(page.text)}
    )
    shown = await follow(console, response)
    assert "verified already" in shown.text
    async with engine.connect() as conn:
        count = (
            await conn.execute(
                text("SELECT count(*) FROM mail_outbox WHERE recipient = :r"),
                {"r": walker["user"]["email"]},
            )
        ).scalar_one()
    assert count == 1  # the registration's only

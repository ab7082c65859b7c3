"""The pages the mail links open on this server: opening one changes nothing; the page's
button or form spends the token through the same services as the API."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.conftest import TEST_PASSWORD, register
from tests.fixtures.smtp import TOKEN_RE, text_of, token_in

NEW_PASSWORD = "a brand new passphrase 42"


async def unused_tokens(engine, purpose: str) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT count(*) FROM email_tokens WHERE used_at IS NULL AND purpose = :p"),
                {"p": purpose},
            )
        ).scalar_one()


def path_of_link(mail) -> str:
    """The link's path and query, as the browser opens it on this server."""
    body = text_of(mail)
    start = body.index("http://")
    link = body[start:].split()[0]
    assert TOKEN_RE.search(link)
    return "/" + link.split("/", 3)[3]


async def test_the_verification_link_opens_a_page_whose_button_confirms(client, engine, mailbox):
    walker = await register(client, verified=False)
    [mail] = await mailbox.deliver(1)
    page = await client.get(path_of_link(mail))
    assert page.status_code == 200 and 'id="confirm"' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert (
        await unused_tokens(engine, "verify_email") == 1
    )  # opening the link (a scanner, a preview) spent nothing

    done = await client.post("/verify-email", data={"token": token_in(mail)})
    assert done.status_code == 200 and 'id="done"' in done.text
    again = await client.post("/verify-email", data={"token": token_in(mail)})
    assert again.status_code == 410 and 'id="problem"' in again.text
    me = await client.post(
        "/v1/auth/login", json={"email": walker["user"]["email"], "password": TEST_PASSWORD}
    )
    assert me.json()["user"]["email_verified"] is True


async def test_the_reset_link_opens_a_password_form(client, engine, mailbox):
    walker = await register(client)
    email = walker["user"]["email"]
    await client.post("/v1/auth/password-reset/request", json={"email": email})
    [mail] = [m for m in await mailbox.deliver(2) if "Reset" in m["Subject"]]
    page = await client.get(path_of_link(mail))
    assert page.status_code == 200 and 'name="new_password"' in page.text
    token = token_in(mail)
    assert f'value="{token}"' in page.text

    weak = await client.post("/reset-password", data={"token": token, "new_password": "short"})
    assert weak.status_code == 422 and 'name="new_password"' in weak.text  # try again
    assert await unused_tokens(engine, "password_reset") == 1
    done = await client.post("/reset-password", data={"token": token, "new_password": NEW_PASSWORD})
    assert done.status_code == 200 and 'id="done"' in done.text
    login = await client.post("/v1/auth/login", json={"email": email, "password": NEW_PASSWORD})
    assert login.status_code == 200


@pytest.mark.parametrize("path", ["/verify-email", "/reset-password"])
async def test_a_page_escapes_what_the_link_carries(client, path):
    page = await client.get(path, params={"token": '"><script>alert(1)</script>'})
    assert "<script>" not in page.text
    unknown = await client.post(path, data={"token": "nope", "new_password": NEW_PASSWORD})
    assert unknown.status_code == 400 and 'id="problem"' in unknown.text

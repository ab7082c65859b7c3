"""Issue 12, hole 8: a new password ends every earlier session, in the app and the console."""

from __future__ import annotations

from stepcoin.users.admin_accounts import create_or_promote_admin
from tests.console.helpers import browser_client, make_staff, sign_in


async def test_create_admin_on_an_existing_email_ends_its_sessions(
    app, client, engine, database_url
):
    admin = await make_staff(client, engine, "admin")
    async with browser_client(app) as console:
        assert (await sign_in(console, admin["email"])).status_code == 303
        assert (await console.get("/admin/")).status_code == 200

        created = await create_or_promote_admin(
            database_url, admin["email"], "a brand new admin pass", "Boss"
        )
        assert created is False

        assert (await console.get("/admin/")).status_code == 303  # back to the sign-in page
    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": admin["refresh_token"]}
    )
    assert refreshed.status_code == 401
    old = await client.post(
        "/v1/auth/login", json={"email": admin["email"], "password": admin["password"]}
    )
    assert old.status_code == 401
    new = await client.post(
        "/v1/auth/login", json={"email": admin["email"], "password": "a brand new admin pass"}
    )
    assert new.status_code == 200
    async with browser_client(app) as console:  # a session begun after the change is fine
        assert (await sign_in(console, admin["email"], "a brand new admin pass")).status_code == 303
        assert (await console.get("/admin/")).status_code == 200


async def test_the_access_token_names_its_session(client):
    from tests.conftest import register

    account = await register(client)
    import jwt

    claims = jwt.decode(account["access_token"], options={"verify_signature": False})
    assert "sid" in claims

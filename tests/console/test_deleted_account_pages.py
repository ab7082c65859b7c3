"""The console shows a deleted account as deleted, the audit log shows the deletion, and a
tombstone cannot be reactivated (issue 12, section 2)."""

from __future__ import annotations

from sqlalchemy import text

from tests.accounts.helpers import delete_me
from tests.conftest import TEST_PASSWORD, register
from tests.console.helpers import csrf_of


async def test_a_deleted_walker_shows_as_a_tombstone_and_stays_deleted(console, client, engine):
    walker = await register(client, full_name="Erin Erased")
    uid, email = walker["user"]["id"], walker["user"]["email"]
    assert (
        await delete_me(client, walker["access_token"], password=TEST_PASSWORD)
    ).status_code == 204

    page = await console.get(f"/admin/users/{uid}")
    assert page.status_code == 200
    html = page.text
    assert 'id="user-status">deleted<' in html
    assert 'id="user-deleted"' in html
    assert f"deleted+{uid}@deleted.invalid" in html
    assert email not in html and "Erin Erased" not in html
    assert 'id="reactivate"' not in html and 'id="deactivate"' not in html

    listing = await console.get("/admin/users", params={"q": uid[:8]})
    assert ">deleted<" in listing.text

    # reactivating a tombstone by a hand-made form is refused and changes nothing
    response = await console.post(
        f"/admin/users/{uid}/active", data={"csrf_token": csrf_of(html), "is_active": "true"}
    )
    assert response.status_code == 303
    shown = await console.get(response.headers["location"])
    assert "cannot be reactivated" in shown.text
    async with engine.connect() as conn:
        active = (
            await conn.execute(text("SELECT is_active FROM users WHERE id = :u"), {"u": uid})
        ).scalar_one()
    assert active is False

    audit = await console.get("/admin/audit", params={"action": "account.deleted"})
    assert audit.status_code == 200
    assert f'data-entity-id="{uid}"' in audit.text
    assert "the walker" in audit.text
    assert email not in audit.text


async def test_the_admin_api_shows_deleted_at(console, client, engine):
    walker = await register(client)
    uid = walker["user"]["id"]
    assert (
        await delete_me(client, walker["access_token"], password=TEST_PASSWORD)
    ).status_code == 204
    admin = console.account  # type: ignore[attr-defined]
    from tests.conftest import bearer

    response = await client.get(f"/v1/admin/users/{uid}", headers=bearer(admin["access_token"]))
    assert response.status_code == 200, response.text
    assert response.json()["deleted_at"] is not None
    assert response.json()["is_active"] is False
    patch = await client.patch(
        f"/v1/admin/users/{uid}", json={"is_active": True}, headers=bearer(admin["access_token"])
    )
    assert patch.status_code == 409
    assert patch.json()["code"] == "account_deleted"

"""The console's challenge pages: the list by status, a challenge with its participants and
escrow, cancelling through the page (every fee back, audited), support reads but does not
cancel."""

from __future__ import annotations

from sqlalchemy import text

from tests.admin.helpers import ledger_report
from tests.challenges.helpers import act, balance, create, rich_walker, spec
from tests.console.helpers import post_form


async def running(client, engine, admin_account):
    admin = {
        **admin_account,
        "headers": {"Authorization": f"Bearer {admin_account['access_token']}"},
    }
    cid = (await create(client, admin, spec("total_steps", entry_fee_coins=40)))["id"]
    walkers = [await rich_walker(client, admin, 100, name=f"W{i} Walker") for i in range(2)]
    for w in walkers:
        await act(client, w, cid, "join")
    return cid, walkers


async def test_the_list_and_the_detail_show_status_participants_and_escrow(
    console, client, engine, admin_account
):
    cid, walkers = await running(client, engine, admin_account)
    page = await console.get("/admin/challenges")
    assert page.status_code == 200, page.text
    assert f'data-challenge-id="{cid}"' in page.text and 'href="/admin/challenges"' in page.text
    assert "scheduled (1)" in page.text
    settled = await console.get("/admin/challenges?status=settled")
    assert f'data-challenge-id="{cid}"' not in settled.text
    detail = await console.get(f"/admin/challenges/{cid}")
    assert detail.status_code == 200
    assert all(f'data-user-id="{w["id"]}"' in detail.text for w in walkers)
    assert 'id="challenge-escrow">80' in detail.text
    assert 'id="challenge-cancel"' in detail.text
    missing = await console.get("/admin/challenges/not-a-uuid")
    assert missing.status_code == 404


async def test_cancelling_through_the_page_refunds_every_fee_and_is_audited(
    console, client, engine, admin_account
):
    cid, walkers = await running(client, engine, admin_account)
    response = await post_form(
        console,
        f"/admin/challenges/{cid}",
        f"/admin/challenges/{cid}/cancel",
        {"reason": "wrong dates"},
    )
    assert response.status_code == 303, response.text
    shown = await console.get(response.headers["location"])
    assert "Cancelled: every entry fee went back." in shown.text
    assert 'data-status="cancelled"' in shown.text
    assert [await balance(client, w) for w in walkers] == [100, 100]
    async with engine.connect() as conn:
        reason = (
            await conn.execute(
                text(
                    "SELECT changes -> 'after' ->> 'reason' FROM admin_logs "
                    "WHERE action = 'challenge.cancel' AND entity_id = :c"
                ),
                {"c": cid},
            )
        ).scalar_one()
    assert reason == "wrong dates"
    assert (await ledger_report(engine)).ok


async def test_support_reads_the_pages_but_cannot_cancel(
    support_console, console, client, engine, admin_account
):
    cid, _ = await running(client, engine, admin_account)
    detail = await support_console.get(f"/admin/challenges/{cid}")
    assert detail.status_code == 200 and 'id="challenge-cancel"' not in detail.text


async def test_a_company_challenge_links_its_group_and_shows_it_deleted(
    console, client, engine, admin_account
):
    admin = {
        **admin_account,
        "headers": {"Authorization": f"Bearer {admin_account['access_token']}"},
    }
    owner = await rich_walker(client, admin, 0, name="Owner Walker")
    made = await client.post(
        "/v1/groups",
        json={"name": "Acme", "kind": "company", "open": True},
        headers=owner["headers"],
    )
    gid = made.json()["id"]
    cid = (await create(client, admin, spec("total_steps", group_id=gid)))["id"]
    detail = await console.get(f"/admin/challenges/{cid}")
    assert f'href="/admin/groups/{gid}"' in detail.text
    deleted = await client.delete(f"/v1/groups/{gid}", headers=owner["headers"])
    assert deleted.status_code == 204
    detail = await console.get(f"/admin/challenges/{cid}")
    assert f'href="/admin/groups/{gid}"' not in detail.text and "group deleted" in detail.text

"""The console's fair-play views (issue 16, item 5): linked accounts in the review queue, the
trust score with its inputs and the linked accounts on the user page, clearing links."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import register
from tests.console.helpers import post_form
from tests.steps.helpers import rec, sync


async def _one_phone(client, count: int) -> list[dict]:
    accounts = [await register(client) for _ in range(count)]
    for account in accounts:
        await sync(client, account["access_token"], rec(1, 6000, device_id="shared-phone"))
    return accounts


async def test_the_queue_shows_the_linked_accounts_of_a_flagged_day(console, client):
    first, _second = await _one_phone(client, 2)
    page = await console.get("/admin/review")
    assert page.status_code == 200
    html = page.text
    assert 'data-rule="shared_device"' in html
    assert f'data-linked="{first["user"]["id"]}"' in html  # on the second's flagged day
    assert first["user"]["email"] in html


async def test_the_user_page_shows_trust_inputs_and_links_and_clears_them(console, client, engine):
    accounts = await _one_phone(client, 3)
    target = accounts[-1]
    url = f"/admin/users/{target['user']['id']}"
    html = (await console.get(url)).text
    # 50, -20 for two linked accounts, -4 for its flagged day
    assert 'id="fair-play"' in html and 'id="trust-score">26<' in html
    assert 'id="trust-linked">2<' in html
    for other in accounts[:-1]:
        assert other["user"]["email"] in html
    assert "shared-phone" in html

    done = await post_form(console, url, f"{url}/links/clear", {"note": "a family's phone"})
    assert done.status_code == 303, done.text
    after = (await console.get(url)).text
    assert 'id="trust-linked">0<' in after and "a family&#39;s phone" in after
    again = await sync(client, target["access_token"], rec(0, 5000, device_id="shared-phone"))
    assert again[0]["status"] == "approved"
    async with engine.connect() as conn:
        logged = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM admin_logs WHERE action = 'fairplay.links_cleared' "
                    "AND entity_id = :id"
                ),
                {"id": target["user"]["id"]},
            )
        ).scalar_one()
    assert logged == 1


async def test_a_page_of_an_unlinked_walker_says_so(console, client):
    walker = await register(client)
    html = (await console.get(f"/admin/users/{walker['user']['id']}")).text
    assert 'id="no-links"' in html and 'id="trust-score">50<' in html

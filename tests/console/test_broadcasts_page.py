"""Issue 18 item 7: the console's campaigns page lists the push broadcasts with their
delivery figures."""

from __future__ import annotations

import pytest

from tests.admin.helpers import make_staff
from tests.notify.conftest import (  # noqa: F401 (the push fixtures, used by name)
    android_token,
    apns_servers,
    fcm_server,
    push,
)
from tests.notify.helpers import add_device, run_notify_jobs, walker
from tests.notify.test_broadcasts import NEWS, run_job


@pytest.mark.usefixtures("push")
async def test_the_console_campaigns_page_shows_the_figures(app, client, engine, console):
    admin = await make_staff(client, engine)
    ada = await walker(client)
    await add_device(client, ada, "android", android_token(91))
    b = (
        await client.post(
            "/v1/admin/broadcasts",
            json={**NEWS, "segment": {"user_ids": [ada["id"]]}},
            headers=admin["headers"],
        )
    ).json()
    await client.post(f"/v1/admin/broadcasts/{b['id']}/run", headers=admin["headers"])
    await run_job(app, b["id"])
    await run_notify_jobs(app)
    page = await console.get("/admin/campaigns")
    assert page.status_code == 200
    row = page.text.split(f'data-broadcast-id="{b["id"]}"')[1].split("</tr>")[0]
    assert NEWS["title"] in row and row.startswith(' data-status="done"')
    cells = [c.split(">")[-1] for c in row.split("</td>")[:-1]]
    # title, status, walkers, queued, sent, failed, invalidated
    assert cells[2:7] == ["1 / 1", "0", "1", "0", "0"]

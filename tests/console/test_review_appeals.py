"""The console's review queue shows an appeal: the badge, the walker's note, the original
decision; deciding it from the console pays through the same approval."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import text

from tests.conftest import bearer, register
from tests.console.helpers import post_form
from tests.steps.helpers import day, ledger_ok, make_admin, rec, sync, wallet


async def test_the_queue_shows_an_appeal_with_the_note_and_the_original_decision(
    console, client, engine
):
    other_admin = await make_admin(client, engine)
    walker = await register(client)
    token = walker["access_token"]
    await sync(client, token, rec(1, 9000, manual=True), rec(2, 8000, manual=True))
    queue = (await client.get("/v1/admin/validations", headers=bearer(other_admin))).json()
    first = next(i for i in queue["items"] if i["date"] == day(1))
    rejected = await client.post(
        f"/v1/admin/validations/{first['id']}/reject",
        json={"note": "typed in by hand"},
        headers=bearer(other_admin),
    )
    assert rejected.status_code == 200
    appealed = await client.post(
        f"/v1/steps/{day(1)}/appeal",
        json={"note": "My watch <was> charging"},
        headers=bearer(token),
    )
    assert appealed.status_code == 201, appealed.text

    html = (await console.get("/admin/review")).text
    rows = re.findall(r'data-review-row data-validation-id="(\d+)"', html)
    assert len(rows) == 2  # the plain flagged day and the appeal
    assert html.count("data-appeal>appeal<") == 1
    assert "My watch &lt;was&gt; charging" in html  # the walker's note, escaped
    assert "data-original-decision" in html and 'class="badge rejected">rejected<' in html
    assert "typed in by hand" in html
    assert 'data-original-rule="manual_entry"' in html

    async with engine.connect() as conn:
        appeal_id = (
            await conn.execute(
                text(
                    "SELECT id FROM step_validations WHERE user_id = :u AND recorded_date = :d "
                    "AND status = 'flagged' AND reviewed_at IS NULL AND superseded_by IS NULL"
                ),
                {"u": walker["user"]["id"], "d": date.fromisoformat(first["date"])},
            )
        ).scalar_one()
    response = await post_form(
        console,
        "/admin/review",
        "/admin/review/decide",
        {"decision": "approve", "ids": str(appeal_id), "note": "fair"},
    )
    assert response.status_code == 303, response.text
    assert (await wallet(client, token))["available_coins"] == 90
    html = (await console.get("/admin/review")).text
    assert "data-appeal>appeal<" not in html
    await ledger_ok(engine)

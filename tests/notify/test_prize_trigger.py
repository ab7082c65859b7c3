"""Issue 18 item 6, leaderboard prizes: a winner hears of the prize once, when it is paid (a
re-run of the close and of the payout tell nobody twice); a walker without a prize hears
nothing."""

from __future__ import annotations

from datetime import timedelta

from stepcoin.leaderboards import service
from tests.achievements.helpers import set_days
from tests.admin.helpers import make_staff
from tests.leaderboards.helpers import utc, walker
from tests.notify.helpers import rows
from tests.steps.helpers import today


async def prizes_told(engine, user_id):
    return [
        (r.title, r.data)
        for r in await rows(
            engine,
            "SELECT title, data FROM notifications WHERE user_id = :u "
            "AND kind = 'leaderboard_prize'",
            u=user_id,
        )
    ]


async def test_a_prize_is_told_once(app, client, engine):
    admin = await make_staff(client, engine)
    put = await client.put(
        "/v1/admin/leaderboards/daily/prizes",
        json=[{"from_rank": 1, "to_rank": 1, "coins": 100}],
        headers=admin["headers"],
    )
    assert put.status_code == 200, put.text
    yesterday = today() - timedelta(days=1)
    first = await walker(client, engine, "Ada First")
    second = await walker(client, engine, "Bo Second")
    await set_days(engine, first["id"], {yesterday: 9000})
    await set_days(engine, second["id"], {yesterday: 5000})
    database = app.state.database
    await service.rebuild_if_due(database, now=utc(today(), 12, 1))
    assert await service.pay_prizes(database) == (1, 100)
    assert await service.pay_prizes(database) == (0, 0)
    [(title, data)] = await prizes_told(engine, first["id"])
    assert title == "You won a leaderboard prize"
    assert (data["period"], data["rank"], data["coins"]) == ("daily", 1, 100)
    assert data["period_start"] == yesterday.isoformat()
    assert await prizes_told(engine, second["id"]) == []

"""Leaderboards: ranks with ties, the caller's place, approved steps of active users only."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from stepcoin.leaderboards.periods import PERIODS, period_start
from tests.achievements.helpers import set_days
from tests.conftest import bearer
from tests.leaderboards.helpers import board, ranks, rebuild, walker
from tests.steps.helpers import make_admin, rec, sync, today


async def test_ranks_share_ties_and_names_are_short(app, client, engine):
    ada = await walker(client, engine, "Ada Lovelace", 5000)
    grace = await walker(client, engine, "Grace Brewster Hopper", 8000)
    alan = await walker(client, engine, "alan turing", 8000)
    await walker(client, engine, "Plato", 1000)
    await walker(client, engine, "bob@example.com", 300)
    await walker(client, engine, "Zero Steps", 0)
    await walker(client, engine, "No Days")
    stats = await rebuild(app)
    assert stats.boards == 4
    body = await board(client, ada["token"])
    tied = sorted([(grace["id"], "Grace H."), (alan["id"], "alan T.")])
    assert ranks(body) == [
        (1, tied[0][1], 8000),
        (1, tied[1][1], 8000),
        (3, "Ada L.", 5000),
        (4, "Plato", 1000),
        (5, "Walker", 300),
    ]
    assert "@" not in str(body)
    assert body["me"] == {"rank": 3, "total_steps": 5000}
    assert [(n["rank"], n["display_name"]) for n in body["neighbours"]] == [
        (1, tied[0][1]),
        (1, tied[1][1]),
        (4, "Plato"),
        (5, "Walker"),
    ]
    assert body["period"] == "daily" and body["period_start"] == today().isoformat()
    assert body["computed_at"] is not None and body["final"] is False
    nobody = await walker(client, engine, "Late Comer")
    late = await board(client, nobody["token"])
    assert late["me"] is None and late["neighbours"] == []


async def test_the_caller_outside_the_top_sees_their_rank_and_neighbours(app, client, engine):
    walkers = [await walker(client, engine, f"W{i} X", 1000 * (9 - i)) for i in range(8)]
    await rebuild(app)
    sixth = walkers[5]
    body = await board(client, sixth["token"], limit=3)
    assert [e["rank"] for e in body["entries"]] == [1, 2, 3]
    assert body["me"] == {"rank": 6, "total_steps": 4000}
    assert [(n["rank"], n["user_id"]) for n in body["neighbours"]] == [
        (4, walkers[3]["id"]),
        (5, walkers[4]["id"]),
        (7, walkers[6]["id"]),
        (8, walkers[7]["id"]),
    ]
    last = await board(client, walkers[7]["token"], limit=1)
    assert last["me"]["rank"] == 8
    assert [n["rank"] for n in last["neighbours"]] == [6, 7]
    first = await board(client, walkers[0]["token"], limit=100)
    assert len(first["entries"]) == 8
    assert [n["rank"] for n in first["neighbours"]] == [2, 3]


async def test_each_period_counts_its_own_days(app, client, engine):
    me = await walker(client, engine, "Period Walker")
    offsets = {0: 1000, 1: 2000, 6: 4000, 8: 8000, 40: 16000, 400: 32000}
    days = {today() - timedelta(days=k): v for k, v in offsets.items()}
    await set_days(engine, me["id"], days)
    await rebuild(app)
    for period in PERIODS:
        start = period_start(period, today())
        expected = sum(v for d, v in days.items() if period_start(period, d) == start)
        body = await board(client, me["token"], period)
        assert body["me"] == {"rank": 1, "total_steps": expected}, period
        assert body["period_start"] == start.isoformat()
    assert (await board(client, me["token"], "all_time"))["me"]["total_steps"] == 63000


async def test_a_flagged_or_rejected_day_counts_only_once_approved(app, client, engine):
    honest = await walker(client, engine, "Honest Walker")
    typed = await walker(client, engine, "Typed Walker")
    cheat = await walker(client, engine, "Cheat Walker")
    assert (await sync(client, honest["token"], rec(0, 4000)))[0]["status"] == "approved"
    assert (await sync(client, typed["token"], rec(0, 9000, manual=True)))[0]["status"] == (
        "flagged"
    )
    assert (await sync(client, cheat["token"], rec(0, 150000)))[0]["status"] == "rejected"
    await rebuild(app)
    body = await board(client, typed["token"])
    assert ranks(body) == [(1, "Honest W.", 4000)]
    assert body["me"] is None
    admin = await make_admin(client, engine)
    queue = await client.get("/v1/admin/validations", headers=bearer(admin))
    [item] = queue.json()["items"]
    approved = await client.post(
        f"/v1/admin/validations/{item['id']}/approve", headers=bearer(admin)
    )
    assert approved.status_code == 200
    assert ranks(await board(client, typed["token"])) == [(1, "Honest W.", 4000)]  # not yet
    await rebuild(app)
    body = await board(client, typed["token"])
    assert ranks(body) == [(1, "Typed W.", 9000), (2, "Honest W.", 4000)]
    assert (await board(client, cheat["token"]))["me"] is None


async def test_a_deactivated_walker_leaves_at_the_next_rebuild(app, client, engine):
    stays = await walker(client, engine, "Stays Here", 3000)
    leaves = await walker(client, engine, "Leaves Soon", 9000)
    await rebuild(app)
    admin = await make_admin(client, engine)
    response = await client.patch(
        f"/v1/admin/users/{leaves['id']}", json={"is_active": False}, headers=bearer(admin)
    )
    assert response.status_code == 200
    assert [e["display_name"] for e in (await board(client, stays["token"]))["entries"]] == [
        "Leaves S.",
        "Stays H.",
    ]
    stats = await rebuild(app)
    assert stats.deleted == 4  # off all four boards
    body = await board(client, stays["token"])
    assert ranks(body) == [(1, "Stays H.", 3000)]
    assert body["me"] == {"rank": 1, "total_steps": 3000}
    await board(client, leaves["token"], status=401)


async def test_a_rebuild_writes_only_what_changed(app, client, engine):
    a = await walker(client, engine, "A A", 3000)
    await walker(client, engine, "B B", 2000)
    first = await rebuild(app)
    assert (first.inserted, first.updated, first.deleted, first.entries) == (8, 0, 0, 8)
    again = await rebuild(app)
    assert (again.inserted, again.updated, again.deleted) == (0, 0, 0)
    await set_days(engine, a["id"], {today(): 1000})
    moved = await rebuild(app)
    # only A's row on each board: ranks are not stored, so B, passed by A, is not rewritten
    assert (moved.inserted, moved.updated, moved.deleted) == (0, 4, 0)
    async with engine.connect() as conn:
        builds = (
            await conn.execute(text("SELECT period, entries, is_final FROM leaderboard_builds"))
        ).all()
    assert sorted(builds) == sorted((p, 2, False) for p in PERIODS)

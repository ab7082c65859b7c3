"""Issue 17 item 3: the friend board (GET /v1/leaderboards/{period}?scope=friends) and a
group's board (GET /v1/groups/{id}/leaderboards/{period}): the global board's shape, ranked
over the walker and their friends, or over the group's members."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from tests.achievements.helpers import set_days
from tests.conftest import bearer
from tests.leaderboards.helpers import rebuild, walker
from tests.social.helpers import befriend
from tests.steps.helpers import today


def social(account):
    return {**account, "headers": bearer(account["token"])}


async def friend_board(client, account, period="daily", status=200, **params):
    response = await client.get(
        f"/v1/leaderboards/{period}",
        params={"scope": "friends", **params},
        headers=account["headers"],
    )
    assert response.status_code == status, response.text
    return response.json()


async def group_board(client, account, gid, period="daily", status=200, **params):
    response = await client.get(
        f"/v1/groups/{gid}/leaderboards/{period}", params=params, headers=account["headers"]
    )
    assert response.status_code == status, response.text
    return response.json()


def table(body):
    return [(e["rank"], e["display_name"], e["total_steps"]) for e in body["entries"]]


async def test_friend_board_ranks_me_and_my_friends_only(client, engine, app):
    me = social(await walker(client, engine, "Me Walker", 5000))
    ada = social(await walker(client, engine, "Ada Lovelace", 9000))
    bob = social(await walker(client, engine, "Bob Stone", 5000))
    stranger = social(await walker(client, engine, "Zed Top", 50_000))
    idle = social(await walker(client, engine, "Idle Friend"))
    for friend in (ada, bob, idle):
        await befriend(client, me, friend)
    await rebuild(app)

    body = await friend_board(client, me)
    assert set(body) == {
        "period",
        "period_start",
        "computed_at",
        "final",
        "entries",
        "me",
        "neighbours",
    }
    assert table(body) == [(1, "Ada L.", 9000), (2, "Me W.", 5000), (2, "Bob S.", 5000)] or table(
        body
    ) == [(1, "Ada L.", 9000), (2, "Bob S.", 5000), (2, "Me W.", 5000)]
    assert body["me"] == {"rank": 2, "total_steps": 5000}
    assert {n["display_name"] for n in body["neighbours"]} == {"Ada L.", "Bob S."}
    assert body["period_start"] == today().isoformat() and body["computed_at"] is not None

    # the stranger tops the global board, not mine; a friend's board is their own set
    glob = await client.get("/v1/leaderboards/daily", headers=me["headers"])
    assert glob.json()["entries"][0]["display_name"] == "Zed T."
    assert table(await friend_board(client, stranger)) == [(1, "Zed T.", 50_000)]
    assert (await friend_board(client, idle))["me"] is None  # friends, but no steps
    # idle's set is idle and me only
    assert table(await friend_board(client, idle)) == [(1, "Me W.", 5000)]
    assert table(await friend_board(client, me, limit=1)) == [(1, "Ada L.", 9000)]

    # periods work as on the global board
    await set_days(engine, me["id"], {today() - timedelta(days=400): 100_000})
    await rebuild(app)
    all_time = await friend_board(client, me, "all_time")
    assert all_time["entries"][0]["display_name"] == "Me W."
    assert all_time["me"] == {"rank": 1, "total_steps": 105_000}
    bad = await friend_board(client, me, "weekly", 422, period_start="2026-11-25")
    assert bad["code"] == "invalid_period_start"
    await friend_board(client, me, "daily", 422, scope="everyone")


async def test_group_board_ranks_members_and_needs_membership(client, engine, app):
    owner = social(await walker(client, engine, "Olga Owner", 3000))
    fast = social(await walker(client, engine, "Fay Fast", 12_000))
    slow = social(await walker(client, engine, "Sam Slow", 1000))
    outsider = social(await walker(client, engine, "Otto Out", 99_000))
    made = await client.post(
        "/v1/groups", json={"name": "Team", "kind": "team", "open": False}, headers=owner["headers"]
    )
    gid = made.json()["id"]
    for account in (fast, slow):
        await client.post(f"/v1/groups/{gid}/join", headers=account["headers"])
        approved = await client.post(
            f"/v1/groups/{gid}/members/{account['id']}/approve", headers=owner["headers"]
        )
        assert approved.status_code == 200, approved.text
    await rebuild(app)

    body = await group_board(client, slow, gid)
    assert table(body) == [(1, "Fay F.", 12_000), (2, "Olga O.", 3000), (3, "Sam S.", 1000)]
    assert body["me"] == {"rank": 3, "total_steps": 1000}
    assert [n["display_name"] for n in body["neighbours"]] == ["Fay F.", "Olga O."]
    assert table(await group_board(client, owner, gid, limit=1)) == [(1, "Fay F.", 12_000)]

    denied = await group_board(client, outsider, gid, status=403)
    assert denied["code"] == "not_group_member"
    assert (await group_board(client, owner, 999_999, status=404))["code"] == "group_not_found"
    # a kicked member is off the board at once
    kicked = await client.post(
        f"/v1/groups/{gid}/members/{fast['id']}/kick", headers=owner["headers"]
    )
    assert kicked.status_code == 204
    assert table(await group_board(client, owner, gid))[0] == (1, "Olga O.", 3000)
    # an open group's board is for everyone to see (not a company's)
    opened = await client.patch(f"/v1/groups/{gid}", json={"open": True}, headers=owner["headers"])
    assert opened.status_code == 200
    seen = await group_board(client, outsider, gid)
    assert seen["me"] is None and len(seen["entries"]) == 2


async def test_anonymous_is_401(client):
    assert (await client.get("/v1/groups/1/leaderboards/daily")).status_code == 401
    response = await client.get("/v1/leaderboards/daily", params={"scope": "friends"})
    assert response.status_code == 401


async def test_group_board_follows_refreshes_joins_and_leaves_with_exact_ranks(client, engine, app):
    """The group's copy of its members' rows equals leaderboard_cache x group_members after a
    build, a live refresh, joins, leaves and a ban; every member's rank and neighbours equal
    a count over the members' totals (ties share a rank: 1, 1, 3)."""
    from stepcoin.leaderboards import service as boards

    totals = [7000, 7000, 7000, 5000, 5000, 3000, 2000, 2000, 1000, 800]
    owner = social(await walker(client, engine, "Own Er", 6000))
    members = [
        social(await walker(client, engine, f"M{i} Walker", steps))
        for i, steps in enumerate(totals)
    ]
    outsider = social(await walker(client, engine, "Out Sider", 4000))
    gid = (
        await client.post(
            "/v1/groups", json={"name": "Ties", "kind": "club"}, headers=owner["headers"]
        )
    ).json()["id"]
    for account in members[:6]:  # half join before the first build, half after
        await client.post(f"/v1/groups/{gid}/join", headers=account["headers"])
    await rebuild(app)
    for account in members[6:]:
        await client.post(f"/v1/groups/{gid}/join", headers=account["headers"])
    # a live change: a member's day moves and the refresh carries it
    await set_days(engine, members[9]["id"], {today(): 6500})
    await boards.refresh_live(app.state.database)
    await client.post(f"/v1/groups/{gid}/leave", headers=members[8]["headers"])
    ban = await client.post(
        f"/v1/groups/{gid}/members/{members[7]['id']}/ban", headers=owner["headers"]
    )
    assert ban.status_code == 204

    async def same_copy() -> None:
        async with engine.connect() as conn:
            copy = sorted(
                tuple(r)
                for r in await conn.execute(
                    text(
                        "SELECT period, period_start, user_id, total_steps "
                        "FROM leaderboard_group_entries WHERE group_id = :g"
                    ),
                    {"g": gid},
                )
            )
            expected = sorted(
                tuple(r)
                for r in await conn.execute(
                    text(
                        "SELECT c.period, c.period_start, c.user_id, c.total_steps "
                        "FROM leaderboard_cache c JOIN group_members m "
                        "ON m.user_id = c.user_id AND m.group_id = :g"
                    ),
                    {"g": gid},
                )
            )
        assert copy == expected and len(copy) > 0

    async def check() -> None:
        await same_copy()
        in_group = [owner, *members[:7], members[9]]
        board = {a["id"]: (await group_board(client, a, gid))["me"] for a in in_group}
        steps = {
            owner["id"]: 6000,
            **{m["id"]: t for m, t in zip(members[:7], totals[:7], strict=True)},
            members[9]["id"]: 6500,
        }
        for who, me in board.items():
            assert me == {
                "rank": 1 + sum(1 for t in steps.values() if t > steps[who]),
                "total_steps": steps[who],
            }
        first = await group_board(client, members[6], gid)
        assert [(e["rank"], e["total_steps"]) for e in first["entries"]] == sorted(
            ((1 + sum(1 for o in steps.values() if o > t), t) for t in steps.values()),
            key=lambda x: (x[0], -x[1]),
        )
        # the neighbours of the last walker: two above, ranked like everyone else
        assert [(n["rank"], n["total_steps"]) for n in first["neighbours"]] == [
            (6, 5000),
            (8, 3000),
        ]

    await check()
    assert (await group_board(client, outsider, gid, status=200))["me"] is None
    # a full rebuild after a change leaves the copy equal too
    await set_days(engine, members[5]["id"], {today(): 7000})
    await rebuild(app)
    await boards.refresh_live(app.state.database)
    async with engine.connect() as conn:
        row = await conn.execute(
            text(
                "SELECT total_steps FROM leaderboard_group_entries WHERE group_id = :g "
                "AND user_id = :u AND period = 'daily'"
            ),
            {"g": gid, "u": members[5]["id"]},
        )
        assert row.scalar_one() == 7000
    await same_copy()
    # a member whose day drops to nothing leaves the board, and the group's copy with it
    await set_days(engine, members[4]["id"], {today(): 0})
    await boards.refresh_live(app.state.database)
    await same_copy()
    async with engine.connect() as conn:
        gone = await conn.execute(
            text(
                "SELECT count(*) FROM leaderboard_group_entries WHERE user_id = :u "
                "AND period = 'daily'"
            ),
            {"u": members[4]["id"]},
        )
        assert gone.scalar_one() == 0

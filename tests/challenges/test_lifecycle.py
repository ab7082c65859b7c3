"""Each challenge kind through its whole lifecycle over real HTTP: scheduled, active, grace
(a late sync counts), settled with the pool paid once; manual steps never count, a rejected
day falls out, the daily cap holds, nothing changes after settlement."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from tests.admin.helpers import ledger_report
from tests.challenges.helpers import (
    act,
    balance,
    befriend,
    board,
    create,
    escrow,
    get,
    later,
    ledger_rows,
    make_staff,
    rich_walker,
    shift,
    spec,
    tick,
    totals,
    winners,
)
from tests.conftest import bearer
from tests.steps.helpers import make_admin, rec, sync


async def test_total_steps_with_friends_late_sync_cap_manual_and_a_rejected_day(
    app, client, engine
):
    admin = await make_staff(client, engine)
    ann = await rich_walker(client, admin, name="Ann Walker")
    bob = await rich_walker(client, admin, name="Bob Walker")
    cy = await rich_walker(client, admin, name="Cy Walker")
    people = {"ann": ann, "bob": bob, "cy": cy}
    await befriend(client, ann, bob)
    await befriend(client, ann, cy)
    created = await create(
        client,
        ann,
        spec("total_steps", entry_fee_coins=100, daily_cap=7000, invitees=[bob["id"], cy["id"]]),
    )
    cid = created["id"]
    assert created["status"] == "scheduled" and created["me"]["status"] == "joined"
    assert created["participants"] == 1 and created["escrow_coins"] == 100
    await act(client, bob, cid, "join")
    await act(client, cy, cid, "join")
    assert await balance(client, bob) == 900
    assert await escrow(engine, cid) == 300

    await tick(app)  # nothing has started yet
    assert (await get(client, ann, cid))["status"] == "scheduled"

    await shift(engine, cid, 4)  # the days were today-3 .. today-1: now is in the grace period
    await sync(client, ann["access_token"], rec(3, 5000), rec(2, 6000))
    await sync(client, bob["access_token"], rec(3, 8000), rec(2, 2000))
    typed = await sync(client, cy["access_token"], rec(2, 3000), rec(1, 9000, manual=True))
    assert typed[1]["status"] == "flagged"
    left = await client.post(f"/v1/challenges/{cid}/leave", headers=cy["headers"])
    assert left.status_code == 409 and left.json()["code"] == "challenge_started"
    result = await tick(app)
    assert result["started"] == 1
    view = await get(client, ann, cid)
    assert view["status"] == "grace" and view["joinable"] is False
    body = await board(client, ann, cid)
    # bob's 8,000 day counts 7,000 (the cap); cy's typed-in day does not count
    assert totals(body, people) == {"ann": 11000, "bob": 9000, "cy": 3000}
    assert winners(body, people) == {"ann"}

    # the manual day approved by a reviewer still does not count
    reviewer = await make_admin(client, engine)
    queue = await client.get("/v1/admin/validations", headers=bearer(reviewer))
    [item] = [i for i in queue.json()["items"] if i["user"]["id"] == cy["id"]]
    approved = await client.post(
        f"/v1/admin/validations/{item['id']}/approve", headers=bearer(reviewer)
    )
    assert approved.status_code == 200, approved.text
    # a late sync during grace counts
    await sync(client, bob["access_token"], rec(1, 4000))
    await tick(app)
    body = await board(client, bob, cid)
    assert totals(body, people) == {"ann": 11000, "bob": 13000, "cy": 3000}
    assert winners(body, people) == {"bob"}
    # bob's re-sync of his best day is rejected (over the hard maximum): that day falls out
    rejected = await sync(client, bob["access_token"], rec(3, 150000))
    assert rejected[0]["status"] == "rejected"
    await tick(app)
    body = await board(client, bob, cid)
    assert totals(body, people) == {"ann": 11000, "bob": 6000, "cy": 3000}

    # after the grace period: settled, the pool (300) to ann, once
    before = await balance(client, ann)
    result = await tick(app, later(30))
    assert result["settled"] == 1
    view = await get(client, ann, cid)
    assert view["status"] == "settled" and view["outcome"] == "winners"
    assert view["pool_coins"] == 300 and view["escrow_coins"] == 0
    assert view["me"]["winner"] is True and view["me"]["payout_coins"] == 300
    assert await balance(client, ann) == before + 300
    rows = await ledger_rows(engine, cid)
    assert sorted(t for _, t, _ in rows) == ["challenge_entry"] * 3 + ["challenge_prize"]
    assert sum(a for _, _, a in rows) == 0  # no coin made or lost
    # settled is final: a later change and another tick move nothing
    await sync(client, bob["access_token"], rec(2, 6500))
    assert (await tick(app, later(31)))["walkers_paid"] == 0
    assert totals(await board(client, bob, cid), people)["bob"] == 6000
    assert len(await ledger_rows(engine, cid)) == 4
    assert (await ledger_report(engine)).ok


async def test_goal_days_for_everyone_with_a_house_prize_and_its_remainder(app, client, engine):
    admin = await make_staff(client, engine)
    w = {n: await rich_walker(client, admin, name=f"{n.title()} Walker") for n in ("a", "b", "c")}
    created = await create(
        client,
        admin,
        spec(
            "goal_days",
            params={"target_steps": 5000, "goal_days": 2},
            entry_fee_coins=50,
            house_prize_coins=1001,
        ),
    )
    cid = created["id"]
    assert created["audience"] == "everyone" and created["participants"] == 0
    denied = await client.post(f"/v1/challenges/{cid}/join", headers=admin["headers"])
    assert denied.status_code == 403 and denied.json()["code"] == "own_challenge"
    other_staff = await make_staff(client, engine, role="support")
    denied = await client.post(f"/v1/challenges/{cid}/join", headers=other_staff["headers"])
    assert denied.status_code == 403 and denied.json()["code"] == "staff_excluded"
    for account in w.values():
        await act(client, account, cid, "join")
    await shift(engine, cid, 4)
    await sync(client, w["a"]["access_token"], rec(3, 6000), rec(2, 7000))
    await sync(client, w["b"]["access_token"], rec(3, 5000))
    await sync(client, w["c"]["access_token"], rec(3, 9000), rec(2, 4999))
    await tick(app)
    assert winners(await board(client, w["a"], cid), w) == {"a"}
    late_joiner = await rich_walker(client, admin, name="Late Walker")
    # goal_days takes joins after the start (until the end)
    assert (await get(client, late_joiner, cid))["joinable"] is False  # the end has passed
    await sync(client, w["b"]["access_token"], rec(1, 5500))  # late, in grace: b reaches 2 days
    await tick(app)
    body = await board(client, w["b"], cid)
    assert winners(body, w) == {"a", "b"}
    assert [e["good_days"] for e in body["entries"]][:2] == [2, 2]
    await tick(app, later(30))
    paid = {
        name: (await get(client, account, cid))["me"]["payout_coins"] for name, account in w.items()
    }
    # pool 150 -> 75 + 75; house 1001 -> 501 to the first in rank order (a: more steps), 500
    assert paid == {"a": 75 + 501, "b": 75 + 500, "c": 0}
    rows = await ledger_rows(engine, cid)
    assert sorted((t, a) for _, t, a in rows if a > 0) == [
        ("challenge_prize", 75),
        ("challenge_prize", 75),
        ("prize_reward", 500),
        ("prize_reward", 501),
    ]
    async with engine.connect() as conn:
        logged = (
            await conn.execute(
                text("SELECT count(*) FROM admin_logs WHERE action = 'challenge.create'")
            )
        ).scalar_one()
    assert logged == 1
    assert (await ledger_report(engine)).ok


async def test_race_first_to_the_total_and_a_late_sync_ties_it(app, client, engine):
    admin = await make_staff(client, engine)
    a = await rich_walker(client, admin, name="Ada Walker")
    b = await rich_walker(client, admin, name="Ben Walker")
    people = {"a": a, "b": b}
    await befriend(client, a, b)
    cid = (
        await create(
            client,
            a,
            spec("race", params={"target_total": 10000}, entry_fee_coins=11, invitees=[b["id"]]),
        )
    )["id"]
    await act(client, b, cid, "join")
    await shift(engine, cid, 4)
    await sync(client, a["access_token"], rec(3, 6000), rec(2, 4000))  # reaches on day 2
    await sync(client, b["access_token"], rec(2, 7000), rec(1, 9000))  # reaches on day 3
    await tick(app)
    body = await board(client, a, cid)
    assert winners(body, people) == {"a"}
    assert [e["reached_on"] for e in body["entries"]] == [
        rec(2, 0)["date"],
        rec(1, 0)["date"],
    ]
    await sync(client, b["access_token"], rec(3, 3000))  # late: b reaches on day 2 as well
    await tick(app)
    assert winners(await board(client, a, cid), people) == {"a", "b"}
    await tick(app, later(30))
    # the pool of 22 shared: 11 each
    assert (await get(client, a, cid))["me"]["payout_coins"] == 11
    assert (await get(client, b, cid))["me"]["payout_coins"] == 11
    assert (await ledger_report(engine)).ok


async def test_group_goal_everyone_who_walked_shares(app, client, engine):
    admin = await make_staff(client, engine)
    w = {n: await rich_walker(client, admin, name=f"{n.title()} Walker") for n in "abcd"}
    for other in "bcd":
        await befriend(client, w["a"], w[other])
    cid = (
        await create(
            client,
            w["a"],
            spec(
                "group_goal",
                params={"target_total": 20000},
                entry_fee_coins=25,
                invitees=[w[o]["id"] for o in "bcd"],
            ),
        )
    )["id"]
    for other in "bcd":
        await act(client, w[other], cid, "join")
    await shift(engine, cid, 4)
    await sync(client, w["a"]["access_token"], rec(3, 8000))
    await sync(client, w["b"]["access_token"], rec(3, 7000))
    await tick(app)
    body = await board(client, w["a"], cid)
    assert body["goal_reached"] is False and body["total_steps"] == 15000
    assert winners(body, w) == set()
    await sync(client, w["c"]["access_token"], rec(1, 6000))  # late: the group reaches 21,000
    await tick(app)
    body = await board(client, w["a"], cid)
    assert body["goal_reached"] is True and winners(body, w) == {"a", "b", "c"}
    await tick(app, later(30))
    # the pool of 100 over three walkers: 34, 33, 33 (the remainder to the first in rank)
    paid = {n: (await get(client, acc, cid))["me"]["payout_coins"] for n, acc in w.items()}
    assert paid == {"a": 34, "b": 33, "c": 33, "d": 0}
    assert sum(paid.values()) == 100
    assert (await ledger_report(engine)).ok


async def test_team_average_splits_teams_at_the_start_and_the_best_average_wins(
    app, client, engine
):
    admin = await make_staff(client, engine)
    w = {n: await rich_walker(client, admin, name=f"{n.title()} Walker") for n in "abcd"}
    for other in "bcd":
        await befriend(client, w["a"], w[other])
    cid = (
        await create(
            client,
            w["a"],
            spec(
                "team_average",
                params={"teams": 2},
                entry_fee_coins=10,
                invitees=[w[o]["id"] for o in "bcd"],
            ),
        )
    )["id"]
    for other in "bcd":
        await act(client, w[other], cid, "join")
    await shift(engine, cid, 4)
    await tick(app)
    teams = {n: (await get(client, acc, cid))["me"]["team"] for n, acc in w.items()}
    assert teams == {"a": 1, "b": 2, "c": 1, "d": 2}  # round robin in join order
    await sync(client, w["a"]["access_token"], rec(3, 9000))
    await sync(client, w["c"]["access_token"], rec(3, 1000))  # team 1: 5,000 a member
    await sync(client, w["b"]["access_token"], rec(3, 6000))
    await sync(client, w["d"]["access_token"], rec(3, 3000))  # team 2: 4,500 a member
    await tick(app)
    body = await board(client, w["a"], cid)
    assert winners(body, w) == {"a", "c"}
    assert body["teams"] == [
        {"team": 1, "average_steps": 5000.0},
        {"team": 2, "average_steps": 4500.0},
    ]
    await sync(client, w["d"]["access_token"], rec(2, 2000))  # late: team 2 reaches 5,500
    await tick(app)
    assert winners(await board(client, w["a"], cid), w) == {"b", "d"}
    await tick(app, later(30))
    paid = {n: (await get(client, acc, cid))["me"]["payout_coins"] for n, acc in w.items()}
    assert paid == {"a": 0, "b": 20, "c": 0, "d": 20}
    assert (await ledger_report(engine)).ok


async def test_too_few_participants_cancels_at_the_start_and_refunds(app, client, engine):
    admin = await make_staff(client, engine)
    a = await rich_walker(client, admin, name="Ada Walker")
    b = await walker_friend(client, admin, a)
    cid = (await create(client, a, spec("total_steps", entry_fee_coins=40, invitees=[b["id"]])))[
        "id"
    ]
    assert await balance(client, a) == 960
    await shift(engine, cid, 1)  # starts today: b never joined
    result = await tick(app)
    assert result["cancelled"] == 1
    view = await get(client, a, cid)
    assert view["status"] == "cancelled" and view["outcome"] == "cancelled"
    assert view["cancel_reason"] == "too_few_participants" and view["escrow_coins"] == 0
    assert await balance(client, a) == 1000
    assert [(t, n) for _, t, n in await ledger_rows(engine, cid)] == [
        ("challenge_entry", -40),
        ("challenge_refund", 40),
    ]
    assert (await tick(app))["walkers_paid"] == 0


async def test_nobody_walked_no_winner_every_fee_back(app, client, engine):
    admin = await make_staff(client, engine)
    a = await rich_walker(client, admin, name="Ada Walker")
    b = await walker_friend(client, admin, a)
    cid = (await create(client, a, spec("total_steps", entry_fee_coins=30, invitees=[b["id"]])))[
        "id"
    ]
    await act(client, b, cid, "join")
    await shift(engine, cid, 4)
    await tick(app, later(30))
    view = await get(client, a, cid)
    assert view["status"] == "settled" and view["outcome"] == "no_winner"
    assert await balance(client, a) == 1000 and await balance(client, b) == 1000
    assert (await ledger_report(engine)).ok


async def walker_friend(client, admin, friend):
    other = await rich_walker(client, admin, name="Friend Walker")
    await befriend(client, friend, other)
    return other


async def test_the_start_and_the_end_are_midnights_in_the_challenges_timezone(app, client, engine):
    admin = await make_staff(client, engine)
    kiri = ZoneInfo("Pacific/Kiritimati")  # UTC+14: its days begin before anyone else's
    first = datetime.now(kiri).date() + timedelta(days=1)
    cid = (
        await create(
            client,
            admin,
            spec(
                "group_goal",
                params={"target_total": 1000},
                timezone="Pacific/Kiritimati",
                starts_on=first.isoformat(),
                ends_on=first.isoformat(),
            ),
        )
    )["id"]
    a = await rich_walker(client, admin, name="Ada Walker")
    b = await rich_walker(client, admin, name="Ben Walker")
    await act(client, a, cid, "join")
    await act(client, b, cid, "join")
    start = datetime.combine(first, time(0), tzinfo=kiri)
    view = await get(client, a, cid)
    assert datetime.fromisoformat(view["starts_at"]) == start
    assert datetime.fromisoformat(view["ends_at"]) == start + timedelta(days=1)
    await tick(app, start - timedelta(minutes=1))
    assert (await get(client, a, cid))["status"] == "scheduled"
    late = await client.post(f"/v1/challenges/{cid}/join", headers=a["headers"])
    assert late.status_code == 200  # in already: the same answer
    await tick(app, start + timedelta(minutes=1))
    assert (await get(client, a, cid))["status"] == "active"
    await tick(app, start + timedelta(days=1, minutes=1))
    assert (await get(client, a, cid))["status"] == "grace"
    await tick(app, start + timedelta(days=2, minutes=-1))
    assert (await get(client, a, cid))["status"] == "grace"  # 24 grace hours
    await tick(app, start + timedelta(days=2, minutes=1))
    view = await get(client, a, cid)
    assert view["status"] == "settled" and view["outcome"] == "no_winner"


async def test_a_review_moves_the_score_approval_counts_the_new_steps_rejection_drops_the_day(
    app, client, engine
):
    admin = await make_staff(client, engine)
    a = await rich_walker(client, admin, name="Ada Walker")
    b = await rich_walker(client, admin, name="Ben Walker")
    people = {"a": a, "b": b}
    await befriend(client, a, b)
    cid = (await create(client, a, spec("total_steps", invitees=[b["id"]])))["id"]
    await act(client, b, cid, "join")
    await shift(engine, cid, 4)
    await sync(client, a["access_token"], rec(3, 5000), rec(2, 5000))
    await sync(client, b["access_token"], rec(3, 4000))
    # a brand-new account's extreme days wait for review
    held = await sync(client, a["access_token"], rec(3, 45000), rec(2, 46000))
    assert [r["status"] for r in held] == ["flagged", "flagged"]
    await tick(app)
    # while in review, each day counts what was approved before
    assert totals(await board(client, a, cid), people) == {"a": 10000, "b": 4000}
    reviewer = await make_admin(client, engine)
    queue = (await client.get("/v1/admin/validations", headers=bearer(reviewer))).json()["items"]
    by_day = {i["date"]: i["id"] for i in queue if i["user"]["id"] == a["id"]}
    approve = await client.post(
        f"/v1/admin/validations/{by_day[rec(3, 0)['date']]}/approve", headers=bearer(reviewer)
    )
    reject = await client.post(
        f"/v1/admin/validations/{by_day[rec(2, 0)['date']]}/reject", headers=bearer(reviewer)
    )
    assert (approve.status_code, reject.status_code) == (200, 200)
    await tick(app)
    # approved: 45,000 counts; rejected: the whole day falls out (not even the earlier 5,000)
    assert totals(await board(client, a, cid), people) == {"a": 45000, "b": 4000}

"""Issue 17: challenges for a group (by a member) and for a company (by an admin), over HTTP:
who may create, see and join, the worker settling them, and a group deleted midway (its
challenge keeps its participants and takes nobody new)."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from tests.admin.helpers import adjust, ledger_report
from tests.challenges.helpers import (
    act,
    balance,
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
    winners,
)
from tests.conftest import bearer, register
from tests.steps.helpers import rec, sync


async def new_group(client, owner, name="Walkers", kind="club", open_=True) -> int:
    response = await client.post(
        "/v1/groups", json={"name": name, "kind": kind, "open": open_}, headers=owner["headers"]
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def join_group(client, account, group_id: int) -> None:
    response = await client.post(f"/v1/groups/{group_id}/join", headers=account["headers"])
    assert response.status_code == 200 and response.json()["my_role"] == "member", response.text


async def listed(client, account) -> list[str]:
    response = await client.get("/v1/challenges", headers=account["headers"])
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def refused(client, account, method, path, status, code, **kwargs) -> None:
    response = await client.request(method, path, headers=account["headers"], **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code, response.text


async def test_a_members_group_challenge_hidden_from_others_joined_walked_and_settled(
    app, client, engine
):
    admin = await make_staff(client, engine)
    ann = await rich_walker(client, admin, name="Ann Walker")
    bob = await rich_walker(client, admin, name="Bob Walker")
    cy = await rich_walker(client, admin, name="Cy Walker")
    people = {"ann": ann, "bob": bob, "cy": cy}
    gid = await new_group(client, ann)
    await join_group(client, bob, gid)

    # not a member: 403; no such group: 404; a walker never makes a company challenge
    await refused(
        client, cy, "POST", "/v1/challenges", 403, "not_group_member",
        json=spec("total_steps", group_id=gid),
    )  # fmt: skip
    await refused(
        client, ann, "POST", "/v1/challenges", 404, "group_not_found",
        json=spec("total_steps", group_id=2**62),
    )  # fmt: skip
    await refused(
        client, ann, "POST", "/v1/challenges", 403, "admin_only",
        json=spec("total_steps", group_id=gid, audience="company"),
    )  # fmt: skip

    created = await create(client, ann, spec("total_steps", group_id=gid, entry_fee_coins=100))
    cid = created["id"]
    assert created["audience"] == "group" and created["group_id"] == gid
    assert created["me"]["status"] == "joined" and created["escrow_coins"] == 100

    # an outsider neither sees nor joins it (as for friends: 404), nor finds it in the list
    for what in ("join", "leave"):
        await refused(
            client, cy, "POST", f"/v1/challenges/{cid}/{what}", 404, "challenge_not_found"
        )
    await refused(client, cy, "GET", f"/v1/challenges/{cid}", 404, "challenge_not_found")
    await refused(
        client, cy, "GET", f"/v1/challenges/{cid}/leaderboard", 404, "challenge_not_found"
    )
    assert cid not in await listed(client, cy)

    # a member sees it in the list before joining, and joins
    assert cid in await listed(client, bob)
    assert (await get(client, bob, cid))["joinable"] is True
    await act(client, bob, cid, "join")
    assert await balance(client, bob) == 900

    # cy joins the group later: now cy sees it and may join
    await join_group(client, cy, gid)
    assert cid in await listed(client, cy)
    await act(client, cy, cid, "join")

    await shift(engine, cid, 4)  # the challenge's days are now the last three
    await sync(client, ann["access_token"], rec(3, 5000), rec(2, 5000))
    await sync(client, bob["access_token"], rec(3, 9000), rec(1, 4000))
    await sync(client, cy["access_token"], rec(2, 3000))
    await tick(app)
    assert (await get(client, ann, cid))["status"] == "grace"
    await tick(app, later(30))
    done = await get(client, bob, cid)
    assert done["status"] == "settled" and done["outcome"] == "winners"
    assert winners(await board(client, ann, cid), people) == {"bob"}
    assert done["me"]["payout_coins"] == 300 and done["me"]["paid"] is True
    # finished challenges of one's groups stay in the list
    assert cid in await listed(client, cy)
    rows = await ledger_rows(engine, cid)
    assert sorted(a for _, t, a in rows if t == "challenge_prize") == [300]
    assert (await ledger_report(engine)).ok


async def company_walker(client, admin, domain: str, name: str) -> dict:
    account = await register(client, email=f"{uuid.uuid4().hex[:10]}@{domain}", full_name=name)
    account["headers"] = bearer(account["access_token"])
    account["id"] = account["user"]["id"]
    response = await adjust(client, admin, account["id"], 1000)
    assert response.status_code == 201, response.text
    return account


async def test_an_admins_company_challenge_for_its_members_with_a_house_prize(app, client, engine):
    admin = await make_staff(client, engine)
    domain = f"acme-{uuid.uuid4().hex[:8]}.example"
    ada = await company_walker(client, admin, domain, "Ada Walker")
    ben = await company_walker(client, admin, domain, "Ben Walker")
    outsider = await rich_walker(client, admin, name="Out Walker")
    company = await new_group(client, ada, "Acme", kind="company")
    bound = await client.put(
        f"/v1/admin/groups/{company}/domain",
        json={"email_domain": domain},
        headers=admin["headers"],
    )
    assert bound.status_code == 200, bound.text
    await join_group(client, ben, company)
    club = await new_group(client, ada, "A club")

    # a company challenge needs a group of kind company (social's code and status)
    await refused(
        client, admin, "POST", "/v1/challenges", 409, "not_a_company_group",
        json=spec("total_steps", group_id=club),
    )  # fmt: skip
    body = spec("total_steps", group_id=company, entry_fee_coins=10, house_prize_coins=500)
    created = await create(client, admin, body)  # the admin is not a member: no matter
    cid = created["id"]
    assert created["audience"] == "company" and created["group_id"] == company
    assert created["participants"] == 0
    await refused(client, admin, "POST", f"/v1/challenges/{cid}/join", 403, "own_challenge")
    await refused(client, outsider, "GET", f"/v1/challenges/{cid}", 404, "challenge_not_found")
    await refused(
        client, outsider, "POST", f"/v1/challenges/{cid}/join", 404, "challenge_not_found"
    )
    assert cid not in await listed(client, outsider)
    await act(client, ada, cid, "join")
    await act(client, ben, cid, "join")

    await shift(engine, cid, 4)
    await sync(client, ada["access_token"], rec(3, 8000))
    await sync(client, ben["access_token"], rec(3, 6000))
    await tick(app)
    await tick(app, later(30))
    done = await get(client, ada, cid)
    assert done["status"] == "settled"
    assert done["me"]["payout_coins"] == 20 + 500
    rows = await ledger_rows(engine, cid)
    assert sorted((t, a) for _, t, a in rows if a > 0) == [
        ("challenge_prize", 20),
        ("prize_reward", 500),
    ]
    async with engine.connect() as conn:
        logged = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM admin_logs WHERE action = 'challenge.create' "
                    "AND entity_id = :c"
                ),
                {"c": cid},
            )
        ).scalar_one()
    assert logged == 1
    assert (await ledger_report(engine)).ok


async def test_a_group_deleted_midway_keeps_its_participants_and_takes_nobody_new(
    app, client, engine
):
    admin = await make_staff(client, engine)
    ann = await rich_walker(client, admin, name="Ann Walker")
    bob = await rich_walker(client, admin, name="Bob Walker")
    cy = await rich_walker(client, admin, name="Cy Walker")
    people = {"ann": ann, "bob": bob}
    gid = await new_group(client, ann)
    await join_group(client, bob, gid)
    await join_group(client, cy, gid)
    cid = (await create(client, ann, spec("group_goal", group_id=gid, entry_fee_coins=50,
                                          params={"target_total": 10_000})))["id"]  # fmt: skip
    await act(client, bob, cid, "join")
    assert cid in await listed(client, cy)

    deleted = await client.delete(f"/v1/groups/{gid}", headers=ann["headers"])
    assert deleted.status_code == 204, deleted.text

    seen = await get(client, bob, cid)
    assert seen["group_id"] is None and seen["participants"] == 2
    assert seen["audience"] == "group" and seen["me"]["status"] == "joined"
    # cy was a member, never a participant: the challenge is gone for cy
    await refused(client, cy, "GET", f"/v1/challenges/{cid}", 404, "challenge_not_found")
    await refused(client, cy, "POST", f"/v1/challenges/{cid}/join", 404, "challenge_not_found")
    assert cid not in await listed(client, cy)
    # bob leaves before the start (fee back) and cannot come back: nobody new joins
    await act(client, bob, cid, "leave")
    assert (await get(client, bob, cid))["joinable"] is False
    await refused(client, bob, "POST", f"/v1/challenges/{cid}/join", 404, "challenge_not_found")
    assert await balance(client, bob) == 1000
    # ann's challenge still runs and settles (alone: fewer than min_participants, cancelled)
    await act(client, ann, cid, "join", status=200)  # joined already: the same answer
    await shift(engine, cid, 4)
    await sync(client, ann["access_token"], rec(3, 12_000))
    await tick(app)
    await tick(app, later(30))
    done = await get(client, ann, cid)
    assert done["status"] == "cancelled" and done["escrow_coins"] == 0
    ann_rows = [(t, a) for u, t, a in await ledger_rows(engine, cid) if u == ann["id"]]
    assert ann_rows == [("challenge_entry", -50), ("challenge_refund", 50)]
    assert winners(await board(client, ann, cid), people) == set()
    assert (await ledger_report(engine)).ok


async def test_a_group_deleted_while_running_settles_for_its_participants(app, client, engine):
    admin = await make_staff(client, engine)
    ann = await rich_walker(client, admin, name="Ann Walker")
    bob = await rich_walker(client, admin, name="Bob Walker")
    people = {"ann": ann, "bob": bob}
    gid = await new_group(client, ann)
    await join_group(client, bob, gid)
    cid = (await create(client, ann, spec("total_steps", group_id=gid, entry_fee_coins=50)))["id"]
    await act(client, bob, cid, "join")
    await shift(engine, cid, 2)  # started yesterday, runs until tomorrow
    await tick(app)
    assert (await get(client, ann, cid))["status"] == "active"
    deleted = await client.delete(f"/v1/groups/{gid}", headers=ann["headers"])
    assert deleted.status_code == 204, deleted.text
    await sync(client, ann["access_token"], rec(1, 4000))
    await sync(client, bob["access_token"], rec(1, 7000))
    await shift(engine, cid, 2)
    await tick(app)
    await tick(app, later(30))
    done = await get(client, bob, cid)
    assert done["status"] == "settled" and done["group_id"] is None
    assert winners(await board(client, bob, cid), people) == {"bob"}
    assert sorted((t, a) for _, t, a in await ledger_rows(engine, cid) if a > 0) == [
        ("challenge_prize", 100)
    ]
    assert (await ledger_report(engine)).ok


async def test_joins_racing_the_groups_deletion_each_pay_once_or_not_at_all(app, client, engine):
    admin = await make_staff(client, engine)
    owner = await rich_walker(client, admin, name="Own Walker")
    members = [await rich_walker(client, admin, 100, name=f"M{i} Walker") for i in range(10)]
    gid = await new_group(client, owner)
    for m in members:
        await join_group(client, m, gid)
    cid = (await create(client, owner, spec("total_steps", group_id=gid, entry_fee_coins=33)))["id"]
    deletion, *joins = await asyncio.gather(
        client.delete(f"/v1/groups/{gid}", headers=owner["headers"]),
        *[client.post(f"/v1/challenges/{cid}/join", headers=m["headers"]) for m in members],
    )
    assert deletion.status_code == 204, deletion.text
    assert {r.status_code for r in joins} <= {200, 404}
    joined = [m for m, r in zip(members, joins, strict=True) if r.status_code == 200]
    assert all(r.json()["code"] == "challenge_not_found" for r in joins if r.status_code == 404)
    assert await escrow(engine, cid) == 33 * (1 + len(joined))
    assert (await get(client, owner, cid))["participants"] == 1 + len(joined)
    assert len(await ledger_rows(engine, cid)) == 1 + len(joined)
    for m in members:
        assert await balance(client, m) == (67 if m in joined else 100)
    assert (await ledger_report(engine)).ok

"""Issue 17 item 2: groups, their kinds, open or by request, roles, caps, kick, ban, company
domains, and what a non-member sees."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.admin.helpers import make_staff
from tests.conftest import bearer, register
from tests.social.helpers import set_setting, walker


async def make(client, owner, name="Walkers", kind="club", open_=True, **extra):
    response = await client.post(
        "/v1/groups",
        json={"name": name, "kind": kind, "open": open_, **extra},
        headers=owner["headers"],
    )
    assert response.status_code == 201, response.text
    return response.json()


async def post(client, account, path, status=204, **kwargs):
    response = await client.post(path, headers=account["headers"], **kwargs)
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def member_roles(client, account, group_id):
    response = await client.get(f"/v1/groups/{group_id}/members", headers=account["headers"])
    assert response.status_code == 200, response.text
    return {m["user_id"]: m["role"] for m in response.json()["items"]}


async def test_anonymous_and_unknown(client):
    assert (await client.post("/v1/groups", json={"name": "x", "kind": "club"})).status_code == 401
    ada = await walker(client, "Ada")
    missing = await client.get("/v1/groups/999999", headers=ada["headers"])
    assert missing.status_code == 404 and missing.json()["code"] == "group_not_found"
    bad = await client.post(
        "/v1/groups", json={"name": "x", "kind": "guild"}, headers=ada["headers"]
    )
    assert bad.status_code == 422
    blank = await client.post(
        "/v1/groups", json={"name": "   ", "kind": "club"}, headers=ada["headers"]
    )
    assert blank.status_code == 422 and blank.json()["code"] == "group_name_required"


async def test_open_group_join_leave_and_the_creator_is_owner(client):
    ada, bob = await walker(client, "Ada Lovelace"), await walker(client, "Bob")
    group = await make(client, ada, "Morning Walkers")
    assert group["my_role"] == "owner" and group["member_count"] == 1
    assert group["owner_id"] == ada["id"]

    joined = await post(client, bob, f"/v1/groups/{group['id']}/join", 200)
    assert joined["my_role"] == "member" and joined["member_count"] == 2
    again = await post(client, bob, f"/v1/groups/{group['id']}/join", 200)
    assert again["member_count"] == 2  # idempotent
    assert await member_roles(client, bob, group["id"]) == {ada["id"]: "owner", bob["id"]: "member"}
    names = await client.get(f"/v1/groups/{group['id']}/members", headers=bob["headers"])
    assert names.json()["items"][0]["display_name"] == "Ada"  # a first name, never more

    mine = await client.get("/v1/groups", headers=bob["headers"])
    assert [g["id"] for g in mine.json()["items"]] == [group["id"]]
    found = await client.get("/v1/groups", params={"q": "morning"}, headers=bob["headers"])
    assert [g["name"] for g in found.json()["items"]] == ["Morning Walkers"]

    await post(client, bob, f"/v1/groups/{group['id']}/leave")
    gone = await client.post(f"/v1/groups/{group['id']}/leave", headers=bob["headers"])
    assert gone.status_code == 403 and gone.json()["code"] == "not_group_member"
    # the owner alone leaving deletes the group
    await post(client, ada, f"/v1/groups/{group['id']}/leave")
    assert (
        await client.get(f"/v1/groups/{group['id']}", headers=ada["headers"])
    ).status_code == 404


async def test_closed_group_requests_and_summary(client):
    ada, bob, carl = [await walker(client, n) for n in ("Ada", "Bob", "Carl")]
    group = await make(client, ada, "Secret Club", open_=False, description="we walk at night")
    gid = group["id"]

    summary = (await client.get(f"/v1/groups/{gid}", headers=bob["headers"])).json()
    assert summary["description"] is None and summary["owner_id"] is None
    assert summary["member_count"] == 1 and summary["my_role"] is None
    hidden = await client.get(f"/v1/groups/{gid}/members", headers=bob["headers"])
    assert hidden.status_code == 403 and hidden.json()["code"] == "not_group_member"
    board = await client.get(f"/v1/groups/{gid}/leaderboards/daily", headers=bob["headers"])
    assert board.status_code == 403

    asked = await post(client, bob, f"/v1/groups/{gid}/join", 200)
    assert asked["requested"] is True and asked["my_role"] is None
    await post(client, carl, f"/v1/groups/{gid}/join", 200)

    # only the owner and admins see and answer requests
    denied = await client.get(f"/v1/groups/{gid}/requests", headers=bob["headers"])
    assert denied.status_code == 403 and denied.json()["code"] == "not_group_member"
    waiting = (await client.get(f"/v1/groups/{gid}/requests", headers=ada["headers"])).json()
    assert {w["user_id"] for w in waiting["items"]} == {bob["id"], carl["id"]}

    approved = await post(client, ada, f"/v1/groups/{gid}/members/{bob['id']}/approve", 200)
    assert approved["role"] == "member"
    await post(client, ada, f"/v1/groups/{gid}/members/{carl['id']}/decline")
    again = await client.post(
        f"/v1/groups/{gid}/members/{carl['id']}/approve", headers=ada["headers"]
    )
    assert again.status_code == 404 and again.json()["code"] == "join_request_not_found"
    inside = (await client.get(f"/v1/groups/{gid}", headers=bob["headers"])).json()
    assert inside["description"] == "we walk at night" and inside["my_role"] == "member"
    # a plain member approves nobody
    await post(client, carl, f"/v1/groups/{gid}/join", 200)
    plain = await client.post(
        f"/v1/groups/{gid}/members/{carl['id']}/approve", headers=bob["headers"]
    )
    assert plain.status_code == 403 and plain.json()["code"] == "group_role_required"


async def test_roles_kick_ban_and_transfer(client):
    ada, bob, carl, dan = [await walker(client, n) for n in ("Ada", "Bob", "Carl", "Dan")]
    gid = (await make(client, ada))["id"]
    for account in (bob, carl, dan):
        await post(client, account, f"/v1/groups/{gid}/join", 200)

    # only the owner names admins
    no = await client.put(
        f"/v1/groups/{gid}/members/{carl['id']}/role",
        json={"role": "admin"},
        headers=bob["headers"],
    )
    assert no.status_code == 403 and no.json()["code"] == "group_role_required"
    made = await client.put(
        f"/v1/groups/{gid}/members/{bob['id']}/role",
        json={"role": "admin"},
        headers=ada["headers"],
    )
    assert made.status_code == 200 and made.json()["role"] == "admin"

    # an admin kicks a member, never the owner or another admin
    await post(client, bob, f"/v1/groups/{gid}/members/{carl['id']}/kick")
    owner = await client.post(f"/v1/groups/{gid}/members/{ada['id']}/kick", headers=bob["headers"])
    assert owner.status_code == 403 and owner.json()["code"] == "group_role_required"
    own = await client.post(f"/v1/groups/{gid}/members/{bob['id']}/kick", headers=bob["headers"])
    assert own.status_code == 422 and own.json()["code"] == "own_membership"
    # a kicked walker may come back; a banned one may not, nor ask
    await post(client, carl, f"/v1/groups/{gid}/join", 200)
    await post(client, bob, f"/v1/groups/{gid}/members/{carl['id']}/ban")
    banned = await client.post(f"/v1/groups/{gid}/join", headers=carl["headers"])
    assert banned.status_code == 403 and banned.json()["code"] == "group_banned"
    bans = (await client.get(f"/v1/groups/{gid}/bans", headers=ada["headers"])).json()
    assert [b["user_id"] for b in bans["items"]] == [carl["id"]]
    response = await client.delete(f"/v1/groups/{gid}/bans/{carl['id']}", headers=ada["headers"])
    assert response.status_code == 204
    await post(client, carl, f"/v1/groups/{gid}/join", 200)

    # the owner cannot leave with others in; hands over and stays as an admin
    stuck = await client.post(f"/v1/groups/{gid}/leave", headers=ada["headers"])
    assert stuck.status_code == 409 and stuck.json()["code"] == "owner_must_transfer"
    not_member = await client.post(
        f"/v1/groups/{gid}/transfer", json={"user_id": ada["id"]}, headers=bob["headers"]
    )
    assert not_member.status_code == 403
    outsider = await client.post(
        f"/v1/groups/{gid}/transfer", json={"user_id": str(uuid.uuid4())}, headers=ada["headers"]
    )
    assert outsider.status_code == 409, outsider.text
    assert outsider.json()["code"] == "transfer_target_not_member"
    handed = await client.post(
        f"/v1/groups/{gid}/transfer", json={"user_id": dan["id"]}, headers=ada["headers"]
    )
    assert handed.status_code == 200, handed.text
    assert handed.json()["owner_id"] == dan["id"] and handed.json()["my_role"] == "admin"
    roles = await member_roles(client, dan, gid)
    assert roles[dan["id"]] == "owner" and roles[ada["id"]] == "admin"
    await post(client, ada, f"/v1/groups/{gid}/leave")

    # PATCH by owner/admins; DELETE by the owner only
    before = (await client.get(f"/v1/groups/{gid}", headers=bob["headers"])).json()
    unchanged = await client.patch(
        f"/v1/groups/{gid}", json={"name": None, "open": None}, headers=bob["headers"]
    )  # null: unchanged
    assert unchanged.status_code == 200, unchanged.text
    assert (unchanged.json()["name"], unchanged.json()["open"]) == (before["name"], before["open"])
    renamed = await client.patch(
        f"/v1/groups/{gid}", json={"name": "Evening", "open": False}, headers=bob["headers"]
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Evening"
    assert renamed.json()["open"] is False
    admin_delete = await client.delete(f"/v1/groups/{gid}", headers=bob["headers"])
    assert admin_delete.status_code == 403
    assert (await client.delete(f"/v1/groups/{gid}", headers=dan["headers"])).status_code == 204


async def test_caps(client, engine):
    ada, bob, carl = [await walker(client, n) for n in ("Ada", "Bob", "Carl")]
    await set_setting(engine, "groups.max_members", 2)
    gid = (await make(client, ada))["id"]
    await post(client, bob, f"/v1/groups/{gid}/join", 200)
    full = await client.post(f"/v1/groups/{gid}/join", headers=carl["headers"])
    assert full.status_code == 409 and full.json()["code"] == "group_full"

    await set_setting(engine, "groups.max_owned", 1)
    more = await client.post(
        "/v1/groups", json={"name": "Two", "kind": "team"}, headers=ada["headers"]
    )
    assert more.status_code == 409 and more.json()["code"] == "owned_group_limit_reached"

    await set_setting(engine, "groups.max_memberships", 1)
    other = await make(client, carl, "Carl's")
    many = await client.post(f"/v1/groups/{other['id']}/join", headers=bob["headers"])
    assert many.status_code == 409 and many.json()["code"] == "group_limit_reached"


async def test_concurrent_joins_respect_the_member_cap(client, engine):
    import asyncio

    ada = await walker(client, "Ada")
    others = [await walker(client, f"W{i}") for i in range(6)]
    await set_setting(engine, "groups.max_members", 4)
    gid = (await make(client, ada))["id"]
    answers = await asyncio.gather(
        *(client.post(f"/v1/groups/{gid}/join", headers=o["headers"]) for o in others)
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 409, 409, 409]
    async with engine.connect() as conn:
        count = await conn.execute(
            text("SELECT count(*) FROM group_members WHERE group_id = :g"), {"g": gid}
        )
        assert count.scalar_one() == 4


async def test_company_group_needs_a_bound_domain_and_a_verified_email(client, engine):
    admin_headers = (await make_staff(client, engine, "admin"))["headers"]
    ada = await walker(client, "Ada")
    group = await make(client, ada, "Acme", kind="company")
    gid = group["id"]
    acme = await register(client, email="walker-x@acme.example", full_name="Ann")
    acme["headers"] = bearer(acme["access_token"])
    unbound = await client.post(f"/v1/groups/{gid}/join", headers=acme["headers"])
    assert unbound.status_code == 409 and unbound.json()["code"] == "company_domain_not_set"
    # an open company group shows no inside to outsiders
    outsider = await client.get(f"/v1/groups/{gid}/members", headers=acme["headers"])
    assert outsider.status_code == 403

    # only admins bind; a walker cannot
    walker_try = await client.put(
        f"/v1/admin/groups/{gid}/domain",
        json={"email_domain": "acme.example"},
        headers=ada["headers"],
    )
    assert walker_try.status_code == 403
    bad = await client.put(
        f"/v1/admin/groups/{gid}/domain",
        json={"email_domain": "not a domain"},
        headers=admin_headers,
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_email_domain"
    bound = await client.put(
        f"/v1/admin/groups/{gid}/domain",
        json={"email_domain": "@ACME.example"},
        headers=admin_headers,
    )
    assert bound.status_code == 200 and bound.json()["email_domain"] == "acme.example"
    async with engine.connect() as conn:
        actions = await conn.execute(
            text("SELECT action, entity_id FROM admin_logs WHERE entity_type = 'group'")
        )
        assert [tuple(r) for r in actions] == [("group.domain_bound", str(gid))]

    joined = await client.post(f"/v1/groups/{gid}/join", headers=acme["headers"])
    assert joined.status_code == 200 and joined.json()["my_role"] == "member"
    other = await walker(client, "Olga")
    wrong = await client.post(f"/v1/groups/{gid}/join", headers=other["headers"])
    assert wrong.status_code == 403 and wrong.json()["code"] == "company_email_required"
    unverified = await register(client, email="new@acme.example", verified=False)
    late = await client.post(f"/v1/groups/{gid}/join", headers=bearer(unverified["access_token"]))
    assert late.status_code == 403 and late.json()["code"] == "company_email_required"

    club = await make(client, ada, "Not a company")
    not_company = await client.put(
        f"/v1/admin/groups/{club['id']}/domain",
        json={"email_domain": "acme.example"},
        headers=admin_headers,
    )
    assert not_company.status_code == 409 and not_company.json()["code"] == "not_a_company_group"


async def test_member_query_functions_for_other_domains(client, app):
    from stepcoin.db import session_scope
    from stepcoin.social import groups, service

    ada, bob = await walker(client, "Ada"), await walker(client, "Bob")
    gid = (await make(client, ada))["id"]
    async with session_scope(app.state.database) as session:
        assert await groups.member_role(session, gid, ada["id"]) == "owner"
        assert await groups.is_member(session, gid, ada["id"])
        assert not await groups.is_member(session, gid, bob["id"])
        assert not await service.are_friends(session, ada["id"], bob["id"])


async def test_a_patch_with_null_name_or_open_changes_neither(client):
    ada = await walker(client, "Ada")
    gid = (await make(client, ada, "Morning"))["id"]
    response = await client.patch(
        f"/v1/groups/{gid}",
        json={"name": None, "open": None, "description": "early"},
        headers=ada["headers"],
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Morning" and response.json()["open"] is True
    assert response.json()["description"] == "early"

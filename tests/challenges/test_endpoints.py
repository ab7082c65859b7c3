"""The routes: anonymous 401, forbidden 403, not found 404, invalid 422 with codes, drafts,
the lists, the templates."""

from __future__ import annotations

import pytest

from tests.challenges.helpers import (
    act,
    befriend,
    create,
    get,
    in_days,
    make_staff,
    rich_walker,
    spec,
    walker,
)
from tests.steps.helpers import today

ANY = "3ea8e6d0-9d28-4e04-b711-808ea1b7451b"  # fixed: xdist workers collect the same ids


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/challenges/templates"),
        ("GET", "/v1/challenges"),
        ("POST", "/v1/challenges"),
        ("GET", f"/v1/challenges/{ANY}"),
        ("POST", f"/v1/challenges/{ANY}/join"),
        ("POST", f"/v1/challenges/{ANY}/leave"),
        ("POST", f"/v1/challenges/{ANY}/publish"),
        ("POST", f"/v1/challenges/{ANY}/cancel"),
        ("GET", f"/v1/challenges/{ANY}/leaderboard"),
        ("GET", "/v1/admin/challenges"),
        ("GET", f"/v1/admin/challenges/{ANY}"),
        ("POST", f"/v1/admin/challenges/{ANY}/cancel"),
    ],
)
async def test_anonymous_is_401(client, method, path):
    response = await client.request(method, path)
    assert response.status_code == 401


async def test_templates_name_their_parameters(client, engine):
    me = await walker(client)
    response = await client.get("/v1/challenges/templates", headers=me["headers"])
    assert response.status_code == 200
    items = {t["code"]: t for t in response.json()["items"]}
    assert set(items) == {"total_steps", "goal_days", "race", "group_goal", "team_average"}
    assert [p["name"] for p in items["goal_days"]["params"]] == ["target_steps", "goal_days"]
    assert items["group_goal"]["late_join"] is True and items["race"]["late_join"] is False


async def test_invalid_challenges_are_422_with_a_code(client, engine):
    admin = await make_staff(client, engine)
    me = await rich_walker(client, admin, name="Ada Walker")
    friend = await walker(client, "Ben Walker")
    stranger = await walker(client, "Cy Walker")
    await befriend(client, me, friend)
    invite = {"invitees": [friend["id"]]}
    cases = [
        (spec("race", **invite), "invalid_params"),
        (spec("race", params={"target_total": 10}, **invite), "invalid_params"),
        (spec("total_steps", params={"teams": 2}, **invite), "invalid_params"),
        (spec("total_steps", timezone="Mars/Olympus", **invite), "invalid_timezone"),
        (spec("total_steps", timezone="America", **invite), "invalid_timezone"),  # a folder
        (spec("total_steps", starts_on=today().isoformat(), **invite), "starts_too_soon"),
        (spec("total_steps", ends_on=today().isoformat(), **invite), "invalid_date_range"),
        (spec("total_steps", ends_on=in_days(200), **invite), "challenge_too_long"),
        (spec("total_steps", entry_fee_coins=10_001, **invite), "entry_fee_too_high"),
        (spec("total_steps"), "invitees_required"),
        (spec("total_steps", invitees=[stranger["id"]]), "not_friends"),
        (spec("total_steps", audience="friends", group_id=1, **invite), "group_not_expected"),
        (spec("total_steps", house_prize_coins=5, **invite), "house_prize_not_allowed"),
        (spec("total_steps", min_participants=1, **invite), "min_participants_too_low"),
    ]
    for body, code in cases:
        response = await client.post("/v1/challenges", json=body, headers=me["headers"])
        assert response.status_code == 422, (code, response.text)
        assert response.json()["code"] == code, (code, response.text)
    strangers = await client.post(
        "/v1/challenges", json=spec("total_steps", invitees=[stranger["id"]]), headers=me["headers"]
    )
    assert strangers.json()["user_ids"] == [stranger["id"]]
    everyone = await client.post(
        "/v1/challenges", json=spec("total_steps", audience="everyone"), headers=me["headers"]
    )
    assert everyone.status_code == 403 and everyone.json()["code"] == "admin_only"
    company = await client.post(
        "/v1/challenges", json=spec("total_steps", group_id=2**62), headers=admin["headers"]
    )
    assert company.status_code == 404 and company.json()["code"] == "group_not_found"
    unknown = await client.post(
        "/v1/challenges", json={**spec("total_steps"), "colour": "red"}, headers=me["headers"]
    )
    assert unknown.status_code == 422


async def test_a_friends_challenge_is_hidden_from_others_and_a_draft_from_all_but_its_creator(
    client, engine
):
    admin = await make_staff(client, engine)
    me = await rich_walker(client, admin, name="Ada Walker")
    friend = await rich_walker(client, admin, name="Ben Walker")
    stranger = await walker(client, "Cy Walker")
    await befriend(client, me, friend)
    draft = await create(
        client,
        me,
        spec(
            "goal_days",
            params={"target_steps": 6000, "goal_days": 2},
            invitees=[friend["id"]],
            draft=True,
            entry_fee_coins=5,
        ),
    )
    cid = draft["id"]
    assert draft["status"] == "draft" and draft["me"] is None and draft["joinable"] is False
    for account in (friend, stranger):
        hidden = await client.get(f"/v1/challenges/{cid}", headers=account["headers"])
        assert hidden.status_code == 404 and hidden.json()["code"] == "challenge_not_found"
    published = await act(client, me, cid, "publish")
    assert published["status"] == "scheduled" and published["me"]["status"] == "joined"
    again = await client.post(f"/v1/challenges/{cid}/publish", headers=me["headers"])
    assert again.status_code == 409 and again.json()["code"] == "not_a_draft"
    assert (await get(client, friend, cid))["joinable"] is True
    for path in ("", "/leaderboard"):
        hidden = await client.get(f"/v1/challenges/{cid}{path}", headers=stranger["headers"])
        assert hidden.status_code == 404
    joined = await client.post(f"/v1/challenges/{cid}/join", headers=stranger["headers"])
    assert joined.status_code == 404
    missing = await client.get(f"/v1/challenges/{ANY}", headers=me["headers"])
    assert missing.status_code == 404
    mine = await client.get("/v1/challenges", headers=friend["headers"])
    assert [c["id"] for c in mine.json()["items"]] == [cid]
    assert mine.json()["items"][0]["my_status"] is None
    assert (await client.get("/v1/challenges", headers=stranger["headers"])).json()["items"] == []
    board = await client.get(f"/v1/challenges/{cid}/leaderboard", headers=me["headers"])
    assert board.status_code == 200
    assert [e["display_name"] for e in board.json()["entries"]] == ["Ada"]


async def test_everyone_sees_an_admin_challenge_and_staff_read_the_admin_views(client, engine):
    admin = await make_staff(client, engine)
    support = await make_staff(client, engine, role="support")
    me = await rich_walker(client, admin, name="Ada Walker")
    cid = (await create(client, admin, spec("total_steps", entry_fee_coins=10)))["id"]
    listed = await client.get("/v1/challenges", headers=me["headers"])
    assert [c["id"] for c in listed.json()["items"]] == [cid]
    await act(client, me, cid, "join")
    for account in (admin, support):
        page = await client.get("/v1/admin/challenges", headers=account["headers"])
        assert page.status_code == 200
        assert page.json()["counts"] == {"scheduled": 1}
        detail = await client.get(f"/v1/admin/challenges/{cid}", headers=account["headers"])
        assert detail.status_code == 200
        body = detail.json()
        assert body["escrow_coins"] == 10
        assert [p["email"] for p in body["participant_list"]] == [me["email"]]
    walker_view = await client.get("/v1/admin/challenges", headers=me["headers"])
    assert walker_view.status_code == 403
    filtered = await client.get(
        "/v1/admin/challenges", params={"status": "settled"}, headers=admin["headers"]
    )
    assert filtered.json()["items"] == []

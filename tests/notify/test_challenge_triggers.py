"""Issue 18 item 6, challenges: the invited hear of it when it is published, the participants
when it starts, a few hours before it ends and when the result is in; each once per walker,
however many ticks run."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from tests.challenges.helpers import (
    act,
    befriend,
    create,
    in_days,
    make_staff,
    rich_walker,
    spec,
    tick,
    tomorrow,
)
from tests.notify.helpers import rows


async def events(engine, user_id):
    return [
        (r.dedupe_key.rsplit(":", 1)[1], r.data)
        for r in await rows(
            engine,
            "SELECT dedupe_key, data FROM notifications WHERE user_id = :u AND kind = 'challenge' "
            "ORDER BY id",
            u=user_id,
        )
    ]


async def test_invited_started_ending_result_once_each(app, client, engine):
    admin = await make_staff(client, engine)
    ann = await rich_walker(client, admin, name="Ann Walker")
    bob = await rich_walker(client, admin, name="Bob Walker")
    cy = await rich_walker(client, admin, name="Cy Walker")
    await befriend(client, ann, bob)
    await befriend(client, ann, cy)
    draft = await create(
        client, ann, spec("total_steps", invitees=[bob["id"], cy["id"]], draft=True)
    )
    cid = draft["id"]
    assert await events(engine, bob["id"]) == []  # a draft tells nobody
    await act(client, ann, cid, "publish")
    [(event, data)] = await events(engine, bob["id"])
    assert event == "invited" and data["challenge_id"] == cid
    assert [e for e, _ in await events(engine, cy["id"])] == ["invited"]
    assert await events(engine, ann["id"]) == []  # the creator invited, is not invited
    await act(client, bob, cid, "join")

    start = datetime.combine(date.fromisoformat(tomorrow()), time(0), UTC)
    end = datetime.combine(date.fromisoformat(in_days(3)) + timedelta(days=1), time(0), UTC)
    for at in (start + timedelta(minutes=1), start + timedelta(minutes=2)):
        await tick(app, at)
    for at in (end - timedelta(hours=2, minutes=55), end - timedelta(hours=2, minutes=50)):
        await tick(app, at)
    assert (await tick(app, end + timedelta(hours=25)))["settled"] == 1
    await tick(app, end + timedelta(hours=26))
    for who in (ann, bob):
        seen = await events(engine, who["id"])
        assert [e for e, _ in seen if e != "invited"] == ["started", "ending", "result"]
    result = dict(await events(engine, ann["id"]))["result"]
    assert set(result) >= {"rank", "winner", "coins"}
    # cy never joined: invited, nothing more
    assert [e for e, _ in await events(engine, cy["id"])] == ["invited"]


async def test_a_cancelled_challenge_tells_who_joined(app, client, engine):
    admin = await make_staff(client, engine)
    ann = await rich_walker(client, admin, name="Ann Walker")
    bob = await rich_walker(client, admin, name="Bob Walker")
    await befriend(client, ann, bob)
    created = await create(
        client, ann, spec("total_steps", min_participants=2, invitees=[bob["id"]])
    )
    start = datetime.combine(date.fromisoformat(tomorrow()), time(0), UTC)
    await tick(app, start + timedelta(minutes=1))  # one walker: too few, cancelled
    await tick(app, start + timedelta(minutes=2))
    assert [e for e, _ in await events(engine, ann["id"])] == ["cancelled"]
    assert [e for e, _ in await events(engine, bob["id"])] == ["invited"]
    assert created["status"] == "scheduled"

"""Issue 18 items 3-5: the inbox and preferences over HTTP; one event, one notification."""

from __future__ import annotations

from tests.notify.conftest import android_token
from tests.notify.helpers import add_device, notify, one, walker


async def test_one_event_twice_is_one_notification(client, engine):
    ada = await walker(client)
    await add_device(client, ada, "android", android_token(63))
    first = await notify(engine, ada["id"], dedupe_key="review:day:42")
    second = await notify(engine, ada["id"], dedupe_key="review:day:42")
    assert first is not None and second is None
    count = await one(engine, "SELECT count(*) FROM notifications WHERE user_id = :u", u=ada["id"])
    assert count[0] == 1
    jobs = await one(
        engine,
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'notify:send' "
        "AND args ->> 'notification_id' = :n",
        n=str(first),
    )
    assert jobs[0] == 1


async def test_inbox_newest_first_paged_and_mark_read(client, engine):
    ada, bob = await walker(client), await walker(client)
    ids = [await notify(engine, ada["id"], title=f"n{i}") for i in range(3)]
    page = (await client.get("/v1/me/notifications?limit=2", headers=ada["headers"])).json()
    assert [n["id"] for n in page["items"]] == [ids[2], ids[1]]
    assert page["unread"] == 3
    item = page["items"][0]
    assert set(item) == {"id", "type", "title", "body", "data", "created_at", "read_at"}
    assert (item["type"], item["data"], item["read_at"]) == (
        "review_outcome",
        {"screen": "steps"},
        None,
    )
    rest = (
        await client.get(
            f"/v1/me/notifications?limit=2&cursor={page['next_cursor']}", headers=ada["headers"]
        )
    ).json()
    assert [n["id"] for n in rest["items"]] == [ids[0]] and rest["next_cursor"] is None

    read = await client.post(f"/v1/me/notifications/{ids[0]}/read", headers=ada["headers"])
    assert read.status_code == 200 and read.json()["read_at"] is not None
    again = await client.post(f"/v1/me/notifications/{ids[0]}/read", headers=ada["headers"])
    assert again.json()["read_at"] == read.json()["read_at"]
    theirs = await client.post(f"/v1/me/notifications/{ids[1]}/read", headers=bob["headers"])
    assert (theirs.status_code, theirs.json()["code"]) == (404, "notification_not_found")
    unread = (await client.get("/v1/me/notifications?unread=true", headers=ada["headers"])).json()
    assert [n["id"] for n in unread["items"]] == [ids[2], ids[1]] and unread["unread"] == 2
    marked = await client.post("/v1/me/notifications/read-all", headers=ada["headers"])
    assert marked.json() == {"marked": 2}
    assert (await client.get("/v1/me/notifications", headers=bob["headers"])).json()["items"] == []


async def test_bad_cursor_is_422(client):
    ada = await walker(client)
    response = await client.get("/v1/me/notifications?cursor=nonsense", headers=ada["headers"])
    assert (response.status_code, response.json()["code"]) == (422, "invalid_cursor")


async def test_preferences_defaults_and_changes(client, engine):
    ada = await walker(client, quiet=None)
    prefs = (await client.get("/v1/me/notification-preferences", headers=ada["headers"])).json()
    assert (prefs["quiet_start"], prefs["quiet_end"]) == ("22:00", "07:00")
    assert prefs["types"]["order"] == {
        "push": True,
        "inbox": True,
        "mandatory": True,
        "description": prefs["types"]["order"]["description"],
    }
    assert prefs["types"]["streak"]["inbox"] is False  # a reminder is a push, not an inbox item

    changed = await client.put(
        "/v1/me/notification-preferences",
        json={"types": {"review_outcome": {"push": False}}, "quiet_start": "23:30"},
        headers=ada["headers"],
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["types"]["review_outcome"]["push"] is False
    assert body["types"]["review_outcome"]["inbox"] is True
    assert (body["quiet_start"], body["quiet_end"]) == ("23:30", "07:00")
    assert (
        await client.get("/v1/me/notification-preferences", headers=ada["headers"])
    ).json() == body

    # push off: the notification is in the inbox, no push job
    note = await notify(engine, ada["id"])
    status = await one(
        engine, "SELECT push_status, in_inbox FROM notifications WHERE id = :n", n=note
    )
    assert tuple(status) == ("off", True)
    inbox_off = await client.put(
        "/v1/me/notification-preferences",
        json={"types": {"review_outcome": {"inbox": False}}},
        headers=ada["headers"],
    )
    assert inbox_off.status_code == 200
    hidden = await notify(engine, ada["id"])
    listed = (await client.get("/v1/me/notifications", headers=ada["headers"])).json()["items"]
    assert [n["id"] for n in listed] == [note] and hidden is not None


async def test_security_and_orders_cannot_be_turned_off(client, engine):
    ada = await walker(client)
    for kind in ("order", "security"):
        response = await client.put(
            "/v1/me/notification-preferences",
            json={"types": {kind: {"push": False}}},
            headers=ada["headers"],
        )
        assert response.status_code == 422
        assert (response.json()["code"], response.json()["types"]) == (
            "notification_mandatory",
            [kind],
        )
    unknown = await client.put(
        "/v1/me/notification-preferences",
        json={"types": {"horoscope": {"push": True}}},
        headers=ada["headers"],
    )
    assert (unknown.status_code, unknown.json()["code"]) == (422, "validation_error")
    for clock in ("25:00", "7:00", "07:00:00", "07:00Z", 0):
        bad = await client.put(
            "/v1/me/notification-preferences", json={"quiet_end": clock}, headers=ada["headers"]
        )
        assert bad.status_code == 422, clock


async def test_a_walker_without_a_push_device_gets_the_inbox_row_and_no_push_job(client, engine):
    """Thousands of unlocks for walkers who never registered a device must not queue a push
    job each (the benchmark's worker fell 36,000 jobs behind before this)."""
    ada, bob = await walker(client), await walker(client)
    await add_device(client, bob, "android", android_token(64))
    ids = {
        who["id"]: await notify(engine, who["id"], dedupe_key="review:day:7") for who in (ada, bob)
    }
    statuses = {
        who: (await one(engine, "SELECT push_status FROM notifications WHERE id = :n", n=nid))[0]
        for who, nid in ids.items()
    }
    assert statuses == {ada["id"]: "no_device", bob["id"]: "pending"}
    jobs = await one(
        engine,
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'notify:send' "
        "AND args ->> 'notification_id' = ANY(CAST(:n AS text[]))",
        n=[str(i) for i in ids.values()],
    )
    assert jobs[0] == 1
    inbox = (await client.get("/v1/me/notifications", headers=ada["headers"])).json()
    assert [n["id"] for n in inbox["items"]] == [ids[ada["id"]]]

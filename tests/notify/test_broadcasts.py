"""Issue 18 item 7: an admin's push broadcast to a segment (the campaigns' builder): a preview
with walkers and devices, a second admin's approval above the threshold, the run writes one
`broadcast` notification per walker (their preferences and a dead token respected), the
worker pushes them, and the delivery figures say what happened. Audited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from stepcoin.campaigns import broadcasts
from stepcoin.db import session_scope
from stepcoin.notify import sending
from tests.admin.helpers import count, make_staff
from tests.campaigns.helpers import many_walkers, set_setting
from tests.conftest import bearer, register
from tests.notify.conftest import android_token, ios_token
from tests.notify.helpers import add_device, rows, run_notify_jobs, walker

THRESHOLD = "notify.broadcast_approval_threshold_walkers"
NEWS = {"title": "Winter challenge", "body": "Walk 100 km in December and win a jacket."}


async def run_job(app, broadcast_id: str) -> dict:
    """What the worker does for campaigns:broadcast (the job's body, in this process)."""
    return await broadcasts.run(app.state.database, uuid.UUID(broadcast_id))


async def test_a_broadcast_reaches_each_walker_once_with_figures(
    app, client, engine, push, fcm, apns
):
    await set_setting(engine, THRESHOLD, 10)
    admin, second = await make_staff(client, engine), await make_staff(client, engine)
    ada, bob, cy, dee = [await walker(client) for _ in range(4)]
    await add_device(client, ada, "android", android_token(71))
    await add_device(client, bob, "ios", ios_token(72))
    await add_device(client, cy, "android", android_token(73))
    await add_device(client, dee, "android", android_token(74))
    fcm.dead.add(android_token(74))  # dee removed the app
    off = await client.put(
        "/v1/me/notification-preferences",
        json={"types": {"broadcast": {"push": False}}},
        headers=cy["headers"],
    )
    assert off.status_code == 200, off.text
    quiet = await many_walkers(engine, 20)  # no device: inbox only
    async with engine.begin() as conn:  # and no quiet hours (the test runs at any hour)
        await conn.execute(
            text(
                "INSERT INTO notification_preferences (user_id, quiet_start, quiet_end) "
                "SELECT unnest(CAST(:ids AS uuid[])), '00:00', '00:00'"
            ),
            {"ids": quiet},
        )
    listed = [ada["id"], bob["id"], cy["id"], dee["id"], *quiet, second["user"]["id"]]

    created = await client.post(
        "/v1/admin/broadcasts",
        json={**NEWS, "segment": {"user_ids": listed}},
        headers=admin["headers"],
    )
    assert created.status_code == 202, created.text
    b = created.json()  # above the approval threshold: it waits for a second admin
    assert b["status"] == "draft" and b["figures"]["sent"] == 0
    preview = await client.post(f"/v1/admin/broadcasts/{b['id']}/preview", headers=admin["headers"])
    assert preview.status_code == 200, preview.text
    seen = preview.json()
    # staff are never in a segment
    assert seen["walkers"] == 24 and seen["devices"] == {"ios": 1, "android": 3}
    assert seen["needs_approval"] is True and len(seen["sample"]) == 10

    refused = await client.post(f"/v1/admin/broadcasts/{b['id']}/run", headers=admin["headers"])
    assert refused.status_code == 409 and refused.json()["code"] == "broadcast_needs_approval"
    own = await client.post(f"/v1/admin/broadcasts/{b['id']}/approve", headers=admin["headers"])
    assert own.status_code == 403 and own.json()["code"] == "own_broadcast"
    approved = await client.post(
        f"/v1/admin/broadcasts/{b['id']}/approve", headers=second["headers"]
    )
    assert approved.status_code == 200 and approved.json()["approved_walkers"] == 24
    started = await client.post(f"/v1/admin/broadcasts/{b['id']}/run", headers=admin["headers"])
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "running" and started.json()["walkers_total"] == 24
    again = await client.post(f"/v1/admin/broadcasts/{b['id']}/run", headers=admin["headers"])
    assert again.status_code == 202
    jobs = await count(
        engine, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'campaigns:broadcast'"
    )
    assert jobs == 1

    result = await run_job(app, b["id"])
    assert result == {"chunks": 1, "walkers_queued": 24, "status": "done"}
    await run_notify_jobs(app)
    done = (await client.get(f"/v1/admin/broadcasts/{b['id']}", headers=admin["headers"])).json()
    figures = done["figures"]
    assert (figures["sent"], figures["failed"], figures["invalidated"]) == (2, 0, 1)
    assert figures["queued"] == 0 and figures["retrying"] == 0
    assert figures["notifications"] == {"sent": 2, "failed": 1, "off": 1, "no_device": 20}
    assert [m["notification"]["title"] for m in fcm.sent] == [NEWS["title"]]
    assert apns.sent[0]["payload"]["type"] == "broadcast"
    assert apns.sent[0]["payload"]["broadcast_id"] == b["id"]
    # the dead token is gone; every walker has it in the inbox (push off is not inbox off)
    assert (
        await count(
            engine, "SELECT count(*) FROM push_devices WHERE token = :t", t=android_token(74)
        )
        == 0
    )
    for who in (ada, cy):
        inbox = (await client.get("/v1/me/notifications", headers=who["headers"])).json()
        [item] = inbox["items"]
        assert (item["type"], item["title"], item["body"]) == ("broadcast", *NEWS.values())

    # once each, however often it runs
    assert (await run_job(app, b["id"]))["walkers_queued"] == 24
    assert (
        await count(
            engine,
            "SELECT count(*) FROM notifications WHERE dedupe_key = :k",
            k=f"broadcast:{b['id']}",
        )
        == 24
    )
    finished = await client.post(f"/v1/admin/broadcasts/{b['id']}/run", headers=admin["headers"])
    assert finished.status_code == 409 and finished.json()["code"] == "broadcast_already_run"
    listed_page = (await client.get("/v1/admin/broadcasts", headers=admin["headers"])).json()
    assert listed_page["items"][0]["id"] == b["id"]
    assert "user_ids" not in listed_page["items"][0]["segment"]
    assert listed_page["items"][0]["user_ids_count"] == 25
    actions = [
        r.action
        for r in await rows(
            engine,
            "SELECT action FROM admin_logs WHERE entity_type = 'broadcast' AND entity_id = :id "
            "ORDER BY id",
            id=b["id"],
        )
    ]
    assert actions == [
        "broadcast.created",
        "broadcast.previewed",
        "broadcast.approved",
        "broadcast.run",
    ]


async def test_a_small_broadcast_runs_without_approval_and_in_chunks(app, client, engine, push):
    admin = await make_staff(client, engine)
    walkers = await many_walkers(engine, 30)
    created = await client.post(
        "/v1/admin/broadcasts",
        json={**NEWS, "segment": {"user_ids": walkers}},
        headers=admin["headers"],
    )
    assert created.status_code == 202, created.text
    b = created.json()  # below the threshold: queued at once (API.md: POST -> 202)
    assert b["status"] == "running" and b["walkers_total"] == 30
    started = await client.post(f"/v1/admin/broadcasts/{b['id']}/run", headers=admin["headers"])
    assert started.status_code == 202, started.text  # running already: the same answer
    # a job killed after its first chunk resumes after it (the cursor), writing nobody twice
    async with session_scope(app.state.database) as session:
        assert await broadcasts.queue_chunk(session, uuid.UUID(b["id"]), chunk=12) is False
    assert (await run_job(app, b["id"]))["walkers_queued"] == 30
    assert (
        await count(
            engine,
            "SELECT count(*) FROM notifications WHERE dedupe_key = :k",
            k=f"broadcast:{b['id']}",
        )
        == 30
    )


async def test_who_may_do_what(client, engine):
    walker_ = await register(client)
    support = await make_staff(client, engine, role="support")
    admin = await make_staff(client, engine)
    body = {**NEWS, "segment": {"all_walkers": True}}
    assert (await client.post("/v1/admin/broadcasts", json=body)).status_code == 401
    mine = await client.post(
        "/v1/admin/broadcasts", json=body, headers=bearer(walker_["access_token"])
    )
    assert mine.status_code == 403
    assert (
        await client.post("/v1/admin/broadcasts", json=body, headers=support["headers"])
    ).status_code == 403
    assert (await client.get("/v1/admin/broadcasts", headers=support["headers"])).status_code == 200
    missing = await client.get(f"/v1/admin/broadcasts/{uuid.uuid4()}", headers=admin["headers"])
    assert missing.status_code == 404 and missing.json()["code"] == "broadcast_not_found"
    bad = await client.post(
        "/v1/admin/broadcasts", json={**NEWS, "segment": {}}, headers=admin["headers"]
    )
    assert bad.status_code == 422


async def test_a_batch_hands_quiet_hours_and_retries_to_jobs_of_their_own(
    app, client, engine, push, fcm, apns
):
    """The set-based batch sends the plain case; a walker in quiet hours gets a job of their
    own that waits for the end of them, and a 429 a job that waits for its Retry-After."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    admin = await make_staff(client, engine)
    sleepy = await walker(client, quiet=(f"{start:%H:%M}", f"{end:%H:%M}"))
    busy, fine = await walker(client), await walker(client)
    await add_device(client, sleepy, "ios", ios_token(81), timezone="UTC")
    await add_device(client, busy, "android", android_token(82))
    await add_device(client, fine, "android", android_token(83))
    fcm.fail_next(429, retry_after="120", token=android_token(82))
    ids = [sleepy["id"], busy["id"], fine["id"]]
    b = (
        await client.post(
            "/v1/admin/broadcasts",
            json={**NEWS, "segment": {"user_ids": ids}},
            headers=admin["headers"],
        )
    ).json()
    assert (
        await client.post(f"/v1/admin/broadcasts/{b['id']}/run", headers=admin["headers"])
    ).status_code == 202
    await run_job(app, b["id"])
    batches = await count(
        engine, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'notify:send_batch'"
    )
    assert batches == 1
    await run_notify_jobs(app)
    state = {
        str(r.user_id): r.push_status
        for r in await rows(
            engine,
            "SELECT user_id, push_status FROM notifications WHERE dedupe_key = :k",
            k=f"broadcast:{b['id']}",
        )
    }
    assert state == {sleepy["id"]: "pending", busy["id"]: "pending", fine["id"]: "sent"}
    jobs = {
        r.args["notification_id"]: r.scheduled_at
        for r in await rows(
            engine,
            "SELECT args, scheduled_at FROM procrastinate_jobs "
            "WHERE task_name = 'notify:send' AND status = 'todo'",
        )
    }
    by_user = {
        str(r.user_id): r.id
        for r in await rows(
            engine,
            "SELECT id, user_id FROM notifications WHERE dedupe_key = :k",
            k=f"broadcast:{b['id']}",
        )
    }
    assert jobs[by_user[sleepy["id"]]] == end  # the end of the quiet hours
    assert jobs[by_user[busy["id"]]] > now + timedelta(seconds=100)  # Retry-After: 120
    assert [m["token"] for m in fcm.sent] == [android_token(83)]
    figures = (
        await client.get(f"/v1/admin/broadcasts/{b['id']}", headers=admin["headers"])
    ).json()["figures"]
    assert (figures["queued"], figures["sent"], figures["retrying"]) == (2, 1, 1)


async def test_a_batch_killed_after_its_claim_never_sends_those_pushes_again(
    app, client, engine, push, fcm
):
    """The claim (deliveries `sending`) commits before any request: a batch job that dies
    after it and runs again sends nothing twice; the push counts as sent (the service may have
    it), as the single send does."""
    admin = await make_staff(client, engine)
    ada, bob = await walker(client), await walker(client)
    await add_device(client, ada, "android", android_token(95))
    await add_device(client, bob, "android", android_token(96))
    b = (
        await client.post(
            "/v1/admin/broadcasts",
            json={**NEWS, "segment": {"user_ids": [ada["id"], bob["id"]]}},
            headers=admin["headers"],
        )
    ).json()
    await client.post(f"/v1/admin/broadcasts/{b['id']}/run", headers=admin["headers"])
    await run_job(app, b["id"])
    by_user = {
        str(r.user_id): r.id
        for r in await rows(
            engine,
            "SELECT id, user_id FROM notifications WHERE dedupe_key = :k",
            k=f"broadcast:{b['id']}",
        )
    }
    killed = by_user[ada["id"]]
    async with session_scope(app.state.database) as session:  # the claim, then the "kill"
        _, claimed = await sending._prepare_batch(session, [killed], datetime.now(UTC))
    assert list(claimed) == [killed]
    await run_notify_jobs(app)  # the batch job: ada's goes one by one, bob's is sent
    await run_notify_jobs(app)  # ada's own job
    assert [m["token"] for m in fcm.sent] == [android_token(96)]
    status = {
        str(r.user_id): r.push_status
        for r in await rows(
            engine,
            "SELECT user_id, push_status FROM notifications WHERE dedupe_key = :k",
            k=f"broadcast:{b['id']}",
        )
    }
    assert status == {ada["id"]: "sent", bob["id"]: "sent"}


async def test_a_draft_waits_for_its_run(app, client, engine, push):
    admin = await make_staff(client, engine)
    walkers = await many_walkers(engine, 3)
    created = await client.post(
        "/v1/admin/broadcasts",
        json={**NEWS, "segment": {"user_ids": walkers}, "draft": True, "expires_hours": 2},
        headers=admin["headers"],
    )
    assert created.status_code == 202, created.text
    b = created.json()
    assert b["status"] == "draft"
    jobs = "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'campaigns:broadcast'"
    assert await count(engine, jobs) == 0
    started = await client.post(f"/v1/admin/broadcasts/{b['id']}/run", headers=admin["headers"])
    assert started.status_code == 202 and started.json()["status"] == "running"
    assert await count(engine, jobs) == 1

"""Issue 18 items 2-3 through the outbox and its job: a notification written in a feature's
transaction is pushed by the worker to every live device of the walker; dead tokens go,
429/5xx come back after Retry-After, quiet hours delay or drop, the daily cap holds, a device
whose sign-in ended gets nothing, and a push claimed by a killed worker is never sent twice."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from stepcoin import metrics
from stepcoin.distribution import key_slice
from stepcoin.notify import sending
from stepcoin.runtime_settings.service import runtime_settings
from tests.notify.conftest import android_token, ios_token
from tests.notify.helpers import add_device, notify, one, rows, run_notify_jobs, walker


async def status_of(engine, note):
    return (await one(engine, "SELECT push_status FROM notifications WHERE id = :n", n=note))[0]


async def deliveries(engine, note):
    return sorted(
        tuple(r)
        for r in await rows(
            engine,
            "SELECT platform, status FROM notification_deliveries WHERE notification_id = :n",
            n=note,
        )
    )


async def test_pushed_to_every_device_by_the_worker(client, app, engine, push, fcm, apns):
    ada = await walker(client)
    await add_device(client, ada, "android", android_token(1))
    await add_device(client, ada, "ios", ios_token(1))
    note = await notify(engine, ada["id"], collapse_key="review:monday")
    await run_notify_jobs(app)
    assert await status_of(engine, note) == "sent"
    assert await deliveries(engine, note) == [("android", "sent"), ("ios", "sent")]
    assert fcm.sent[0]["data"]["notification_id"] == str(note)
    assert fcm.sent[0]["android"]["collapse_key"] == "review:monday"
    assert apns.sent[0]["payload"]["type"] == "review_outcome"
    assert apns.sent[0]["headers"]["apns-collapse-id"] == "review:monday"
    await run_notify_jobs(app)  # nothing runs twice
    assert (len(fcm.sent), len(apns.sent)) == (1, 1)


async def test_dead_tokens_remove_the_devices(client, app, engine, push, fcm, apns):
    ada = await walker(client)
    await add_device(client, ada, "android", android_token(2))
    await add_device(client, ada, "ios", ios_token(2))
    fcm.dead.add(android_token(2))
    apns.unregister(ios_token(2))
    note = await notify(engine, ada["id"])
    await run_notify_jobs(app)
    assert await status_of(engine, note) == "failed"
    assert await deliveries(engine, note) == [("android", "invalidated"), ("ios", "invalidated")]
    assert await rows(engine, "SELECT id FROM push_devices WHERE user_id = :u", u=ada["id"]) == []


async def test_wrong_environment_is_corrected(client, app, engine, push, apns):
    ada = await walker(client)
    device = await add_device(client, ada, "ios", ios_token(3), environment="production")
    apns.register(ios_token(3), "sandbox")
    note = await notify(engine, ada["id"])
    await run_notify_jobs(app)
    assert await status_of(engine, note) == "sent"
    env = await one(engine, "SELECT environment FROM push_devices WHERE id = :d", d=device)
    assert env[0] == "sandbox"


async def test_429_comes_back_after_retry_after(client, app, engine, push, fcm):
    ada = await walker(client)
    await add_device(client, ada, "android", android_token(4))
    fcm.fail_next(429, retry_after="120")
    note = await notify(engine, ada["id"])
    before = datetime.now(UTC)
    await run_notify_jobs(app)
    assert await status_of(engine, note) == "pending"
    assert await deliveries(engine, note) == [("android", "retry")]
    job = await one(
        engine,
        "SELECT status, scheduled_at, attempts FROM procrastinate_jobs "
        "WHERE task_name = 'notify:send' AND args ->> 'notification_id' = :n",
        n=str(note),
    )
    assert job.status == "todo" and job.attempts == 1
    assert job.scheduled_at >= before + timedelta(seconds=119)  # Retry-After beats the backoff
    # when the job comes back, the service takes it
    assert await sending.send_notification(app.state.database, push, note) == "sent"
    assert fcm.answers == [429, 200]


async def test_5xx_retries_with_backoff_then_gives_up(client, app, engine, push, apns):
    ada = await walker(client)
    await add_device(client, ada, "ios", ios_token(5))
    note = await notify(engine, ada["id"])
    waits = []
    for attempt in range(1, sending.MAX_ATTEMPTS + 1):
        apns.fail_next(503)
        if attempt < sending.MAX_ATTEMPTS:
            with pytest.raises(sending.PushRetry) as retry:
                await sending.send_notification(app.state.database, push, note)
            waits.append(retry.value.after)
        else:
            assert await sending.send_notification(app.state.database, push, note) == "failed"
    assert waits == [sending.backoff(n) for n in range(1, sending.MAX_ATTEMPTS)]
    assert await deliveries(engine, note) == [("ios", "failed")]


async def test_quiet_hours_delay_the_push_to_their_end(client, app, engine, push, apns):
    ada = await walker(client, quiet=("22:00", "07:00"))
    await add_device(client, ada, "ios", ios_token(6), timezone="Asia/Tokyo")
    note = await notify(engine, ada["id"])
    tokyo = ZoneInfo("Asia/Tokyo")
    at_night = datetime(2026, 12, 5, 23, 30, tzinfo=tokyo).astimezone(UTC)
    with pytest.raises(sending.NotBefore) as wait:
        await sending.send_notification(app.state.database, push, note, now=at_night)
    assert wait.value.at == datetime(2026, 12, 6, 7, 0, tzinfo=tokyo)
    assert apns.sent == [] and await status_of(engine, note) == "pending"
    morning = datetime(2026, 12, 6, 7, 0, tzinfo=tokyo).astimezone(UTC)
    assert await sending.send_notification(app.state.database, push, note, now=morning) == "sent"


async def test_quiet_hours_drop_a_push_that_expires_first(client, app, engine, push, apns):
    ada = await walker(client, quiet=("22:00", "07:00"))
    await add_device(client, ada, "ios", ios_token(7), timezone="America/New_York")
    ny = ZoneInfo("America/New_York")
    midnight = datetime(2026, 12, 6, 0, 0, tzinfo=ny)
    note = await notify(engine, ada["id"], type="streak", expires_at=midnight)
    late = datetime(2026, 12, 5, 22, 15, tzinfo=ny).astimezone(UTC)
    assert await sending.send_notification(app.state.database, push, note, now=late) == "expired"
    assert apns.sent == []


async def test_security_pushes_ignore_quiet_hours(client, app, engine, push, apns):
    ada = await walker(client, quiet=("22:00", "07:00"))
    await add_device(client, ada, "ios", ios_token(8), timezone="UTC")
    note = await notify(engine, ada["id"], type="security", title="New sign-in")
    night = datetime(2026, 12, 5, 23, 0, tzinfo=UTC)
    assert await sending.send_notification(app.state.database, push, note, now=night) == "sent"


async def test_daily_cap_per_type(client, app, engine, push, fcm):
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE settings SET value = '1' WHERE key = 'notify.daily_cap_per_type'")
        )
    runtime_settings.invalidate()
    ada = await walker(client)
    await add_device(client, ada, "android", android_token(9))
    first = await notify(engine, ada["id"])
    second = await notify(engine, ada["id"])
    other_kind = await notify(engine, ada["id"], type="achievement")
    order = await notify(engine, ada["id"], type="order")  # no cap on orders
    await run_notify_jobs(app)
    statuses = [await status_of(engine, n) for n in (first, second, other_kind, order)]
    assert sorted(statuses[:2]) == ["capped", "sent"]
    assert statuses[2:] == ["sent", "sent"]
    assert len(fcm.sent) == 3
    listed = (await client.get("/v1/me/notifications", headers=ada["headers"])).json()["items"]
    assert len(listed) == 4  # a capped push is still in the inbox


async def test_a_signed_out_device_gets_nothing(client, app, engine, push, fcm):
    ada = await walker(client)
    await add_device(client, ada, "android", android_token(10))
    out = await client.post("/v1/auth/logout", json={"refresh_token": ada["refresh_token"]})
    assert out.status_code == 204
    note = await notify(engine, ada["id"])
    await run_notify_jobs(app)
    assert await status_of(engine, note) == "no_device"
    assert fcm.sent == []
    assert await rows(engine, "SELECT id FROM push_devices WHERE user_id = :u", u=ada["id"]) == []


async def test_a_claimed_push_is_never_sent_twice(client, app, engine, push, fcm):
    """The worker dies after claiming the device (the claim is committed) and before or while
    the push service answers: the job runs again and sends nothing more."""
    ada = await walker(client)
    await add_device(client, ada, "android", android_token(11))
    note = await notify(engine, ada["id"])

    class Killed(BaseException):
        pass

    class DiesMidway:
        async def send(self, message):
            await push.android.send(message)  # the service got it...
            raise Killed  # ...and the worker died before recording the answer

        async def aclose(self):
            pass

    dying = type(push)(android=DiesMidway(), ios=push.ios)
    with pytest.raises(Killed):
        await sending.send_notification(app.state.database, dying, note)
    assert await deliveries(engine, note) == [("android", "sending")]
    assert await sending.send_notification(app.state.database, push, note) == "sent"
    await run_notify_jobs(app)
    assert len(fcm.sent) == 1


async def test_a_pending_push_without_a_job_is_swept(client, app, engine, push, fcm):
    ada = await walker(client)
    await add_device(client, ada, "android", android_token(12))
    note = await notify(engine, ada["id"])
    async with engine.begin() as conn:  # the job failed on something unexpected
        await conn.execute(
            text(
                "UPDATE procrastinate_jobs SET status = 'failed' "
                "WHERE args ->> 'notification_id' = :n"
            ),
            {"n": str(note)},
        )
        await conn.execute(
            text("UPDATE notifications SET created_at = now() - interval '10 minutes'")
        )
    assert await sending.sweep(app.state.database) == 1
    assert await sending.sweep(app.state.database) == 0  # one job waits at most
    await run_notify_jobs(app)
    assert await status_of(engine, note) == "sent" and len(fcm.sent) == 1


async def test_metrics_count_pushes_by_outcome(client, app, engine, scraper, push, fcm):
    ada = await walker(client)
    await add_device(client, ada, "android", android_token(13))
    await add_device(client, ada, "android", android_token(14))
    fcm.dead.add(android_token(14))
    await notify(engine, ada["id"])
    await run_notify_jobs(app)
    metrics.DATABASE_COLLECTOR.snapshot.taken = float("-inf")
    text_ = (await scraper.get("/metrics")).text
    assert 'stepcoin_push_deliveries_24h{platform="android",status="sent"} 1.0' in text_
    assert 'stepcoin_push_deliveries_24h{platform="android",status="invalidated"} 1.0' in text_
    assert "stepcoin_push_pending 0.0" in text_


async def test_the_worker_puts_a_quiet_push_off_until_the_quiet_hours_end(
    client, app, engine, push, apns
):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    ada = await walker(client, quiet=(f"{start:%H:%M}", f"{end:%H:%M}"))
    await add_device(client, ada, "ios", ios_token(15), timezone="UTC")
    note = await notify(engine, ada["id"])
    await run_notify_jobs(app)
    assert apns.sent == [] and await status_of(engine, note) == "pending"
    job = await one(
        engine,
        "SELECT status, scheduled_at FROM procrastinate_jobs "
        "WHERE task_name = 'notify:send' AND args ->> 'notification_id' = :n",
        n=str(note),
    )
    assert (job.status, job.scheduled_at) == ("todo", end)


async def test_a_retry_to_a_device_that_is_gone_ends(client, app, engine, push, fcm):
    ada = await walker(client)
    device = await add_device(client, ada, "android", android_token(16))
    fcm.fail_next(503)
    note = await notify(engine, ada["id"])
    with pytest.raises(sending.PushRetry):
        await sending.send_notification(app.state.database, push, note)
    gone = await client.delete(f"/v1/me/devices/{device}", headers=ada["headers"])
    assert gone.status_code == 204
    assert await sending.send_notification(app.state.database, push, note) == "failed"
    assert await deliveries(engine, note) == [("android", "failed")]


def slice_of(user_id: str) -> int:
    user = uuid.UUID(user_id)
    return next(
        n
        for n in range(sending.DEVICE_SLICES)
        if key_slice(n, sending.DEVICE_SLICES)[0] <= user <= key_slice(n, sending.DEVICE_SLICES)[1]
    )


async def test_the_sweep_drops_devices_whose_sign_in_ended(client, app, engine, push):
    """A slice of the walkers a run (each device once a day): the slice of the signed-out
    walker drops their device, another slice leaves it."""
    ada = await walker(client)
    await add_device(client, ada, "android", android_token(17))
    mine = slice_of(ada["id"])
    await sending.sweep(app.state.database, slice_=mine)
    assert (
        len(await rows(engine, "SELECT id FROM push_devices WHERE user_id = :u", u=ada["id"])) == 1
    )
    out = await client.post("/v1/auth/logout", json={"refresh_token": ada["refresh_token"]})
    assert out.status_code == 204
    await sending.sweep(app.state.database, slice_=mine + 1)
    assert (
        len(await rows(engine, "SELECT id FROM push_devices WHERE user_id = :u", u=ada["id"])) == 1
    )
    await sending.sweep(app.state.database, slice_=mine + sending.DEVICE_SLICES)  # a day on
    assert await rows(engine, "SELECT id FROM push_devices WHERE user_id = :u", u=ada["id"]) == []


def test_the_device_slices_cover_every_walker_once():
    bounds = [key_slice(n, sending.DEVICE_SLICES) for n in range(sending.DEVICE_SLICES)]
    assert bounds[0][0].int == 0 and bounds[-1][1].int == 2**128 - 1
    assert all(a[1].int + 1 == b[0].int for a, b in itertools.pairwise(bounds))

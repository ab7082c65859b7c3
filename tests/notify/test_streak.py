"""Issue 18 item 6 (streak at risk): a few hours before the walker's local midnight, one push
to a walker who met the goal yesterday and not yet today; never twice (also after a worker is
killed mid-send); dropped when quiet hours last until midnight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from push_standin.fcm import FcmServer, FcmStandIn
from stepcoin.db import session_scope
from stepcoin.notify import service as notify
from stepcoin.steps import streaks
from tests.notify.conftest import android_token
from tests.notify.helpers import add_device, one, rows, run_notify_jobs, walker
from tests.steps.helpers import sync


def zone_at(hour: int) -> tuple[str, datetime]:
    """An Etc/GMT zone where the local time is now `hour`:xx, and the local now."""
    now = datetime.now(UTC)
    offset = (hour - now.hour) % 24
    if offset > 14:
        offset -= 24
    name = "Etc/GMT" + (f"{-offset:+d}" if offset else "+0")
    return name, now.astimezone(ZoneInfo(name))


async def walker_at(
    client, hour: int, *, yesterday: int, today: int, quiet=("00:00", "00:00"), n=1
):
    tz, local = zone_at(hour)
    who = await walker(client, quiet=quiet)
    profile = await client.patch("/v1/me", json={"timezone": tz}, headers=who["headers"])
    assert profile.status_code == 200, profile.text
    await add_device(client, who, "android", android_token(n), timezone=tz)
    records = []
    for offset, steps in ((1, yesterday), (0, today)):
        if steps:
            day = (local.date() - timedelta(days=offset)).isoformat()
            records.append({"date": day, "steps": steps, "source": "healthkit"})
    if records:
        await sync(client, who["access_token"], *records)
    who["local"] = local
    return who


async def remind(app) -> int:
    async with session_scope(app.state.database) as session:
        return await streaks.remind(session, datetime.now(UTC))


async def test_one_reminder_a_day_expiring_at_local_midnight(client, app, engine, push, fcm):
    ada = await walker_at(client, 22, yesterday=8000, today=1500)
    async with session_scope(app.state.database) as session:
        due = await notify.walkers_near_midnight(
            session, datetime.now(UTC), 3, unless_key="streak:"
        )
    assert uuid.UUID(ada["id"]) in {n.user_id for n in due}
    assert await remind(app) == 1
    assert await remind(app) == 0  # a second run (or a restarted worker) writes nothing
    async with session_scope(app.state.database) as session:  # ... nor looks at her again
        due = await notify.walkers_near_midnight(
            session, datetime.now(UTC), 3, unless_key="streak:"
        )
        everyone = await notify.walkers_near_midnight(session, datetime.now(UTC), 3)
    assert uuid.UUID(ada["id"]) not in {n.user_id for n in due}
    assert uuid.UUID(ada["id"]) in {n.user_id for n in everyone}
    note = await one(
        engine,
        "SELECT id, kind, expires_at, in_inbox, collapse_key FROM notifications WHERE user_id = :u",
        u=ada["id"],
    )
    local = ada["local"]
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), local.tzinfo)
    assert (note.kind, note.expires_at, note.in_inbox) == ("streak", midnight, False)
    await run_notify_jobs(app)
    assert fcm.received == 1
    assert fcm.sent[0]["android"]["collapse_key"] == "streak"
    await run_notify_jobs(app)
    assert await remind(app) == 0 and fcm.received == 1


async def test_no_reminder_when_not_due(client, app, engine, push):
    met = await walker_at(client, 22, yesterday=8000, today=7000, n=2)  # today's goal met
    no_streak = await walker_at(client, 22, yesterday=300, today=100, n=3)  # nothing to keep
    too_early = await walker_at(client, 13, yesterday=8000, today=100, n=4)  # hours before
    assert await remind(app) == 0
    for who in (met, no_streak, too_early):
        assert (
            await rows(engine, "SELECT id FROM notifications WHERE user_id = :u", u=who["id"]) == []
        )


async def test_quiet_hours_until_after_midnight_drop_it(client, app, engine, push, fcm):
    ada = await walker_at(client, 22, yesterday=8000, today=100, quiet=("21:00", "07:00"))
    assert await remind(app) == 1
    await run_notify_jobs(app)
    status = await one(
        engine, "SELECT push_status FROM notifications WHERE user_id = :u", u=ada["id"]
    )
    assert status[0] == "expired" and fcm.received == 0


def start_worker(database_url: str, server: FcmServer) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        {
            "DATABASE_URL": database_url,
            "STEPCOIN_PUSH_FCM_CREDENTIALS_FILE": server.credentials_file,
            "STEPCOIN_PUSH_FCM_API_URL": server.url,
            "STEPCOIN_JOB_HEARTBEAT_SECONDS": "0.5",
            "STEPCOIN_JOB_STALLED_SECONDS": "2",
            "STEPCOIN_LOG_LEVEL": "WARNING",
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "stepcoin.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


async def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
async def test_killed_worker_never_sends_a_reminder_twice(client, app, engine, database_url):
    standin = FcmStandIn()
    with FcmServer(standin) as server:
        ada = await walker_at(client, 22, yesterday=8000, today=100, n=5)
        assert await remind(app) == 1
        standin.delay = 3.0  # the push is in flight when the worker dies
        first = start_worker(database_url, server)
        try:

            async def in_flight():
                return standin.received == 1

            await wait_for(in_flight, 30, "the push to reach the service")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        delivery = await one(engine, "SELECT status FROM notification_deliveries")
        assert delivery[0] == "sending"  # claimed, the answer never recorded
        assert await remind(app) == 0  # the periodic run again: nothing new
        standin.delay = 0.0
        second = start_worker(database_url, server)
        try:

            async def settled():
                row = await one(
                    engine, "SELECT push_status FROM notifications WHERE user_id = :u", u=ada["id"]
                )
                return row[0] != "pending"

            # the stalled job goes back to the queue at the next second 25 of a minute
            # (queue:retry_stalled_jobs): up to 60 s, plus the worker's start on a busy machine
            await wait_for(settled, 100, "the restarted worker to finish the job")
        finally:
            second.send_signal(signal.SIGTERM)
            try:
                second.wait(15)
            except subprocess.TimeoutExpired:
                second.kill()
        assert standin.received == 1  # never twice
        status = await one(
            engine, "SELECT push_status FROM notifications WHERE user_id = :u", u=ada["id"]
        )
        assert status[0] == "sent"


async def test_the_walkers_own_goal_decides(client, app, engine, push):
    """A goal of one's own (PATCH /v1/me daily_step_goal) replaces the default (6,000)."""
    low = await walker_at(client, 22, yesterday=4000, today=3000, n=5)
    high = await walker_at(client, 22, yesterday=8000, today=7000, n=6)
    for who, goal in ((low, 3500), (high, 7500)):
        changed = await client.patch(
            "/v1/me", json={"daily_step_goal": goal}, headers=who["headers"]
        )
        assert changed.status_code == 200 and changed.json()["daily_step_goal"] == goal
    me = await client.get("/v1/me", headers=high["headers"])
    assert me.json()["daily_step_goal"] == 7500 and "wallet" in me.json()
    # low met 3,500 yesterday and not today: reminded (under the default it would not be)
    # high met 7,500 yesterday (8,000) and not today (7,000): reminded too
    assert await remind(app) == 2
    goals = {
        str(r.user_id): r.data["goal"]
        for r in await rows(
            engine,
            "SELECT user_id, data FROM notifications WHERE user_id IN (:a, :b)",
            a=low["id"],
            b=high["id"],
        )
    }
    assert goals == {low["id"]: 3500, high["id"]: 7500}
    back = await client.patch("/v1/me", json={"daily_step_goal": None}, headers=low["headers"])
    assert back.status_code == 200 and back.json()["daily_step_goal"] is None
    bad = await client.patch("/v1/me", json={"daily_step_goal": 0}, headers=low["headers"])
    assert bad.status_code == 422

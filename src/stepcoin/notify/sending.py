"""Sending one notification's push: the job's work (stepcoin.notify.tasks runs it).

1. Read the notification; done already, expired, inside the walker's quiet hours (the job comes
   back when they end, or the push is dropped when it expires first), or over the daily cap
   of its kind: recorded, nothing sent.
2. Claim each live device (signed in: its refresh family is live) by writing its delivery row
   as `sending` and committing, then call the push service outside any transaction. A worker
   killed after the claim never sends that push again (at most once per device).
3. Record each answer: a dead token removes the device; a 429/5xx leaves the delivery `retry`
   and the job comes back after max(Retry-After, backoff); after MAX_ATTEMPTS it fails.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.db import Database, session_scope
from stepcoin.distribution import key_slice
from stepcoin.notify import service
from stepcoin.notify.kinds import kind
from stepcoin.notify.push import Message, Outcome
from stepcoin.notify.quiet import local_day_start, quiet_until, zone
from stepcoin.notify.senders import Senders
from stepcoin.notify.throttle import throttle
from stepcoin.runtime_settings.service import runtime_settings

logger = logging.getLogger("stepcoin.notify")

MAX_ATTEMPTS: Final = 6  # per device: the first try and five retries
BACKOFF_SECONDS: Final = 5.0  # 5, 10, 20, 40, 80 seconds, or longer when Retry-After says so
MAX_ERROR_LENGTH: Final = 500
RATE_SETTING: Final = "notify.pushes_per_second_per_platform"

LIVE_SESSION = (
    "(d.session_id IS NULL OR EXISTS (SELECT 1 FROM refresh_tokens t "
    "WHERE t.family_id = d.session_id AND t.user_id = d.user_id AND t.revoked_at IS NULL "
    "AND t.expires_at > now() AND t.family_expires_at > now()))"
)


class PushRetry(Exception):
    """Some devices' pushes wait for a retry (429/5xx); `after` is the wait asked for."""

    def __init__(self, notification_id: int, after: float) -> None:
        super().__init__(f"notification {notification_id}: retry in {after:.0f}s")
        self.after = after


class NotBefore(Exception):
    """Quiet hours: come back at `at` (UTC)."""

    def __init__(self, notification_id: int, at: datetime) -> None:
        super().__init__(f"notification {notification_id}: quiet hours until {at.isoformat()}")
        self.at = at


@dataclass
class Claimed:
    """A device a push was claimed for; push_devices is keyed (user_id, id), so every statement
    on a device names its walker too (tests/notify/test_device_reads.py)."""

    user_id: uuid.UUID
    device_id: int
    platform: str
    environment: str
    token: str
    attempts: int


def backoff(attempts: int) -> float:
    return float(BACKOFF_SECONDS * 2 ** max(attempts - 1, 0))


async def _finish(session: AsyncSession, notification_id: int, status: str) -> str:
    await session.execute(
        text(
            "UPDATE notifications SET push_status = :s, push_finished_at = now() "
            "WHERE id = :id AND push_status = 'pending'"
        ),
        {"id": notification_id, "s": status},
    )
    return status


async def _prepare(
    session: AsyncSession, notification_id: int, now: datetime
) -> tuple[dict[str, Any] | None, list[Claimed], str | None]:
    """(the notification, the devices claimed now, a final status when nothing is to send)."""
    row = (
        (
            await session.execute(
                text(
                    """
                    SELECT n.id, n.user_id, n.kind, n.title, n.body, n.data, n.collapse_key,
                           n.expires_at, n.push_status, u.is_active,
                           coalesce((SELECT d.timezone FROM push_devices d
                                     WHERE d.user_id = n.user_id AND d.timezone IS NOT NULL
                                     ORDER BY d.updated_at DESC LIMIT 1), u.timezone) AS tz,
                           coalesce(p.quiet_start, TIME '22:00') AS quiet_start,
                           coalesce(p.quiet_end, TIME '07:00') AS quiet_end
                    FROM notifications n JOIN users u ON u.id = n.user_id
                    LEFT JOIN notification_preferences p ON p.user_id = n.user_id
                    WHERE n.id = :id
                    """
                ),
                {"id": notification_id},
            )
        )
        .mappings()
        .first()
    )
    if row is None or row["push_status"] != "pending":
        return None, [], "done"
    note = dict(row)
    if not note["is_active"]:
        return note, [], await _finish(session, notification_id, "no_device")
    if note["expires_at"] is not None and note["expires_at"] <= now:
        return note, [], await _finish(session, notification_id, "expired")
    spec = kind(note["kind"])
    tz = zone(note["tz"])
    if spec.quiet_hours:
        until = quiet_until(now, tz, note["quiet_start"], note["quiet_end"])
        if until is not None:
            if note["expires_at"] is not None and note["expires_at"] <= until:
                return note, [], await _finish(session, notification_id, "expired")
            raise NotBefore(notification_id, until)
    started = await session.scalar(
        text(
            "SELECT count(*) FROM notification_deliveries WHERE notification_id = :id "
            "AND status <> 'skipped'"
        ),
        {"id": notification_id},
    )
    if not spec.mandatory and not started:
        cap = int(await runtime_settings.get(session, "notify.daily_cap_per_type"))
        # the walker's row serialises the cap check of two pushes of one walker at once (and
        # is taken before any row of notify's, in the order account deletion takes them)
        await session.execute(
            text("SELECT 1 FROM users WHERE id = :u FOR NO KEY UPDATE"), {"u": note["user_id"]}
        )
        today = await session.scalar(
            text(
                "SELECT count(*) FROM notifications n WHERE n.user_id = :u AND n.kind = :k "
                "AND n.created_at >= :since AND n.id <> :id AND (n.push_status = 'sent' OR "
                "(n.push_status = 'pending' AND EXISTS (SELECT 1 FROM notification_deliveries x "
                "WHERE x.notification_id = n.id AND x.status <> 'skipped')))"
            ),
            {
                "u": note["user_id"],
                "k": note["kind"],
                "since": local_day_start(now, tz),
                "id": notification_id,
            },
        )
        if int(today or 0) >= cap:
            return note, [], await _finish(session, notification_id, "capped")
    # devices whose sign-in ended are dropped now (sign-out, password change, session ended)
    await session.execute(
        text(f"DELETE FROM push_devices d WHERE d.user_id = :u AND NOT {LIVE_SESSION}"),
        {"u": note["user_id"]},
    )
    # a push waiting for a retry to a device that is gone (signed out, removed, moved to
    # another walker) ends here, or the job would wait for it for ever
    await session.execute(
        text(
            "UPDATE notification_deliveries x SET status = 'failed', updated_at = now(), "
            "error = 'the device is gone' WHERE x.notification_id = :id AND x.status = 'retry' "
            "AND NOT EXISTS (SELECT 1 FROM push_devices d WHERE d.id = x.device_id "
            "AND d.user_id = :u)"
        ),
        {"id": notification_id, "u": note["user_id"]},
    )
    claimed = (
        (
            await session.execute(
                text(
                    """
                    INSERT INTO notification_deliveries AS x
                        (notification_id, device_id, user_id, platform, status, attempts)
                    SELECT :id, d.id, :u, d.platform, 'sending', 1 FROM push_devices d
                    WHERE d.user_id = :u
                    ON CONFLICT (notification_id, device_id, user_id) DO UPDATE
                        SET status = 'sending', attempts = x.attempts + 1, updated_at = now()
                        WHERE x.status = 'retry'
                    RETURNING x.device_id, x.attempts
                    """
                ),
                {"id": notification_id, "u": note["user_id"]},
            )
        )
        .mappings()
        .all()
    )
    attempts = {int(r["device_id"]): int(r["attempts"]) for r in claimed}
    devices = (
        (
            await session.execute(
                text(
                    "SELECT id, platform, environment, token FROM push_devices "
                    "WHERE user_id = :u AND id = ANY(:ids)"
                ),
                {"u": note["user_id"], "ids": list(attempts)},
            )
        )
        .mappings()
        .all()
    )
    found = [
        Claimed(
            note["user_id"],
            int(d["id"]),
            d["platform"],
            d["environment"],
            d["token"],
            attempts[int(d["id"])],
        )
        for d in devices
    ]
    if not found:
        return note, [], await _conclude(session, notification_id)
    return note, found, None


async def _conclude(session: AsyncSession, notification_id: int) -> str:
    """The notification's status from its deliveries, when none waits for a retry."""
    result = await session.execute(
        text(
            "SELECT status, count(*) FROM notification_deliveries "
            "WHERE notification_id = :id GROUP BY status"
        ),
        {"id": notification_id},
    )
    counts: dict[str, int] = {str(status): int(n) for status, n in result}
    if counts.get("retry"):
        return "retry"
    if not counts:
        return await _finish(session, notification_id, "no_device")
    # `sending` left by a killed worker: the service may have it; it is not sent again
    if counts.get("sent") or counts.get("sending"):
        return await _finish(session, notification_id, "sent")
    return await _finish(session, notification_id, "failed")


def _message(note: dict[str, Any], device: Claimed) -> Message:
    return Message(
        token=device.token,
        environment=device.environment,
        title=note["title"],
        body=note["body"],
        data={**(note["data"] or {}), "notification_id": str(note["id"]), "type": note["kind"]},
        collapse_key=note["collapse_key"],
        expires_at=note["expires_at"],
    )


async def _record(
    session: AsyncSession, notification_id: int, device: Claimed, outcome: Outcome | None
) -> None:
    status, error = _delivery_status(device, outcome)
    await session.execute(
        text(
            "UPDATE notification_deliveries SET status = :s, error = :e, updated_at = now() "
            "WHERE notification_id = :id AND device_id = :d"
        ),
        {
            "s": status,
            "e": (error or "")[:MAX_ERROR_LENGTH] or None,
            "id": notification_id,
            "d": device.device_id,
        },
    )
    if status == "invalidated":  # the push service says the token is dead
        await session.execute(
            text("DELETE FROM push_devices WHERE user_id = :u AND id = :d AND token = :t"),
            {"u": device.user_id, "d": device.device_id, "t": device.token},
        )
    else:
        await _follow_move(session, device, outcome)


async def _follow_move(session: AsyncSession, device: Claimed, outcome: Outcome | None) -> None:
    """The push service says the token belongs to the other environment (APNs sandbox or
    production): the device is sent there from now on."""
    if outcome is not None and outcome.status == "moved" and outcome.environment:
        await session.execute(
            text(
                "UPDATE push_devices SET environment = :e "
                "WHERE user_id = :u AND id = :d AND token = :t"
            ),
            {
                "e": outcome.environment,
                "u": device.user_id,
                "d": device.device_id,
                "t": device.token,
            },
        )


async def send_notification(
    database: Database, senders: Senders, notification_id: int, *, now: datetime | None = None
) -> str:
    """Send one notification's push to the walker's devices; answers the final status, or
    raises NotBefore (quiet hours) or PushRetry (some devices to try again later)."""
    now = now or datetime.now(UTC)
    session: AsyncSession
    async with session_scope(database) as session:
        note, claimed, final = await _prepare(session, notification_id, now)
        rate = int(await runtime_settings.get(session, RATE_SETTING)) if claimed else 0
    if final is not None and final != "retry":
        return final
    assert note is not None
    outcomes: list[tuple[Claimed, Outcome | None]] = []
    for device in claimed:
        sender = senders.for_platform(device.platform)
        outcome = None
        if sender is not None:
            async with senders.in_flight(device.platform):
                await throttle.wait(device.platform, rate)
                outcome = await sender.send(_message(note, device))
        outcomes.append((device, outcome))
        if outcome is not None and outcome.status not in ("sent", "moved"):
            logger.warning(
                "push not delivered",
                extra={
                    "notification_id": notification_id,
                    "device_id": device.device_id,
                    "outcome": outcome.status,
                    "error": outcome.error,
                },
            )
    wait = 0.0
    async with session_scope(database) as session:
        for device, outcome in outcomes:
            await _record(session, notification_id, device, outcome)
            if (
                outcome is not None
                and outcome.status == "retry"
                and (device.attempts < MAX_ATTEMPTS)
            ):
                wait = max(wait, outcome.retry_after or 0.0, backoff(device.attempts))
        status = await _conclude(session, notification_id)
    if status == "retry":
        raise PushRetry(notification_id, wait or BACKOFF_SECONDS)
    return status


SWEEP_AFTER_SECONDS: Final = 120  # a fresh notification has its own job
SWEEP_DAYS: Final = 2
SWEEP_BATCH: Final = 1000
DEVICE_SLICES: Final = 288
"""The sweep drops the ended sign-ins' devices of one of this many slices of the walkers a run
(one range of push_devices' key): every five minutes, each device once a day. A push drops
the walker's at once anyway (`_prepare`): the sweep only keeps the table from keeping them.
Checking every device each run read the whole table every five minutes."""


async def sweep(database: Database, *, slice_: int | None = None) -> int:
    """Queue again every push left pending without a job (a job that failed on something
    unexpected: the database gone for a moment); one job per notification at most (its
    queueing lock), and one waiting for quiet hours or a retry is left as it is. And drop the
    devices whose sign-in ended (a push to such a walker drops them at once anyway) of key
    slice `slice_` of DEVICE_SLICES (by default the slice of the current five minutes)."""
    if slice_ is None:
        slice_ = int(time.time()) // 300
    low, high = key_slice(slice_, DEVICE_SLICES)
    session: AsyncSession
    async with session_scope(database) as session:
        ids = (
            await session.execute(
                text(
                    "SELECT n.id FROM notifications n WHERE n.push_status = 'pending' "
                    "AND n.created_at < now() - make_interval(secs => :fresh) "
                    "AND n.created_at > now() - make_interval(days => :days) "
                    "AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j "
                    "WHERE j.lock = 'notify:' || n.id AND j.status IN ('todo', 'doing')) "
                    "AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j "
                    "WHERE j.task_name = 'notify:send_batch' AND j.status IN ('todo', 'doing') "
                    "AND j.args -> 'notification_ids' @> to_jsonb(n.id)) "
                    "ORDER BY n.created_at LIMIT :limit"
                ),
                {"fresh": SWEEP_AFTER_SECONDS, "days": SWEEP_DAYS, "limit": SWEEP_BATCH},
            )
        ).scalars()
        queued = 0
        for notification_id in list(ids):
            if await service.queue_send(session, int(notification_id)) is not None:
                queued += 1
        # devices whose sign-in ended (sign-out, password change, sessions ended elsewhere)
        await session.execute(
            text(
                "DELETE FROM push_devices d WHERE d.user_id BETWEEN :low AND :high "
                f"AND d.session_id IS NOT NULL AND NOT {LIVE_SESSION}"
            ),
            {"low": low, "high": high},
        )
    if queued:
        logger.info("pending pushes queued again", extra={"queued": queued})
    return queued


# --- many notifications in one job (a broadcast) ----------------------------------------


async def _one_by_one(session: AsyncSession, ids: list[int], *, after: float = 0.0) -> None:
    """Hand notifications to their own `notify:send` job (quiet hours, a retry, a replay): the
    one-by-one path knows every case; `after` seconds from now (a retry's wait)."""
    for notification_id in ids:
        job = await service.queue_send(session, notification_id)
        if job is not None and after > 0:
            await session.execute(
                text(
                    "UPDATE procrastinate_jobs SET scheduled_at = now() + "
                    "make_interval(secs => :after) WHERE id = :job"
                ),
                {"job": job, "after": after},
            )


async def _prepare_batch(
    session: AsyncSession, ids: list[int], now: datetime
) -> tuple[dict[int, dict[str, Any]], dict[int, list[Claimed]]]:
    """The set-based `_prepare` of many notifications: one statement for each step instead of
    one per notification. Whatever is not the plain case (quiet hours now, a notification
    with deliveries already: a replay) goes to the one-by-one path."""
    rows = (
        (
            await session.execute(
                text(
                    """
                    SELECT n.id, n.user_id, n.kind, n.title, n.body, n.data, n.collapse_key,
                           n.expires_at, n.push_status, u.is_active,
                           coalesce((SELECT d.timezone FROM push_devices d
                                     WHERE d.user_id = n.user_id AND d.timezone IS NOT NULL
                                     ORDER BY d.updated_at DESC LIMIT 1), u.timezone) AS tz,
                           coalesce(p.quiet_start, TIME '22:00') AS quiet_start,
                           coalesce(p.quiet_end, TIME '07:00') AS quiet_end,
                           EXISTS (SELECT 1 FROM notification_deliveries x
                                   WHERE x.notification_id = n.id) AS started
                    FROM notifications n JOIN users u ON u.id = n.user_id
                    LEFT JOIN notification_preferences p ON p.user_id = n.user_id
                    WHERE n.id = ANY(:ids) AND n.push_status = 'pending'
                    """
                ),
                {"ids": ids},
            )
        )
        .mappings()
        .all()
    )
    finish: dict[str, list[int]] = {"no_device": [], "expired": [], "capped": []}
    later: list[int] = []
    notes: dict[int, dict[str, Any]] = {}
    since: dict[int, datetime] = {}
    for row in rows:
        note = dict(row)
        nid = int(note["id"])
        spec = kind(note["kind"])
        tz = zone(note["tz"])
        if not note["is_active"]:
            finish["no_device"].append(nid)
        elif note["expires_at"] is not None and note["expires_at"] <= now:
            finish["expired"].append(nid)
        elif note["started"] or (
            spec.quiet_hours and quiet_until(now, tz, note["quiet_start"], note["quiet_end"])
        ):
            later.append(nid)
        else:
            notes[nid] = note
            if not spec.mandatory:
                since[nid] = local_day_start(now, tz)
    users = sorted({n["user_id"] for n in notes.values()})
    if since:
        cap = int(await runtime_settings.get(session, "notify.daily_cap_per_type"))
        # the walkers' rows, in id order, serialise the cap as `_prepare` does
        await session.execute(
            text("SELECT 1 FROM users WHERE id = ANY(:u) ORDER BY id FOR NO KEY UPDATE"),
            {"u": users},
        )
        over = await session.execute(
            text(
                "SELECT t.id FROM unnest(CAST(:ids AS bigint[]), CAST(:users AS uuid[]), "
                "CAST(:kinds AS text[]), CAST(:since AS timestamptz[])) AS t(id, u, k, since) "
                "WHERE (SELECT count(*) FROM notifications n WHERE n.user_id = t.u "
                "AND n.kind = t.k AND n.created_at >= t.since AND n.id <> t.id AND "
                "(n.push_status = 'sent' OR (n.push_status = 'pending' AND EXISTS (SELECT 1 "
                "FROM notification_deliveries x WHERE x.notification_id = n.id "
                "AND x.status <> 'skipped')))) >= :cap"
            ),
            {
                "ids": list(since),
                "users": [notes[i]["user_id"] for i in since],
                "kinds": [notes[i]["kind"] for i in since],
                "since": list(since.values()),
                "cap": cap,
            },
        )
        for nid in over.scalars():
            finish["capped"].append(int(nid))
            notes.pop(int(nid))
    if users:
        await session.execute(
            text(f"DELETE FROM push_devices d WHERE d.user_id = ANY(:u) AND NOT {LIVE_SESSION}"),
            {"u": users},
        )
    claimed: dict[int, list[Claimed]] = {nid: [] for nid in notes}
    if notes:
        result = await session.execute(
            text(
                """
                INSERT INTO notification_deliveries AS x
                    (notification_id, device_id, user_id, platform, status, attempts)
                SELECT t.id, d.id, t.u, d.platform, 'sending', 1
                FROM unnest(CAST(:ids AS bigint[]), CAST(:users AS uuid[])) AS t(id, u)
                JOIN push_devices d ON d.user_id = t.u
                ON CONFLICT (notification_id, device_id, user_id) DO NOTHING
                RETURNING x.notification_id, x.device_id
                """
            ),
            {"ids": list(notes), "users": [n["user_id"] for n in notes.values()]},
        )
        pairs = [(int(r.notification_id), int(r.device_id)) for r in result]
        devices = {
            int(d.id): d
            for d in await session.execute(
                text(
                    "SELECT d.id, d.platform, d.environment, d.token FROM push_devices d "
                    "JOIN unnest(CAST(:users AS uuid[]), CAST(:ids AS bigint[])) AS t(u, id) "
                    "ON d.user_id = t.u AND d.id = t.id"
                ),
                {"users": [notes[n]["user_id"] for n, _ in pairs], "ids": [d for _, d in pairs]},
            )
        }
        for nid, did in pairs:
            d = devices.get(did)
            if d is not None:
                claimed[nid].append(
                    Claimed(notes[nid]["user_id"], did, d.platform, d.environment, d.token, 1)
                )
        for nid in [n for n, found in claimed.items() if not found]:
            finish["no_device"].append(nid)
            del claimed[nid], notes[nid]
    for status, finished in finish.items():
        if finished:
            await session.execute(
                text(
                    "UPDATE notifications SET push_status = :s, push_finished_at = now() "
                    "WHERE id = ANY(:ids) AND push_status = 'pending'"
                ),
                {"s": status, "ids": finished},
            )
    await _one_by_one(session, later)
    return notes, claimed


async def send_batch(
    database: Database, senders: Senders, ids: list[int], *, now: datetime | None = None
) -> dict[str, int]:
    """Send many notifications' pushes in one job, set-based (a broadcast): the same rules and
    the same at-most-once claim as `send_notification`, a few statements for the whole batch
    and the pushes in flight together (under the throttle). A push to retry goes on in a job
    of its own, after the wait the service asked for."""
    now = now or datetime.now(UTC)
    session: AsyncSession
    async with session_scope(database) as session:
        notes, claimed = await _prepare_batch(session, ids, now)
        rate = int(await runtime_settings.get(session, RATE_SETTING)) if claimed else 0

    async def push(nid: int, device: Claimed) -> tuple[int, Claimed, Outcome | None]:
        sender = senders.for_platform(device.platform)
        if sender is None:
            return nid, device, None
        async with senders.in_flight(device.platform):
            await throttle.wait(device.platform, rate)
            return nid, device, await sender.send(_message(notes[nid], device))

    outcomes = await asyncio.gather(
        *(push(nid, device) for nid, devices in claimed.items() for device in devices)
    )
    counts: dict[str, int] = {}
    async with session_scope(database) as session:
        columns: dict[str, list[Any]] = {"n": [], "d": [], "s": [], "e": []}
        dead: list[Claimed] = []
        wait = 0.0
        for nid, device, outcome in outcomes:
            status, error = _delivery_status(device, outcome)
            counts[status] = counts.get(status, 0) + 1
            columns["n"].append(nid)
            columns["d"].append(device.device_id)
            columns["s"].append(status)
            columns["e"].append((error or "")[:MAX_ERROR_LENGTH] or None)
            if status == "invalidated":
                dead.append(device)
            elif status == "retry" and outcome is not None:
                wait = max(wait, outcome.retry_after or 0.0, backoff(device.attempts))
            await _follow_move(session, device, outcome)
        if columns["n"]:
            await session.execute(
                text(
                    "UPDATE notification_deliveries x SET status = t.s, error = t.e, "
                    "updated_at = now() FROM unnest(CAST(:n AS bigint[]), CAST(:d AS bigint[]), "
                    "CAST(:s AS text[]), CAST(:e AS text[])) AS t(n, d, s, e) "
                    "WHERE x.notification_id = t.n AND x.device_id = t.d"
                ),
                columns,
            )
        if dead:
            await session.execute(
                text(
                    "DELETE FROM push_devices d USING unnest(CAST(:users AS uuid[]), "
                    "CAST(:ids AS bigint[]), CAST(:tokens AS text[])) AS t(u, id, token) "
                    "WHERE d.user_id = t.u AND d.id = t.id AND d.token = t.token"
                ),
                {
                    "users": [d.user_id for d in dead],
                    "ids": [d.device_id for d in dead],
                    "tokens": [d.token for d in dead],
                },
            )
        if claimed:
            retrying = await session.execute(
                text(
                    """
                    WITH c AS (
                        SELECT notification_id AS id,
                               bool_or(status = 'retry') AS retry,
                               bool_or(status IN ('sent', 'sending')) AS sent
                        FROM notification_deliveries WHERE notification_id = ANY(:ids)
                        GROUP BY notification_id
                    ), done AS (
                        UPDATE notifications n
                        SET push_status = CASE WHEN c.sent THEN 'sent' ELSE 'failed' END,
                            push_finished_at = now()
                        FROM c WHERE n.id = c.id AND NOT c.retry AND n.push_status = 'pending'
                    )
                    SELECT id FROM c WHERE retry
                    """
                ),
                {"ids": list(claimed)},
            )
            await _one_by_one(session, [int(i) for i in retrying.scalars()], after=wait)
    return counts


def _delivery_status(device: Claimed, outcome: Outcome | None) -> tuple[str, str | None]:
    """A delivery's status from the push service's answer (as `_record` decides it)."""
    if outcome is None:
        return "skipped", "no sender configured for this platform"
    if outcome.status in ("sent", "moved"):
        return "sent", None
    if outcome.status == "invalid":
        return "invalidated", outcome.error
    if outcome.status == "retry" and device.attempts < MAX_ATTEMPTS:
        return "retry", outcome.error
    return "failed", outcome.error

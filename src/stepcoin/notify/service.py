"""The rules of notifications: the one entry point features call (`notify`, in their own
transaction), push devices, the inbox and the walker's preferences."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Final

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import global_keys
from stepcoin.errors import InvalidInput, NotFound
from stepcoin.notify.kinds import KINDS, kind
from stepcoin.notify.quiet import (
    DEFAULT_QUIET_END,
    DEFAULT_QUIET_START,
    next_local_midnight,
    zone,
)
from stepcoin.pagination import bigint_id, decode_cursor, page
from stepcoin.queue import (
    NOTIFY_SEND,
    NOTIFY_SEND_BATCH,
    defer_in_transaction,
    defer_many_in_transaction,
)

QUEUE: Final = "notify"
MAX_TITLE: Final = 200
MAX_BODY: Final = 1000
MAX_DATA_BYTES: Final = 2048
MAX_DEVICES_PER_WALKER: Final = 20
_APNS_TOKEN = re.compile(r"^[0-9a-fA-F]{64,200}$")
_FCM_TOKEN = re.compile(r"^[A-Za-z0-9_:\-\.]{20,4096}$")


JOB_LOCK_PREFIX: Final = "notify:"


def job_lock(notification_id: int) -> str:
    return f"{JOB_LOCK_PREFIX}{notification_id}"


# --- the entry point for features -------------------------------------------------------


async def preferences_row(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    row = (
        (
            await session.execute(
                text(
                    "SELECT kinds, quiet_start, quiet_end FROM notification_preferences "
                    "WHERE user_id = :u"
                ),
                {"u": user_id},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return {"kinds": {}, "quiet_start": DEFAULT_QUIET_START, "quiet_end": DEFAULT_QUIET_END}
    return dict(row)


def switches(kinds: dict[str, Any], name: str) -> tuple[bool, bool]:
    """(push, inbox) for one kind: the walker's choice or the kind's default; a mandatory
    kind is always on."""
    spec = kind(name)
    if spec.mandatory:
        return True, True
    chosen = kinds.get(name) or {}
    return bool(chosen.get("push", spec.push)), bool(chosen.get("inbox", spec.inbox))


@dataclass(frozen=True, slots=True)
class Note:
    """One notification to write (see `notify`)."""

    user_id: uuid.UUID
    type: str
    title: str
    body: str
    dedupe_key: str
    data: dict[str, Any] = field(default_factory=dict)
    collapse_key: str | None = None
    expires_at: datetime | None = None
    push: bool = True


async def notify(
    session: AsyncSession,
    user_id: uuid.UUID,
    type: str,
    title: str,
    body: str,
    data: dict[str, Any] | None = None,
    *,
    dedupe_key: str,
    collapse_key: str | None = None,
    expires_at: datetime | None = None,
    push: bool = True,
) -> int | None:
    """Write a notification in the caller's transaction and queue its push: it exists, and is
    sent, exactly when the caller's change commits. The same (walker, dedupe_key) a second
    time is a no-op (None): one event, one notification. (A caller whose write is one SQL
    statement builds the row with `note_row` and writes it with stepcoin_notify.)"""
    note = Note(user_id, type, title, body, dedupe_key, data or {}, collapse_key, expires_at, push)
    written = await notify_many(session, [note])
    return written[0] if written else None


def note_row(note: Note, kinds: Mapping[str, Any] | None, reachable: bool) -> dict[str, Any]:
    """The notifications row one note becomes for a walker with these switches
    (notification_preferences.kinds; None: no row) and push reach: the limits, whether it is in
    the inbox, and its push status (pending, no_device, off, none). `push`: the send job a
    pending push gets (notify_many queues it; SQL callers pass the row to stepcoin_notify,
    notify/sql/notify_one.v1.sql)."""
    kind(note.type)  # an unknown kind is the caller's bug
    push_on, inbox_on = switches(dict(kinds or {}), note.type)
    payload = orjson.dumps(note.data)
    if len(payload) > MAX_DATA_BYTES:
        raise ValueError(f"notification data over {MAX_DATA_BYTES} bytes")
    if note.push and push_on:
        status = "pending" if reachable else "no_device"
    else:
        status = "off" if note.push else "none"
    return {
        "user_id": note.user_id,
        "kind": note.type,
        "title": note.title[:MAX_TITLE],
        "body": note.body[:MAX_BODY],
        "data": payload.decode(),
        "dedupe_key": note.dedupe_key[:200],
        "collapse_key": note.collapse_key[:64] if note.collapse_key else None,
        "expires_at": note.expires_at,
        "in_inbox": inbox_on,
        "push_status": status,
        "push": {"queue": QUEUE, "task": NOTIFY_SEND, "lock_prefix": JOB_LOCK_PREFIX},
    }


# _INSERT_MANY's arrays, each from note_row's key
_COLUMNS: Final = {
    "users": "user_id",
    "kinds": "kind",
    "titles": "title",
    "bodies": "body",
    "data": "data",
    "dedupe": "dedupe_key",
    "collapse": "collapse_key",
    "expires": "expires_at",
    "inbox": "in_inbox",
    "status": "push_status",
}


_INSERT_MANY = text(
    """
    INSERT INTO notifications (user_id, kind, title, body, data, dedupe_key, collapse_key,
                               expires_at, in_inbox, push_status)
    SELECT * FROM unnest(CAST(:users AS uuid[]), CAST(:kinds AS text[]),
                         CAST(:titles AS text[]), CAST(:bodies AS text[]),
                         CAST(:data AS jsonb[]), CAST(:dedupe AS text[]),
                         CAST(:collapse AS text[]), CAST(:expires AS timestamptz[]),
                         CAST(:inbox AS boolean[]), CAST(:status AS text[]))
    ON CONFLICT (user_id, dedupe_key) DO NOTHING
    RETURNING id, push_status
    """
)


async def notify_many(
    session: AsyncSession,
    notes: Sequence[Note],
    *,
    batch: int | None = None,
) -> list[int]:
    """`notify` for many walkers at once (a batch of unlocks): one read of the preferences, one
    insert, one statement that queues the pushes. Returns the ids of the new notifications.
    With `batch` (a broadcast), the pushes are queued `batch` to a job (notify:send_batch,
    set-based) instead of one job each."""
    if not notes:
        return []
    for note in notes:
        kind(note.type)  # an unknown kind is the caller's bug
    users = sorted({n.user_id for n in notes})
    # the walkers' switches and whether they have a push device at all: a walker without one
    # gets the inbox row only (push_status no_device), never a push job (an unlock for each of
    # thousands of walkers without the app's push would otherwise queue a job each)
    prefs: dict[uuid.UUID, Any] = {}
    reachable: set[uuid.UUID] = set()
    for row in await session.execute(
        text(
            "SELECT u.id, p.kinds, EXISTS (SELECT 1 FROM push_devices d "
            "WHERE d.user_id = u.id) AS reachable FROM unnest(CAST(:u AS uuid[])) AS u(id) "
            "LEFT JOIN notification_preferences p ON p.user_id = u.id"
        ),
        {"u": users},
    ):
        prefs[row.id] = row.kinds
        if row.reachable:
            reachable.add(row.id)
    built = [note_row(n, prefs.get(n.user_id), n.user_id in reachable) for n in notes]
    columns = {column: [row[key] for row in built] for column, key in _COLUMNS.items()}
    rows = (await session.execute(_INSERT_MANY, columns)).all()
    pending = sorted(int(r.id) for r in rows if r.push_status == "pending")
    if batch:
        await defer_many_in_transaction(
            session,
            NOTIFY_SEND_BATCH,
            [
                ({"notification_ids": pending[i : i + batch]}, None)
                for i in range(0, len(pending), batch)
            ],
            queue=QUEUE,
        )
    else:
        await defer_many_in_transaction(
            session,
            NOTIFY_SEND,
            [({"notification_id": i}, job_lock(i)) for i in pending],
            queue=QUEUE,
        )
    return sorted(int(r.id) for r in rows)


async def queue_send(session: AsyncSession, notification_id: int) -> int | None:
    """Queue a notification's push again (one job waits at most: the queueing lock)."""
    return await defer_in_transaction(
        session,
        NOTIFY_SEND,
        {"notification_id": notification_id},
        lock=job_lock(notification_id),
        queueing_lock=job_lock(notification_id),
        queue=QUEUE,
    )


@dataclass(frozen=True, slots=True)
class NearMidnight:
    user_id: uuid.UUID
    local_day: date
    midnight: datetime  # the end of that day, UTC


async def walkers_near_midnight(
    session: AsyncSession, now: datetime, hours: int, *, unless_key: str | None = None
) -> list[NearMidnight]:
    """Active walkers with a push device whose local time (their newest device's zone, else
    their account's) is within `hours` of midnight: the streak reminder's audience. One scan
    of push_devices; the zone arithmetic runs once per zone in use. `unless_key`: leave out
    walkers who already have the notification `<unless_key><local day>` (a primary-key probe
    each), so the runs after the first one of the evening skip those already told instead of
    writing nothing again for every one of them."""
    rows = await session.execute(
        text(
            """
            WITH walkers AS (
                SELECT DISTINCT ON (d.user_id) d.user_id,
                       coalesce(d.timezone, u.timezone, 'UTC') AS tz
                FROM push_devices d JOIN users u ON u.id = d.user_id AND u.is_active
                ORDER BY d.user_id, d.updated_at DESC, d.id DESC
            ), zones AS (
                SELECT w.tz, (CAST(:now AS timestamptz) AT TIME ZONE w.tz) AS local_now
                FROM (SELECT DISTINCT tz FROM walkers) w
                WHERE w.tz IN (SELECT name FROM pg_timezone_names)
            )
            SELECT w.user_id, w.tz, z.local_now::date AS local_day
            FROM walkers w JOIN zones z ON z.tz = w.tz
            WHERE z.local_now::time >= make_time(24 - :hours, 0, 0)
              AND (CAST(:unless AS text) IS NULL OR NOT EXISTS (
                  SELECT 1 FROM notifications n WHERE n.user_id = w.user_id
                  AND n.dedupe_key = CAST(:unless AS text) || to_char(z.local_now, 'YYYY-MM-DD')))
            """
        ),
        {"now": now, "hours": hours, "unless": unless_key},
    )
    return [
        NearMidnight(r.user_id, r.local_day, next_local_midnight(now, zone(r.tz))) for r in rows
    ]


# --- figures for the senders of many notifications (a broadcast) ------------------------


async def devices_of_walkers(
    session: AsyncSession, users_where: str, params: dict[str, Any]
) -> dict[str, int]:
    """Live push devices per platform of the walkers matching `users_where`, a condition on
    `users u` written by the caller (a broadcast's segment): what a preview shows."""
    rows = await session.execute(
        text(
            "SELECT d.platform, count(*) AS n FROM push_devices d JOIN users u ON u.id = d.user_id "
            f"WHERE {users_where} GROUP BY d.platform"
        ),
        params,
    )
    counts = {"ios": 0, "android": 0}
    counts.update({str(r.platform): int(r.n) for r in rows})
    return counts


async def delivery_figures(
    session: AsyncSession, kind_name: str, dedupe_key: str
) -> dict[str, Any]:
    """How the notifications of one event sent to many walkers (kind and dedupe key, e.g. a
    broadcast's) fared: notifications per push status, and deliveries per device status."""
    # the kind written into the text (a name from KINDS), so that the partial index on a
    # broadcast's dedupe key is used by a generic plan too
    k = kind(kind_name).name
    params = {"key": dedupe_key}
    notes = {
        str(r.push_status): int(r.n)
        for r in await session.execute(
            text(
                "SELECT push_status, count(*) AS n FROM notifications "
                f"WHERE kind = '{k}' AND dedupe_key = :key GROUP BY push_status"
            ),
            params,
        )
    }
    deliveries = {
        str(r.status): int(r.n)
        for r in await session.execute(
            text(
                "SELECT x.status, count(*) AS n FROM notifications n "
                "JOIN notification_deliveries x ON x.notification_id = n.id "
                f"WHERE n.kind = '{k}' AND n.dedupe_key = :key GROUP BY x.status"
            ),
            params,
        )
    }
    return {"notifications": notes, "deliveries": deliveries}


# --- devices -----------------------------------------------------------------------------


def _check_device(platform: str, token: str, timezone: str | None) -> None:
    pattern = _APNS_TOKEN if platform == "ios" else _FCM_TOKEN
    if not pattern.match(token):
        raise InvalidInput(
            "This is not a push token of that platform (iOS: the APNs token in hex; Android: "
            "the FCM registration token).",
            code="invalid_push_token",
        )
    if timezone is not None and zone(timezone).key != timezone:
        raise InvalidInput("Unknown time zone (an IANA name).", code="invalid_timezone")


async def register_device(
    session: AsyncSession,
    user_id: uuid.UUID,
    session_id: uuid.UUID | None,
    *,
    platform: str,
    environment: str,
    token: str,
    app_version: str | None,
    timezone: str | None,
) -> tuple[int, bool]:
    """Bind a push token to this walker and sign-in; (device id, created). A token another
    walker had moves here (one install, one signed-in walker)."""
    _check_device(platform, token, timezone)
    # the token's one owner is in global_keys (push_devices is unique per walker only: issue
    # 19 item 4); a token another walker had leaves their devices, keeping its id
    previous = await global_keys.take(
        session, "push_token", global_keys.push_token_key(platform, token), user_id
    )
    moved_id = None
    if previous is not None:
        moved_id = (
            await session.execute(
                text(
                    "DELETE FROM push_devices WHERE user_id = :u AND platform = :platform "
                    "AND token = :token RETURNING id"
                ),
                {"u": previous, "platform": platform, "token": token},
            )
        ).scalar_one_or_none()
    id_column, id_value = ("id, ", ":id, ") if moved_id is not None else ("", "")
    row = (
        await session.execute(
            text(
                f"""
                INSERT INTO push_devices AS d ({id_column}user_id, session_id, platform,
                                               environment, token, app_version, timezone)
                VALUES ({id_value}:u, :sid, :platform, :env, :token, :version, :tz)
                ON CONFLICT (user_id, platform, token) DO UPDATE SET
                    session_id = EXCLUDED.session_id,
                    environment = EXCLUDED.environment, app_version = EXCLUDED.app_version,
                    timezone = EXCLUDED.timezone, updated_at = now()
                RETURNING id, (xmax = 0) AS created
                """
            ),
            {
                "id": moved_id,
                "u": user_id,
                "sid": session_id,
                "platform": platform,
                "env": environment,
                "token": token,
                "version": app_version,
                "tz": timezone,
            },
        )
    ).one()
    # the oldest devices beyond the limit go (a walker re-installing many times)
    await session.execute(
        text(
            "DELETE FROM push_devices WHERE user_id = :u AND id IN (SELECT id FROM push_devices "
            "WHERE user_id = :u ORDER BY updated_at DESC, id DESC OFFSET :keep)"
        ),
        {"u": user_id, "keep": MAX_DEVICES_PER_WALKER},
    )
    return int(row.id), bool(row.created) and moved_id is None


async def list_devices(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT id, platform, environment, app_version, timezone, created_at, updated_at "
            "FROM push_devices WHERE user_id = :u ORDER BY updated_at DESC, id DESC"
        ),
        {"u": user_id},
    )
    return [dict(r) for r in rows.mappings()]


async def delete_device(session: AsyncSession, user_id: uuid.UUID, device_id: int) -> None:
    deleted = (
        await session.execute(
            text("DELETE FROM push_devices WHERE id = :id AND user_id = :u RETURNING id"),
            {"id": device_id, "u": user_id},
        )
    ).first()
    if deleted is None:
        raise NotFound("No such device.", code="device_not_found")


# --- the inbox ---------------------------------------------------------------------------

_INBOX_COLUMNS = "id, kind AS type, title, body, data, created_at, read_at"


# One look at ix_notifications_unread (migration 0061), which holds only the unread entries.
UNREAD_SQL = (
    "SELECT count(*) FROM notifications WHERE user_id = :u AND in_inbox AND read_at IS NULL"
)


async def inbox(
    session: AsyncSession, user_id: uuid.UUID, *, limit: int, cursor: str | None, unread: bool
) -> dict[str, Any]:
    """The walker's inbox, newest first, by keyset pages; and how many are unread.

    The page keeps `LIMIT :limit` and a cursor the planner sees, so each read is planned for
    its walker (a custom plan): with the limit in the text and the cursor out of the planner's
    sight (as the ledger page has them) the one generic plan guessed a walker's entries from
    the average walker's, and for a walker with 2,000 entries among walkers with a few it
    sorted all 2,000 for each page (1.5 ms against 0.33; BENCHMARKS.md run 28)."""
    params: dict[str, Any] = {"u": user_id, "limit": limit + 1}
    where = "user_id = :u AND in_inbox"
    if unread:
        where += " AND read_at IS NULL"
    if cursor:
        params["before_at"], params["before_id"] = decode_cursor(cursor, bigint_id)
        where += " AND (created_at, id) < (:before_at, :before_id)"
    rows = await session.execute(
        text(
            f"SELECT {_INBOX_COLUMNS} FROM notifications WHERE {where} "
            "ORDER BY created_at DESC, id DESC LIMIT :limit"
        ),
        params,
    )
    result = page([dict(r) for r in rows.mappings()], limit)
    result["unread"] = int((await session.execute(text(UNREAD_SQL), {"u": user_id})).scalar_one())
    return result


async def mark_read(
    session: AsyncSession, user_id: uuid.UUID, notification_id: int
) -> dict[str, Any]:
    """Mark one inbox entry read (again: unchanged); another walker's is a 404."""
    row = (
        (
            await session.execute(
                text(
                    "UPDATE notifications SET read_at = coalesce(read_at, now()) "
                    f"WHERE id = :id AND user_id = :u AND in_inbox RETURNING {_INBOX_COLUMNS}"
                ),
                {"id": notification_id, "u": user_id},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound("No such notification.", code="notification_not_found")
    return dict(row)


async def mark_all_read(session: AsyncSession, user_id: uuid.UUID) -> int:
    result = await session.execute(
        text(
            "UPDATE notifications SET read_at = now() "
            "WHERE user_id = :u AND in_inbox AND read_at IS NULL"
        ),
        {"u": user_id},
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- preferences -------------------------------------------------------------------------


def preferences_view(row: dict[str, Any]) -> dict[str, Any]:
    types = {}
    for name, spec in KINDS.items():
        push, inbox_on = switches(row["kinds"], name)
        types[name] = {
            "push": push,
            "inbox": inbox_on,
            "mandatory": spec.mandatory,
            "description": spec.description,
        }
    return {
        "types": types,
        "quiet_start": row["quiet_start"].strftime("%H:%M"),
        "quiet_end": row["quiet_end"].strftime("%H:%M"),
    }


async def get_preferences(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    return preferences_view(await preferences_row(session, user_id))


async def set_preferences(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    types: dict[str, dict[str, bool | None]],
    quiet_start: time | None,
    quiet_end: time | None,
) -> dict[str, Any]:
    """Change some switches and/or the quiet hours; what is not named stays as it was."""
    unknown = sorted(set(types) - set(KINDS))
    if unknown:
        raise InvalidInput(
            f"Unknown notification types: {', '.join(unknown)}.",
            code="unknown_notification_type",
            extra={"types": unknown},
        )
    locked = sorted(
        name
        for name, change in types.items()
        if KINDS[name].mandatory and False in (change.get("push"), change.get("inbox"))
    )
    if locked:
        raise InvalidInput(
            f"These notifications cannot be turned off: {', '.join(locked)}.",
            code="notification_mandatory",
            extra={"types": locked},
        )
    current = await preferences_row(session, user_id)
    kinds = {k: dict(v) for k, v in current["kinds"].items() if k in KINDS}
    for name, change in types.items():
        for switch in ("push", "inbox"):
            if change.get(switch) is not None:
                kinds.setdefault(name, {})[switch] = bool(change[switch])
    start = (quiet_start or current["quiet_start"]).replace(tzinfo=None, second=0, microsecond=0)
    end = (quiet_end or current["quiet_end"]).replace(tzinfo=None, second=0, microsecond=0)
    await session.execute(
        text(
            "INSERT INTO notification_preferences (user_id, kinds, quiet_start, quiet_end) "
            "VALUES (:u, CAST(:kinds AS jsonb), :start, :end) ON CONFLICT (user_id) DO UPDATE "
            "SET kinds = EXCLUDED.kinds, quiet_start = EXCLUDED.quiet_start, "
            "quiet_end = EXCLUDED.quiet_end, updated_at = now()"
        ),
        {"u": user_id, "kinds": orjson.dumps(kinds).decode(), "start": start, "end": end},
    )
    return preferences_view({"kinds": kinds, "quiet_start": start, "quiet_end": end})


# --- the account lifecycle ---------------------------------------------------------------


async def forget(session: AsyncSession, user_id: uuid.UUID) -> dict[str, int]:
    """Account deletion: devices, notifications (with their deliveries) and preferences go."""
    counts = {}
    for table in ("push_devices", "notifications", "notification_preferences"):
        result = await session.execute(
            text(f"DELETE FROM {table} WHERE user_id = :u"), {"u": user_id}
        )
        counts[table] = int(getattr(result, "rowcount", 0) or 0)
    return counts


async def export_of(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """The walker's part of the data export: devices (no tokens), the inbox, preferences."""
    rows = await session.execute(
        text(
            f"SELECT {_INBOX_COLUMNS}, in_inbox, push_status FROM notifications "
            "WHERE user_id = :u ORDER BY created_at DESC, id DESC"
        ),
        {"u": user_id},
    )
    return {
        "devices": await list_devices(session, user_id),
        "notifications": [dict(r) for r in rows.mappings()],
        "preferences": await get_preferences(session, user_id),
    }

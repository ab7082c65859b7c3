"""Links between accounts (issue 16, item 1), and what staff see of them.

Two accounts are linked when
- a device synced steps for both (`shared_device`; `device_accounts`, written by the sync),
- both were made from one client address (`shared_address`; `users.signup_address`, a keyed
  digest written at sign-up), or
- they sent the same daily step series (`same_series`; `account_flags`, raised by the job
  fairplay:scan_series below).

Links are evidence, not verdicts. The rules that act on them are plain functions beside the
single-walker rules (stepcoin.steps.rules: `shared_device`, `signup_burst`, `same_series`);
they flag days for review and never reject. A household shares an address: an address link
alone is shown to staff but is a self-referral signal only when the address made more accounts
than a household (`fairplay.household_max_accounts`).

A reviewer who finds a walker's links fine clears them (`clear`): the rules stay quiet for that
walker until more accounts join the link than were cleared.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import audit
from stepcoin.runtime_settings.service import runtime_settings

LINK_CODES = ("shared_device", "signup_burst", "same_series")
MAX_LINKS_SHOWN = 50


@dataclass(slots=True)
class Link:
    """Another account linked to the walker, and by what."""

    user_id: uuid.UUID
    email: str
    full_name: str
    created_at: datetime
    is_active: bool
    via: list[str]
    devices: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "user_id": str(self.user_id),
            "email": self.email,
            "full_name": self.full_name,
            "created_at": self.created_at.isoformat(),
            "is_active": self.is_active,
            "via": self.via,
            "devices": self.devices,
        }


LINKS_SQL = text(
    """
    WITH l AS (
        SELECT m.user_id AS uid, o.user_id AS other, 'shared_device' AS via,
               m.device_id AS device
        FROM device_accounts m
        JOIN device_accounts o ON o.device_id = m.device_id AND o.user_id <> m.user_id
        WHERE m.user_id = ANY(:ids)
        UNION ALL
        SELECT m.id, o.id, 'shared_address', NULL
        FROM users m JOIN users o ON o.signup_address = m.signup_address AND o.id <> m.id
        WHERE m.id = ANY(:ids) AND m.signup_address IS NOT NULL
        UNION ALL
        SELECT f.user_id, x.other, 'same_series', NULL
        FROM account_flags f, unnest(f.linked) AS x(other)
        WHERE f.user_id = ANY(:ids) AND f.code = 'same_series' AND x.other <> f.user_id
    ), g AS (
        SELECT l.uid, l.other, array_agg(DISTINCT l.via ORDER BY l.via) AS via,
               coalesce(array_agg(DISTINCT l.device) FILTER (WHERE l.device IS NOT NULL),
                        '{}') AS devices,
               row_number() OVER (PARTITION BY l.uid ORDER BY count(*) DESC, l.other) AS n
        FROM l GROUP BY l.uid, l.other
    )
    SELECT g.uid, g.other, g.via, g.devices, u.email, u.full_name, u.created_at, u.is_active
    FROM g JOIN users u ON u.id = g.other
    WHERE g.n <= :shown
    ORDER BY g.uid, g.n
    """
)


async def links_of_many(
    session: AsyncSession, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Link]]:
    """Each walker's linked accounts (at most MAX_LINKS_SHOWN each, the most linked first), in
    one query: the review queue shows a page of flagged records with their links."""
    found: dict[uuid.UUID, list[Link]] = {u: [] for u in user_ids}
    if not user_ids:
        return found
    rows = await session.execute(LINKS_SQL, {"ids": list(set(user_ids)), "shown": MAX_LINKS_SHOWN})
    for row in rows:
        found[row.uid].append(
            Link(
                user_id=row.other,
                email=row.email,
                full_name=row.full_name,
                created_at=row.created_at,
                is_active=row.is_active,
                via=list(row.via),
                devices=list(row.devices),
            )
        )
    return found


async def linked_accounts(session: AsyncSession, user_id: uuid.UUID) -> list[Link]:
    return (await links_of_many(session, [user_id]))[user_id]


async def shared_between(session: AsyncSession, a: uuid.UUID, b: uuid.UUID) -> list[str]:
    """The self-referral signals between two walkers: `shared_device` (a device synced for
    both), `shared_address` (made from one address that made more accounts than a household),
    `same_series` (the scan found them sending the same steps). [] when none."""
    household = int(await runtime_settings.get(session, "fairplay.household_max_accounts"))
    row = (
        await session.execute(
            text(
                """
                SELECT
                  EXISTS (SELECT 1 FROM device_accounts x
                          JOIN device_accounts y ON y.device_id = x.device_id
                          WHERE x.user_id = :a AND y.user_id = :b),
                  EXISTS (SELECT 1 FROM users x JOIN users y ON y.signup_address = x.signup_address
                          WHERE x.id = :a AND y.id = :b
                            AND (SELECT count(*) FROM users z
                                 WHERE z.signup_address = x.signup_address) > :household),
                  EXISTS (SELECT 1 FROM account_flags f
                          WHERE f.user_id = :a AND f.code = 'same_series' AND :b = ANY(f.linked))
                """
            ),
            {"a": a, "b": b, "household": household},
        )
    ).one()
    return [code for code, hit in zip(SIGNALS, row, strict=True) if hit]


SIGNALS = ("shared_device", "shared_address", "same_series")


async def observed(session: AsyncSession, user_id: uuid.UUID) -> dict[str, int]:
    """What the link rules see for the walker now, per code: the accounts on their busiest
    device within the window, the accounts of their sign-up burst, their series group; each
    counting the walker. The same counts as the sync's snapshot (stepcoin.steps.service)."""
    return (await observed_many(session, [user_id]))[user_id]


def _busiest_device(walker: str, *, own_use_within: bool) -> str:
    """The accounts seen within the window (:since) on the `walker` column's busiest device (0
    without one); with `own_use_within`, only the devices the walker used within it too. Per
    device a correlated count, a probe of the device's key range: as a join of the walker's
    devices with every device's accounts, statistics taken while device_accounts was small
    made the planner hash the whole table once per walker (1.4 ms a walker at 7,400 rows: the
    order sweep's chunk of 100 walkers took 143 ms), growing with the table."""
    own = " AND m.last_seen >= :since" if own_use_within else ""
    return f"""coalesce((SELECT max((SELECT count(*) FROM device_accounts o
                                 WHERE o.device_id = m.device_id AND o.last_seen >= :since))
                      FROM device_accounts m WHERE m.user_id = {walker}{own}), 0)"""


OBSERVED_MANY_SQL = text(
    f"""
    SELECT
      w.id,
      {_busiest_device("w.id", own_use_within=False)},
      coalesce((SELECT count(*) FROM users me JOIN users o
                  ON o.signup_address = me.signup_address
                 AND o.created_at BETWEEN me.created_at - CAST(:burst AS interval)
                                      AND me.created_at + CAST(:burst AS interval)
                WHERE me.id = w.id AND me.signup_address IS NOT NULL), 0),
      coalesce((SELECT f.observed FROM account_flags f
                WHERE f.user_id = w.id AND f.code = 'same_series'), 0)
    FROM (SELECT DISTINCT unnest(CAST(:ids AS uuid[])) AS id) w
    """
)


async def observed_many(
    session: AsyncSession, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    """observed() for many walkers in one statement (the order sweep's chunk)."""
    if not user_ids:
        return {}
    values = await runtime_settings.all(session)
    rows = await session.execute(
        OBSERVED_MANY_SQL,
        {
            "ids": list(user_ids),
            "since": utc_today() - timedelta(days=int(values["fairplay.device_window_days"])),
            "burst": timedelta(hours=int(values["fairplay.signup_burst_hours"])),
        },
    )
    return {row[0]: dict(zip(LINK_CODES, (int(v) for v in row[1:]), strict=True)) for row in rows}


def over_limits(counts: dict[str, int], values: dict[str, object]) -> dict[str, int]:
    """The counts the link rules act on (above their thresholds); the others are no signal."""
    limits = {
        "shared_device": int(str(values["fairplay.device_max_accounts"])),
        "signup_burst": int(str(values["fairplay.signup_burst_max_accounts"])),
        "same_series": 1,
    }
    return {code: n for code, n in counts.items() if n > limits[code]}


async def clearances(session: AsyncSession, user_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    return (await clearances_many(session, [user_id])).get(user_id, {})


async def clearances_many(
    session: AsyncSession, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, dict[str, Any]]]:
    """clearances() for many walkers in one statement; a walker with none is absent."""
    if not user_ids:
        return {}
    rows = await session.execute(
        text(
            "SELECT user_id, code, observed, note, cleared_by, cleared_at FROM link_clearances "
            "WHERE user_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": list(user_ids)},
    )
    found: dict[uuid.UUID, dict[str, dict[str, Any]]] = {}
    for r in rows:
        found.setdefault(r.user_id, {})[r.code] = {
            "observed": r.observed,
            "note": r.note,
            "cleared_by": str(r.cleared_by) if r.cleared_by else None,
            "cleared_at": r.cleared_at.isoformat(),
        }
    return found


async def clear(
    session: AsyncSession, user_id: uuid.UUID, *, actor_id: uuid.UUID, note: str | None
) -> dict[str, int]:
    """A reviewer found the walker's links fine: each link rule stays quiet for the walker until
    more accounts join the link than now. Audited, in the caller's transaction."""
    now = await observed(session, user_id)
    for code, count in now.items():
        await session.execute(
            text(
                """
                INSERT INTO link_clearances (user_id, code, observed, note, cleared_by)
                VALUES (:u, :code, :n, :note, :by)
                ON CONFLICT (user_id, code) DO UPDATE SET observed = EXCLUDED.observed,
                    note = EXCLUDED.note, cleared_by = EXCLUDED.cleared_by, cleared_at = now()
                """
            ),
            {"u": user_id, "code": code, "n": count, "note": note, "by": actor_id},
        )
    await session.execute(  # what the sync reads (link_marks.cleared)
        text(
            """
            INSERT INTO link_marks AS lm (user_id, cleared) VALUES (:u, CAST(:cleared AS jsonb))
            ON CONFLICT (user_id) DO UPDATE SET cleared = EXCLUDED.cleared, updated_at = now()
            """
        ),
        {"u": user_id, "cleared": json.dumps(now)},
    )
    await audit.record(
        session,
        admin_id=actor_id,
        action="fairplay.links_cleared",
        entity_type="user",
        entity_id=str(user_id),
        after={"cleared": now},
        extra={"note": note},
    )
    return now


REFRESH_MARKS_SQL = text(
    f"""
    WITH fresh AS (
        SELECT lm.user_id,
               {_busiest_device("lm.user_id", own_use_within=True)} AS device_accounts,
               coalesce((SELECT f.observed FROM account_flags f
                         WHERE f.user_id = lm.user_id AND f.code = 'same_series'), 0)
                   AS same_series
        FROM link_marks lm ORDER BY lm.user_id
    ), changed AS (
        UPDATE link_marks lm SET device_accounts = f.device_accounts,
            same_series = f.same_series, updated_at = now()
        FROM fresh f
        WHERE lm.user_id = f.user_id
          AND (lm.device_accounts, lm.same_series) <> (f.device_accounts, f.same_series)
          AND NOT (f.device_accounts <= 1 AND f.same_series = 0 AND lm.cleared = '{{}}'::jsonb)
        RETURNING lm.user_id
    ), gone AS (
        DELETE FROM link_marks lm USING fresh f
        WHERE lm.user_id = f.user_id AND f.device_accounts <= 1 AND f.same_series = 0
          AND lm.cleared = '{{}}'::jsonb
        RETURNING lm.user_id
    )
    SELECT (SELECT count(*) FROM changed) AS changed, (SELECT count(*) FROM gone) AS removed
    """
)


async def refresh_marks(session: AsyncSession) -> dict[str, int]:
    """Recount the marks the sync reads (link_marks) from the links as they are now: a device
    whose other accounts last synced more than the window ago no longer links them; a walker
    with nothing left (and nothing cleared) loses the mark. Daily (fairplay:refresh_marks); the
    marks only grow between runs (the sync raises them as devices gain accounts)."""
    window = int(await runtime_settings.get(session, "fairplay.device_window_days"))
    row = (
        await session.execute(REFRESH_MARKS_SQL, {"since": utc_today() - timedelta(days=window)})
    ).one()
    return {"changed": int(row.changed), "removed": int(row.removed)}


async def forget(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Account deletion: what fair play kept about the walker goes (their marks, flags, score
    and clearances); their device rows go with the sync's records (stepcoin.steps.reports)
    and their sign-up address with the profile (stepcoin.users.erasure)."""
    for table in ("link_marks", "account_flags", "trust_scores", "link_clearances"):
        await session.execute(text(f"DELETE FROM {table} WHERE user_id = :u"), {"u": user_id})


def utc_today() -> date:
    return datetime.now(UTC).date()


SCAN_SERIES_SQL = text(
    """
    WITH days AS (
        SELECT r.user_id, r.recorded_date, max(r.steps) AS steps
        FROM step_records r
        WHERE r.recorded_date > CAST(:today AS date) - CAST(:days AS integer)
          AND r.recorded_date <= :today AND NOT r.is_deleted
        GROUP BY r.user_id, r.recorded_date
    ), series AS (
        SELECT d.user_id, array_agg(d.recorded_date ORDER BY d.recorded_date) AS ds,
               array_agg(d.steps ORDER BY d.recorded_date) AS ss
        FROM days d JOIN users u ON u.id = d.user_id AND u.is_active
        GROUP BY d.user_id
        HAVING count(*) FILTER (WHERE d.steps >= :min_steps) >= :min_days
    ), groups AS (
        SELECT ds, ss, array_agg(user_id ORDER BY user_id) AS members
        FROM series GROUP BY ds, ss HAVING count(*) > 1
    ), flagged AS (
        INSERT INTO account_flags AS f (user_id, code, observed, linked, evidence)
        SELECT m.user_id, 'same_series', cardinality(g.members), g.members,
               jsonb_build_object('days', g.ds, 'steps', g.ss)
        FROM groups g, unnest(g.members) AS m(user_id)
        ON CONFLICT (user_id, code) DO UPDATE SET
            linked = ARRAY(SELECT DISTINCT x FROM unnest(f.linked || EXCLUDED.linked) AS x
                           ORDER BY x),
            observed = cardinality(ARRAY(SELECT DISTINCT x
                                         FROM unnest(f.linked || EXCLUDED.linked) AS x)),
            evidence = EXCLUDED.evidence, updated_at = now()
        RETURNING f.user_id, f.observed, (xmax = 0) AS inserted
    ), marked AS (
        INSERT INTO link_marks AS lm (user_id, same_series)
        SELECT user_id, observed FROM flagged ORDER BY user_id
        ON CONFLICT (user_id) DO UPDATE SET same_series = EXCLUDED.same_series,
            updated_at = now()
    )
    SELECT (SELECT count(*) FROM groups) AS groups,
           count(*) FILTER (WHERE inserted) AS new_flags, count(*) AS flags
    FROM flagged
    """
)


async def scan_series(session: AsyncSession, *, today: date | None = None) -> dict[str, int]:
    """Find walkers who sent the same daily steps (the same days, the same counts) over the
    last `fairplay.series_days` days, each day at least `fairplay.series_min_steps` on
    `fairplay.series_min_days` of them, and flag them (`account_flags`, code `same_series`,
    every account of the group linked). A flag is kept and widened by later scans; a reviewer
    clears it (`clear`). One statement over the window's step records (the job
    fairplay:scan_series, hourly)."""
    values = await runtime_settings.all(session)
    row = (
        await session.execute(
            SCAN_SERIES_SQL,
            {
                "today": today or utc_today() + timedelta(days=1),  # the earliest zone
                "days": int(values["fairplay.series_days"]),
                "min_days": int(values["fairplay.series_min_days"]),
                "min_steps": int(values["fairplay.series_min_steps"]),
            },
        )
    ).one()
    return {"groups": int(row.groups), "new_flags": int(row.new_flags), "flags": int(row.flags)}

"""Referral queries: codes, referral rows, the invitee's approved days, the ring check."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin import global_keys

COLUMNS = (
    "r.id, r.referrer_id, r.invitee_id, r.code, r.status, r.reasons, r.terms, r.terms_version, "
    "r.approved_days, r.claimed_at, r.qualified_at, r.hold_until, r.paid_at, r.referrer_coins, "
    "r.invitee_coins, r.reviewed_by, r.reviewed_at, r.note, r.updated_at, "
    "r.claimed_at AS created_at"
)
# the invitee's first local day of the qualifying window: the claim's day in their time zone
_CLAIM_DAY = "CAST((r.claimed_at AT TIME ZONE coalesce(iu.timezone, 'UTC')) AS date)"
# the last local day that counts
_LAST_DAY = f"({_CLAIM_DAY} + (CAST(r.terms ->> 'qualifying_window_days' AS int) - 1))"
MAX_RING_DEPTH = 100


async def code_of(session: AsyncSession, user_id: uuid.UUID) -> str | None:
    return (
        await session.execute(
            text("SELECT code FROM referral_codes WHERE user_id = :u"), {"u": user_id}
        )
    ).scalar_one_or_none()


async def insert_code(session: AsyncSession, user_id: uuid.UUID, code: str) -> str | None:
    """The new code, or None when the walker has one already or the code is taken (its one
    owner is claimed in global_keys first: referral_codes is unique per walker only)."""
    if not await global_keys.claim(session, "referral_code", code, user_id):
        return None
    made: str | None = (
        await session.execute(
            text(
                "INSERT INTO referral_codes (user_id, code) VALUES (:u, :c) "
                "ON CONFLICT DO NOTHING RETURNING code"
            ),
            {"u": user_id, "c": code},
        )
    ).scalar_one_or_none()
    if made is None:  # the walker got a code meanwhile: this one goes back
        await global_keys.release(session, "referral_code", code, user_id)
    return made


async def owner_of(session: AsyncSession, code: str) -> uuid.UUID | None:
    """The active walker whose code this is (a deleted or deactivated one has none)."""
    return (
        await session.execute(
            text(
                "SELECT c.user_id FROM referral_codes c JOIN users u ON u.id = c.user_id "
                "WHERE c.code = :c AND u.is_active AND u.deleted_at IS NULL"
            ),
            {"c": code},
        )
    ).scalar_one_or_none()


async def lock_invitee(session: AsyncSession, user_id: uuid.UUID) -> datetime | None:
    """Lock the walker's row (two claims of one walker take turns); their sign-up time."""
    return (
        await session.execute(
            text(
                "SELECT created_at FROM users WHERE id = :u AND is_active "
                "AND deleted_at IS NULL FOR UPDATE"
            ),
            {"u": user_id},
        )
    ).scalar_one_or_none()


async def lock_codes(session: AsyncSession, user_ids: Sequence[uuid.UUID]) -> None:
    """Lock referrers' code rows in user-id order: one referrer's payouts take turns, so two
    settles never both fit under the monthly cap (then the wallets, by issue_many)."""
    if user_ids:
        await session.execute(
            text(
                "SELECT 1 FROM referral_codes WHERE user_id = ANY(CAST(:u AS uuid[])) "
                "ORDER BY user_id FOR UPDATE"
            ),
            {"u": sorted(set(user_ids))},
        )


def _row(row: Any) -> dict[str, Any]:
    item = dict(row)
    if isinstance(item.get("terms"), str):
        item["terms"] = orjson.loads(item["terms"])
    item["reasons"] = list(item.get("reasons") or [])
    return item


async def by_invitee(session: AsyncSession, invitee_id: uuid.UUID) -> dict[str, Any] | None:
    row = (
        (
            await session.execute(
                text(f"SELECT {COLUMNS} FROM referrals r WHERE r.invitee_id = :u"),
                {"u": invitee_id},
            )
        )
        .mappings()
        .first()
    )
    return _row(row) if row is not None else None


async def get(
    session: AsyncSession, referral_id: int, *, for_update: bool = False
) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    row = (
        (
            await session.execute(
                text(f"SELECT {COLUMNS} FROM referrals r WHERE r.id = :id{lock}"),
                {"id": referral_id},
            )
        )
        .mappings()
        .first()
    )
    return _row(row) if row is not None else None


async def insert(
    session: AsyncSession,
    *,
    referrer_id: uuid.UUID,
    invitee_id: uuid.UUID,
    code: str,
    status: str,
    reasons: list[str],
    terms: dict[str, Any],
    claimed_at: datetime,
) -> dict[str, Any] | None:
    """The new referral; None when the invitee has one already (their row lock makes that
    a replay, and the unique invitee_id makes it impossible to have two)."""
    row = (
        (
            await session.execute(
                text(
                    "INSERT INTO referrals AS r (referrer_id, invitee_id, code, status, reasons, "
                    "terms, terms_version, claimed_at, updated_at) VALUES (:referrer, :invitee, "
                    ":code, :status, CAST(:reasons AS text[]), CAST(:terms AS jsonb), :version, "
                    ":at, :at) ON CONFLICT (invitee_id) DO NOTHING "
                    f"RETURNING {COLUMNS}"
                ),
                {
                    "referrer": referrer_id,
                    "invitee": invitee_id,
                    "code": code,
                    "status": status,
                    "reasons": reasons,
                    "terms": orjson.dumps(terms).decode(),
                    "version": int(terms["version"]),
                    "at": claimed_at,
                },
            )
        )
        .mappings()
        .first()
    )
    return _row(row) if row is not None else None


async def claims_since(session: AsyncSession, referrer_id: uuid.UUID, since: datetime) -> int:
    return int(
        (
            await session.execute(
                text("SELECT count(*) FROM referrals WHERE referrer_id = :r AND claimed_at >= :s"),
                {"r": referrer_id, "s": since},
            )
        ).scalar_one()
    )


async def in_ring(session: AsyncSession, referrer_id: uuid.UUID, invitee_id: uuid.UUID) -> bool:
    """Whether the invitee is up the referrer's chain of referrers beyond the referrer's own
    referrer (the referrer's referrer's referrer, theirs, ...): then the chain of referrals
    through the invitee comes back to them, a ring of three or more. Two walkers who claimed each
    other's code (a household joining together) are not a ring: each brought the other."""
    found = (
        await session.execute(
            text(
                """
                WITH RECURSIVE up(user_id, depth, path) AS (
                    SELECT referrer_id, 1, ARRAY[invitee_id]
                    FROM referrals WHERE invitee_id = :referrer
                  UNION ALL
                    SELECT r.referrer_id, up.depth + 1, up.path || r.invitee_id
                    FROM referrals r JOIN up ON r.invitee_id = up.user_id
                    WHERE up.depth < :depth AND NOT r.invitee_id = ANY(up.path)
                )
                SELECT EXISTS (SELECT 1 FROM up WHERE user_id = :invitee AND depth >= 2)
                """
            ),
            {"referrer": referrer_id, "invitee": invitee_id, "depth": MAX_RING_DEPTH},
        )
    ).scalar_one()
    return bool(found)


async def open_batch(
    session: AsyncSession, *, after: int, limit: int, now: datetime
) -> list[dict[str, Any]]:
    """The next pending or held referrals after `after`, locked; rows another settle holds are
    skipped (it is settling them). With the invitee's approved days in the window now
    (`days_now`), the window's last local day and the invitee's local day at `now`."""
    rows = await session.execute(
        text(
            f"""
            SELECT {COLUMNS}, {_LAST_DAY} AS last_day,
                   CAST((CAST(:now AS timestamptz) AT TIME ZONE coalesce(iu.timezone, 'UTC'))
                        AS date) AS invitee_today,
                   (SELECT count(*) FROM step_days d
                    WHERE d.user_id = r.invitee_id AND d.credited_steps > 0
                      AND d.recorded_date BETWEEN {_CLAIM_DAY} AND {_LAST_DAY}) AS days_now
            FROM referrals r JOIN users iu ON iu.id = r.invitee_id
            WHERE r.status IN ('pending', 'held') AND r.id > :after
            ORDER BY r.id LIMIT :limit
            FOR UPDATE OF r SKIP LOCKED
            """
        ),
        {"after": after, "limit": limit, "now": now},
    )
    return [_row(r) for r in rows.mappings()]


async def approved_days(session: AsyncSession, referral_id: int) -> int:
    """The invitee's approved days in the referral's window, as they are now."""
    return int(
        (
            await session.execute(
                text(
                    f"""
                    SELECT (SELECT count(*) FROM step_days d
                            WHERE d.user_id = r.invitee_id AND d.credited_steps > 0
                              AND d.recorded_date BETWEEN {_CLAIM_DAY} AND {_LAST_DAY})
                    FROM referrals r JOIN users iu ON iu.id = r.invitee_id WHERE r.id = :id
                    """
                ),
                {"id": referral_id},
            )
        ).scalar_one()
    )


async def paid_referrer_rewards(
    session: AsyncSession, referrer_id: uuid.UUID, since: datetime
) -> int:
    """Referrer rewards paid to this walker since `since` (the monthly cap counts them)."""
    return int(
        (
            await session.execute(
                text(
                    "SELECT count(*) FROM referrals WHERE referrer_id = :r AND status = 'paid' "
                    "AND referrer_coins > 0 AND paid_at >= :since"
                ),
                {"r": referrer_id, "since": since},
            )
        ).scalar_one()
    )


async def update(session: AsyncSession, referral_id: int, **fields: Any) -> dict[str, Any]:
    """Set the given columns (names from this package only) and updated_at; the row after."""
    sets = ["updated_at = now()"]
    params: dict[str, Any] = {"id": referral_id}
    for name, value in fields.items():
        if name == "reasons":
            sets.append("reasons = CAST(:reasons AS text[])")
        else:
            sets.append(f"{name} = :{name}")
        params[name] = value
    row = (
        await session.execute(
            text(
                f"UPDATE referrals AS r SET {', '.join(sets)} WHERE r.id = :id RETURNING {COLUMNS}"
            ),
            params,
        )
    ).mappings()
    return _row(row.one())


_LIST = (
    f"SELECT {COLUMNS}, "
    "iu.full_name AS invitee_name, iu.email AS invitee_email, iu.deleted_at AS invitee_deleted, "
    "ru.full_name AS referrer_name, ru.email AS referrer_email, "
    f"{_LAST_DAY} AS last_day "
    "FROM referrals r JOIN users iu ON iu.id = r.invitee_id "
    "JOIN users ru ON ru.id = r.referrer_id "
)


async def get_listed(session: AsyncSession, referral_id: int) -> dict[str, Any] | None:
    """One referral with both walkers' names (the admin view)."""
    row = (
        (await session.execute(text(f"{_LIST} WHERE r.id = :id"), {"id": referral_id}))
        .mappings()
        .first()
    )
    return _row(row) if row is not None else None


async def list_of_referrer(
    session: AsyncSession,
    referrer_id: uuid.UUID,
    *,
    limit: int,
    before: tuple[datetime, int] | None,
) -> list[dict[str, Any]]:
    """The referrer's invitees, newest claim first (keyset on claimed_at, id), limit rows."""
    where = "r.referrer_id = :r"
    params: dict[str, Any] = {"r": referrer_id, "limit": limit}
    if before is not None:
        where += " AND (r.claimed_at, r.id) < (:at, :id)"
        params.update(at=before[0], id=before[1])
    rows = await session.execute(
        text(f"{_LIST} WHERE {where} ORDER BY r.claimed_at DESC, r.id DESC LIMIT :limit"), params
    )
    return [_row(r) for r in rows.mappings()]


async def list_by_status(
    session: AsyncSession,
    *,
    status: str | None,
    limit: int,
    after: tuple[datetime, int] | None,
) -> list[dict[str, Any]]:
    """Referrals of a status (all without one), oldest claim first: the review queue's order."""
    conditions = []
    params: dict[str, Any] = {"limit": limit}
    if status is not None:
        conditions.append("r.status = :status")
        params["status"] = status
    if after is not None:
        conditions.append("(r.claimed_at, r.id) > (:at, :id)")
        params.update(at=after[0], id=after[1])
    where = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    rows = await session.execute(
        text(f"{_LIST}{where}ORDER BY r.claimed_at, r.id LIMIT :limit"), params
    )
    return [_row(r) for r in rows.mappings()]


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        text("SELECT status, count(*) AS n FROM referrals GROUP BY status")
    )
    return {r.status: int(r.n) for r in rows}


async def of_user(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every referral the walker is either side of (the export)."""
    rows = await session.execute(
        text(f"{_LIST} WHERE r.referrer_id = :u OR r.invitee_id = :u ORDER BY r.claimed_at, r.id"),
        {"u": user_id},
    )
    return [_row(r) for r in rows.mappings()]


async def cancel_open(session: AsyncSession, user_id: uuid.UUID, reason: str) -> int:
    """End the walker's referrals that are not paid or closed yet (either side)."""
    result = await session.execute(
        text(
            "UPDATE referrals SET status = 'cancelled', updated_at = now(), "
            "reasons = array_append(reasons, CAST(:reason AS text)) "
            "WHERE (referrer_id = :u OR invitee_id = :u) "
            "AND status IN ('pending', 'held', 'review')"
        ),
        {"u": user_id, "reason": reason},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_code(session: AsyncSession, user_id: uuid.UUID) -> None:
    code = (
        await session.execute(
            text("DELETE FROM referral_codes WHERE user_id = :u RETURNING code"), {"u": user_id}
        )
    ).scalar_one_or_none()
    if code is not None:
        await global_keys.release(session, "referral_code", code, user_id)

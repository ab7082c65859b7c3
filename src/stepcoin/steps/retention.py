"""What the steps domain keeps and lets go (docs/retention.md): the decisions compaction and the
monthly step_records partitions that stepcoin.retention archives.

The rules are SQL functions (steps/sql/compact_decisions.v1.sql, step_month_blocker.v1.sql),
so what is "still needed" is decided in the same statement as the delete or the detach.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# The columns of step_records in the order an archive file holds them (its manifest lists them,
# so a later column added with a default still restores).
ARCHIVE_COLUMNS = (
    "user_id",
    "recorded_date",
    "source",
    "id",
    "steps",
    "device_id",
    "client_record_id",
    "client_record_version",
    "is_manual",
    "is_deleted",
    "intervals",
    "device_ids",
    "status",
    "reasons",
    "validation_id",
    "approved_steps",
    "synced_at",
    "created_at",
)
ARCHIVE_ORDER = "user_id, recorded_date, source"


@dataclass(frozen=True)
class CompactionBatch:
    last_id: int | None  # the cursor of the next batch; None: nothing was left
    examined: int
    deleted: int
    young_from: int | None  # the first decision examined that is newer than the cutoff
    all_young: bool  # every decision examined was newer than the cutoff: the pass is over

    @property
    def finished(self) -> bool:
        return self.all_young or self.examined == 0


def month_start(month: date) -> date:
    return month.replace(day=1)


def partition_name(month: date) -> str:
    """step_records_pYYYYMM, as stepcoin_ensure_step_partitions names it."""
    return f"step_records_p{month.year:04d}{month.month:02d}"


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


async def compact_decisions(
    session: AsyncSession, *, after_id: int, cutoff: datetime, batch: int
) -> CompactionBatch:
    """One batch of the decisions compaction (stepcoin_compact_decisions)."""
    row = (
        await session.execute(
            text("SELECT * FROM stepcoin_compact_decisions(:after, :cutoff, :batch)"),
            {"after": after_id, "cutoff": cutoff, "batch": batch},
        )
    ).one()
    return CompactionBatch(
        row.last_id, int(row.examined), int(row.deleted), row.young_from, bool(row.all_young)
    )


async def month_blocker(session: AsyncSession, month: date, keep_after: date) -> str | None:
    """Why the month's partition must stay online, or None when it may be archived."""
    blocker = (
        await session.execute(
            text("SELECT stepcoin_step_month_blocker(:m, :k)"),
            {"m": month_start(month), "k": keep_after},
        )
    ).scalar_one()
    return str(blocker) if blocker is not None else None


async def attached_months(session: AsyncSession) -> list[date]:
    """The months that have a partition attached to step_records, oldest first."""
    rows = (
        await session.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'step_records'::regclass ORDER BY c.relname"
            )
        )
    ).scalars()
    months = []
    for name in rows:
        suffix = str(name).removeprefix("step_records_p")
        if len(suffix) == 6 and suffix.isdigit():
            months.append(date(int(suffix[:4]), int(suffix[4:]), 1))
    return months


async def partition_state(session: AsyncSession, month: date) -> str:
    """'attached', 'detached' (a table of that name outside step_records) or 'absent'."""
    row = (
        await session.execute(
            text(
                "SELECT c.oid, EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid "
                "AND i.inhparent = 'step_records'::regclass) AS attached "
                "FROM pg_class c WHERE c.relname = :name "
                "AND c.relnamespace = current_schema()::regnamespace"
            ),
            {"name": partition_name(month)},
        )
    ).first()
    if row is None:
        return "absent"
    return "attached" if row.attached else "detached"


async def detach_partition(session: AsyncSession, month: date) -> None:
    """Detach the month's partition: from then on the app no longer sees its rows. A short
    ACCESS EXCLUSIVE lock on step_records (the caller sets a lock_timeout)."""
    await session.execute(
        text(f'ALTER TABLE step_records DETACH PARTITION "{partition_name(month)}"')
    )


async def drop_detached(session: AsyncSession, month: date) -> None:
    if await partition_state(session, month) == "attached":
        raise RuntimeError(f"{partition_name(month)} is attached: refusing to drop it")
    await session.execute(text(f'DROP TABLE IF EXISTS "{partition_name(month)}"'))


async def create_partition(session: AsyncSession, month: date) -> None:
    """An empty partition for the month, attached (the restore copies the archive into it)."""
    start = month_start(month)
    await session.execute(
        text(
            f'CREATE TABLE "{partition_name(month)}" PARTITION OF step_records '
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{next_month(start).isoformat()}')"
        )
    )


async def fill_from_staging(session: AsyncSession, month: date, staging: str) -> int:
    """After a restore's COPY into `staging`: the month's rows into its partition, except the
    rows of walkers whose account no longer exists; the device identifiers of deleted accounts
    are forgotten again, as forget_devices did when the account was deleted. Returns the rows
    put back."""
    columns = ", ".join(ARCHIVE_COLUMNS)
    scrubbed = ", ".join(
        {
            "device_id": "CASE WHEN u.deleted_at IS NULL THEN s.device_id END",
            "client_record_id": "CASE WHEN u.deleted_at IS NULL THEN s.client_record_id END",
            "device_ids": "CASE WHEN u.deleted_at IS NULL THEN s.device_ids ELSE '{}' END",
        }.get(column, f"s.{column}")
        for column in ARCHIVE_COLUMNS
    )
    result = await session.execute(
        text(
            f'INSERT INTO "{partition_name(month)}" ({columns}) '
            f'SELECT {scrubbed} FROM "{staging}" s JOIN users u ON u.id = s.user_id'
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# The decisions archived with their month: those about its days made before the trust score's
# window (fairplay.trust reads 90 days of decisions by when they were made; a refusal before
# storage of an old day is recent and stays).
DECISIONS_KEPT_DAYS = 90
DECISION_COLUMNS = (
    "id",
    "user_id",
    "step_record_id",
    "recorded_date",
    "source",
    "steps",
    "status",
    "rule_hits",
    "risk_score",
    "coins_awarded",
    "coins_pending",
    "superseded_by",
    "reviewed_by",
    "reviewed_at",
    "note",
    "created_at",
)
# asyncpg's COPY takes $n parameters: $1 the month's first day, $2 the next month's, $3 the
# time before which the decisions were made
MONTH_DECISIONS_COPY = (
    f"SELECT {', '.join(DECISION_COLUMNS)} FROM step_validations "
    "WHERE recorded_date >= $1 AND recorded_date < $2 AND created_at < $3 ORDER BY id"
)


async def count_month_decisions(session: AsyncSession, month: date, before: datetime) -> int:
    return int(
        (
            await session.execute(
                text(
                    "SELECT count(*) FROM step_validations WHERE recorded_date >= :a "
                    "AND recorded_date < :b AND created_at < :t"
                ),
                {"a": month_start(month), "b": next_month(month), "t": before},
            )
        ).scalar_one()
    )


async def delete_month_decisions(
    session: AsyncSession, month: date, before: datetime, batch: int
) -> int:
    """One batch of the archived month's decisions (those the archive file holds)."""
    result = await session.execute(
        text(
            "DELETE FROM step_validations WHERE id IN (SELECT id FROM step_validations "
            "WHERE recorded_date >= :a AND recorded_date < :b AND created_at < :t "
            "LIMIT :n)"
        ),
        {"a": month_start(month), "b": next_month(month), "t": before, "n": batch},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def decisions_from_staging(session: AsyncSession, staging: str) -> int:
    """After a restore's COPY into `staging`: the decisions back, except those of walkers whose
    account no longer exists (a reviewer's gone account becomes no reviewer, as its foreign
    key does); one already there is left as it is."""
    columns = ", ".join(DECISION_COLUMNS)
    values = ", ".join(
        "CASE WHEN EXISTS (SELECT 1 FROM users r WHERE r.id = s.reviewed_by) THEN s.reviewed_by END"
        if column == "reviewed_by"
        else f"s.{column}"
        for column in DECISION_COLUMNS
    )
    result = await session.execute(
        text(
            f'INSERT INTO step_validations ({columns}) SELECT {values} FROM "{staging}" s '
            "WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = s.user_id) "
            "ON CONFLICT (id, user_id) DO NOTHING"
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]

"""Operations: the backup schedule and retention as runtime settings (no table: the backup
catalogue lives in the backup repository, next to the backups it describes).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Defaults of the backup runtime settings at this revision (frozen data).
SETTINGS_SEED = [
    (
        "backup.incremental_interval_minutes",
        60,
        "Minutes between incremental backups (PostgreSQL 17+; older servers rely on WAL).",
    ),
    (
        "backup.full_hour_utc",
        2,
        "Hour (UTC) of the daily full backup, followed by the retention run.",
    ),
    (
        "backup.cold_copy_weekday",
        7,
        "ISO weekday (1 = Monday, 7 = Sunday) of the weekly copy to the cold repository.",
    ),
    (
        "backup.region_copy_day",
        1,
        "Day of the month of the monthly copy to the second-region repository.",
    ),
    ("backup.copy_hour_utc", 4, "Hour (UTC) of the weekly and monthly copies."),
    (
        "backup.incremental_retention_days",
        30,
        "Days incremental backups are kept (with the full backups they depend on).",
    ),
    (
        "backup.full_retention_days",
        30,
        "Days full backups are kept in the main repository (the newest good one always).",
    ),
    ("backup.cold_retention_days", 90, "Days weekly copies are kept in the cold repository."),
    (
        "backup.monthly_retention_days",
        365,
        "Days monthly copies are kept in the second-region repository.",
    ),
    (
        "backup.retry_minutes",
        15,
        "Minutes before a failed scheduled backup, copy or prune is tried again.",
    ),
]


def upgrade() -> None:
    settings = sa.table(
        "settings",
        sa.column("key", sa.String),
        sa.column("value", postgresql.JSONB),
        sa.column("description", sa.Text),
    )
    op.bulk_insert(
        settings, [{"key": k, "value": v, "description": d} for k, v, d in SETTINGS_SEED]
    )


def downgrade() -> None:
    op.execute("DELETE FROM settings WHERE key LIKE 'backup.%'")

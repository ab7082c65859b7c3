"""App version gating (issue 14): the lowest supported app version per platform.

Seeds the runtime settings `app.min_version_ios` and `app.min_version_android` with their
registry defaults (`0`: every version is supported); stepcoin.app_versions reads them.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 18:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEEDS = {  # as the registry had them when this revision was written
    "app.min_version_ios": "Lowest supported iOS app version (X-App-Version, e.g. 2.4.0); older "
    "apps get 426. 0: every version.",
    "app.min_version_android": "Lowest supported Android app version (X-App-Version, e.g. "
    "2.4.0); older apps get 426. 0: every version.",
}


def upgrade() -> None:
    for key, description in SEEDS.items():
        op.execute(
            sa.text(
                "INSERT INTO settings (key, value, description) "
                "VALUES (:k, to_jsonb(CAST('0' AS text)), :d) ON CONFLICT (key) DO NOTHING"
            ).bindparams(k=key, d=description)
        )


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM settings WHERE key IN :keys").bindparams(
            sa.bindparam("keys", value=list(SEEDS), expanding=True)
        )
    )

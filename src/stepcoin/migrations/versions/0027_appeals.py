"""Appeals of rejected days (issue 16, item 4): their rate limit as runtime settings.

An appeal needs no table of its own: it is a `flagged` step_validations row with the rule hit
`appeal` (stepcoin.steps.appeals). This revision seeds the limits of the rate-limit policy
`appeals` (POST /v1/steps/{date}/appeal) with their registry defaults.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04 20:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | Sequence[str] | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHAT = "Appeals of rejected days (POST /v1/steps/{date}/appeal)"
SEEDS = {  # as the registry had them when this revision was written
    "ratelimit.appeals_per_account": (
        "10/hour",
        f"{_WHAT} by one signed-in account, as <amount>/<period>; beyond it, 429 with Retry-After.",
    ),
    "ratelimit.appeals_per_address": (
        "100/hour",
        f"{_WHAT} from one client address (an IPv6 /64), as <amount>/<period>; beyond it, 429 "
        "with Retry-After.",
    ),
}


def upgrade() -> None:
    for key, (value, description) in SEEDS.items():
        op.execute(
            sa.text(
                "INSERT INTO settings (key, value, description) "
                "VALUES (:k, to_jsonb(CAST(:v AS text)), :d) ON CONFLICT (key) DO NOTHING"
            ).bindparams(k=key, v=value, d=description)
        )


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM settings WHERE key IN :keys").bindparams(
            sa.bindparam("keys", value=list(SEEDS), expanding=True)
        )
    )

"""The economy report (issue 15, item 5): the shop's currency as a runtime setting.

Seeds `shop.currency_code` (`USD`, the registry's default): GET /v1/admin/economy/report values
coins in it.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04 19:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "shop.currency_code"
DESCRIPTION = (  # as the registry had it when this revision was written
    "The shop's currency (ISO 4217, as in Shopify): the economy report values coins in it (one "
    "coin = 1 / shop.coins_per_currency_unit of a unit)."
)


def upgrade() -> None:
    op.execute(
        sa.text(
            "INSERT INTO settings (key, value, description) "
            "VALUES (:k, to_jsonb(CAST('USD' AS text)), :d) ON CONFLICT (key) DO NOTHING"
        ).bindparams(k=KEY, d=DESCRIPTION)
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM settings WHERE key = :k").bindparams(k=KEY))

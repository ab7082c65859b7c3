"""stepcoin_wallet_post v3 (issue 13): v2 with generic plans for its own statements.

Its replay probe over the entries' arrays was planned on every call (a custom plan counts the
entries, a generic one guesses, so the custom ones always looked cheaper); v3 is v2's body with
`plan_cache_mode = force_generic_plan` (wallet/sql/post.v3.sql).

Revision ID: 0052
Revises: 0051
Create Date: 2026-12-06 23:40:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0052"
down_revision: str | Sequence[str] | None = "0051"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(load("stepcoin.wallet", "post.v3.sql"))


def downgrade() -> None:
    op.execute(load("stepcoin.wallet", "post.v2.sql"))

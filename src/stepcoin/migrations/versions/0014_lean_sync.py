"""A lean step sync (issue 13): stepcoin_apply_sync v4, achievements marked dirty, not queued.

- stepcoin_apply_sync v4 (src/stepcoin/steps/sql/apply_sync.v4.sql): set-based, four
  statements instead of ~33, each step_validations row written once with its final values.
- achievements_dirty: users whose achievements are due; the sync marks the user in its own
  transaction instead of queueing one evaluation job per sync, and a periodic worker task
  evaluates the marked users in batches.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from stepcoin.sqlfiles import load

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "achievements_dirty",
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column(
            "since", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_achievements_dirty")),
    )
    op.execute(load("stepcoin.steps", "apply_sync.v4.sql"))


def downgrade() -> None:
    op.execute(load("stepcoin.steps", "apply_sync.v3.sql"))
    # users still marked get the job they would have had before this revision
    op.execute(
        "SELECT stepcoin_defer_job('default', 'achievements:evaluate_user', NULL, "
        "'achievements:' || user_id::text, jsonb_build_object('user_id', user_id::text)) "
        "FROM achievements_dirty"
    )
    op.drop_table("achievements_dirty")

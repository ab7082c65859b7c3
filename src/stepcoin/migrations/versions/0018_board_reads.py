"""Leaderboard reads from a cached top (issue 13), and the safety-net rebuild that fires.

- leaderboard_names: one row, a generation moved (at commit, by a deferred constraint trigger
  on users, live_boards.v2.sql) whenever a walker's full_name or is_active changes or a walker
  is deleted. The API caches each board's top entries per process keyed by the board's
  computed_at and this generation.
- leaderboard_builds.rebuilt_at: when the board was last built in full. Every refresh moves
  computed_at, so the safety-net full rebuild (`leaderboards.rebuild_interval_minutes`) is now
  planned from rebuilt_at.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 16:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGERS = """
CREATE CONSTRAINT TRIGGER leaderboard_names_updated AFTER UPDATE OF full_name, is_active ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.full_name IS DISTINCT FROM NEW.full_name OR OLD.is_active IS DISTINCT FROM NEW.is_active)
    EXECUTE FUNCTION stepcoin_board_names_changed();
CREATE CONSTRAINT TRIGGER leaderboard_names_deleted AFTER DELETE ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION stepcoin_board_names_changed();
"""


def upgrade() -> None:
    op.create_table(
        "leaderboard_names",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_leaderboard_names_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaderboard_names")),
    )
    op.execute("INSERT INTO leaderboard_names (id, generation) VALUES (1, 1)")
    op.execute(load("stepcoin.leaderboards", "live_boards.v2.sql"))
    op.execute(TRIGGERS)
    op.add_column(
        "leaderboard_builds",
        sa.Column("rebuilt_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.execute("UPDATE leaderboard_builds SET rebuilt_at = computed_at")


def downgrade() -> None:
    op.drop_column("leaderboard_builds", "rebuilt_at")
    op.execute("DROP TRIGGER leaderboard_names_deleted ON users")
    op.execute("DROP TRIGGER leaderboard_names_updated ON users")
    op.execute("DROP FUNCTION stepcoin_board_names_changed()")
    op.drop_table("leaderboard_names")

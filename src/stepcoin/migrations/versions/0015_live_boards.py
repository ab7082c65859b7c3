"""Live leaderboards (issue 13): boards follow walkers within a refresh, not a rebuild.

- leaderboard_dirty: the walkers, days and step deltas whose credited steps changed since
  the last refresh; appended by row triggers on step_days (only when credited_steps changes) and on
  users (only when is_active flips); drained by the refresh job (a heap without indexes:
  the cheapest append for the step sync).
- leaderboard_rank_counts: walkers per (board, bucket of totals), kept equal to
  leaderboard_cache by statement triggers, and the walkers of the buckets above (set by each
  refresh and rebuild); a rank is counted from it at read time.
- leaderboard_cache.rank goes: one walker moving no longer rewrites everyone they pass.
- leaderboards.rebuild_interval_minutes becomes the full rebuild's interval (a safety net):
  its default moves from 5 to 1440 where it was still 5.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from stepcoin.sqlfiles import load

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_INTERVAL = (5, "Minutes between leaderboard rebuilds.")
NEW_INTERVAL = (
    1440,
    "Minutes between full leaderboard rebuilds (a safety net: the live refresh brings "
    "every change into the boards within seconds).",
)

TRIGGERS = """
CREATE TRIGGER leaderboard_counts_insert AFTER INSERT ON leaderboard_cache
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stepcoin_board_counts();
CREATE TRIGGER leaderboard_counts_update AFTER UPDATE ON leaderboard_cache
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stepcoin_board_counts();
CREATE TRIGGER leaderboard_counts_delete AFTER DELETE ON leaderboard_cache
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stepcoin_board_counts();
CREATE TRIGGER leaderboard_counts_truncate AFTER TRUNCATE ON leaderboard_cache
    FOR EACH STATEMENT EXECUTE FUNCTION stepcoin_board_counts_truncated();
CREATE TRIGGER leaderboard_day_inserted AFTER INSERT ON step_days
    FOR EACH ROW WHEN (NEW.credited_steps <> 0)
    EXECUTE FUNCTION stepcoin_board_day_changed();
CREATE TRIGGER leaderboard_day_updated AFTER UPDATE ON step_days
    FOR EACH ROW WHEN (OLD.credited_steps IS DISTINCT FROM NEW.credited_steps)
    EXECUTE FUNCTION stepcoin_board_day_changed();
CREATE TRIGGER leaderboard_day_deleted AFTER DELETE ON step_days
    FOR EACH ROW WHEN (OLD.credited_steps <> 0)
    EXECUTE FUNCTION stepcoin_board_day_changed();
CREATE TRIGGER leaderboard_walker_changed AFTER UPDATE OF is_active ON users
    FOR EACH ROW WHEN (OLD.is_active IS DISTINCT FROM NEW.is_active)
    EXECUTE FUNCTION stepcoin_board_walker_changed();
"""


def upgrade() -> None:
    op.create_table(
        "leaderboard_dirty",
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("recorded_date", sa.Date(), nullable=True),
        sa.Column("steps_delta", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "leaderboard_rank_counts",
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("walkers", sa.BigInteger(), nullable=False),
        sa.Column("walkers_above", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(
            "period", "period_start", "bucket", name=op.f("pk_leaderboard_rank_counts")
        ),
    )
    op.drop_constraint(op.f("ck_leaderboard_cache_rank_positive"), "leaderboard_cache")
    op.drop_column("leaderboard_cache", "rank")
    op.execute(load("stepcoin.leaderboards", "live_boards.v1.sql"))
    op.execute(TRIGGERS)
    # the counts of the boards already built; and their changes from now on
    op.execute(
        "INSERT INTO leaderboard_rank_counts (period, period_start, bucket, walkers) "
        "SELECT period, period_start, stepcoin_board_bucket(total_steps), count(*) "
        "FROM leaderboard_cache GROUP BY 1, 2, 3"
    )
    op.execute(
        "UPDATE leaderboard_rank_counts k SET walkers_above = x.above FROM (SELECT period, "
        "period_start, bucket, coalesce(sum(walkers) OVER (PARTITION BY period, period_start "
        "ORDER BY bucket DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS above "
        "FROM leaderboard_rank_counts) x WHERE k.period = x.period "
        "AND k.period_start = x.period_start AND k.bucket = x.bucket"
    )
    # the live boards are built once more in full by the next job run: from then on the
    # refresh adds the logged changes to them
    op.execute("DELETE FROM leaderboard_builds WHERE NOT is_final")
    op.execute(
        sa.text(
            "UPDATE settings SET value = to_jsonb(CAST(:new AS integer)), description = :d "
            "WHERE key = 'leaderboards.rebuild_interval_minutes' AND value = to_jsonb(CAST(:old AS integer))"
        ).bindparams(new=NEW_INTERVAL[0], d=NEW_INTERVAL[1], old=OLD_INTERVAL[0])
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE settings SET value = to_jsonb(CAST(:old AS integer)), description = :d "
            "WHERE key = 'leaderboards.rebuild_interval_minutes' AND value = to_jsonb(CAST(:new AS integer))"
        ).bindparams(new=NEW_INTERVAL[0], d=OLD_INTERVAL[1], old=OLD_INTERVAL[0])
    )
    for name, table in (
        ("leaderboard_counts_insert", "leaderboard_cache"),
        ("leaderboard_counts_update", "leaderboard_cache"),
        ("leaderboard_counts_delete", "leaderboard_cache"),
        ("leaderboard_counts_truncate", "leaderboard_cache"),
        ("leaderboard_day_inserted", "step_days"),
        ("leaderboard_day_updated", "step_days"),
        ("leaderboard_day_deleted", "step_days"),
        ("leaderboard_walker_changed", "users"),
    ):
        op.execute(f"DROP TRIGGER {name} ON {table}")
    for function in (
        "stepcoin_board_counts()",
        "stepcoin_board_counts_truncated()",
        "stepcoin_board_day_changed()",
        "stepcoin_board_walker_changed()",
        "stepcoin_board_bucket(bigint)",
        "stepcoin_board_bucket_end(bigint)",
    ):
        op.execute(f"DROP FUNCTION {function}")
    # ranks come back with the next rebuild (a full one: every row's rank moves)
    op.add_column("leaderboard_cache", sa.Column("rank", sa.Integer(), nullable=True))
    op.execute("DELETE FROM leaderboard_builds WHERE NOT is_final")
    op.execute(
        "UPDATE leaderboard_cache c SET rank = r.rank FROM (SELECT period, period_start, "
        "user_id, rank() OVER (PARTITION BY period, period_start ORDER BY total_steps DESC) "
        "AS rank FROM leaderboard_cache) r WHERE c.period = r.period "
        "AND c.period_start = r.period_start AND c.user_id = r.user_id"
    )
    op.alter_column("leaderboard_cache", "rank", nullable=False)
    op.create_check_constraint(
        op.f("ck_leaderboard_cache_rank_positive"), "leaderboard_cache", "rank >= 1"
    )
    op.drop_table("leaderboard_rank_counts")
    op.drop_table("leaderboard_dirty")

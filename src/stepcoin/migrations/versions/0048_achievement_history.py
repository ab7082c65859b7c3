"""Achievements read only the open days: each walker's closed history summarised (issue 13).

The achievements read (`GET /v1/achievements`) and the dirty batch computed a walker's facts
(best day, total, approved days, each streak threshold's runs) from every credited day the
walker ever had: ~0.3 µs of PostgreSQL and a Python loop per day and threshold, on every
read, growing with history (3 years: ~1,100 days a read). achievement_history keeps those
facts for the days up to `through`, which no sync can change any more (the sync window plus a
margin; the builder, `achievements.history`, advances it every few days); a read seeds its loop
with them and reads only the days after `through`.

A change to a day of the closed part is rare (a reviewer's decision or an appeal of an old day)
but must never be missed: row triggers on step_days (WHEN the day is at least 10 days back, so
a sync's own days never call them) bump the walker's generation and drop a summary holding
that day, in the transaction that changes it. See achievements/sql/history_stale.v1.sql.

Revision ID: 0048
Revises: 0047
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0048"
down_revision: str | Sequence[str] | None = "0047"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the UTC day 10 days back: achievements.history.CLOSED_AFTER_DAYS (a test keeps them equal)
_OLD = "(now() AT TIME ZONE 'UTC')::date - 10"
TRIGGERS = f"""
CREATE TRIGGER achievement_history_day_inserted AFTER INSERT ON step_days
    FOR EACH ROW WHEN (NEW.credited_steps <> 0 AND NEW.recorded_date <= {_OLD})
    EXECUTE FUNCTION stepcoin_achievement_history_stale();
CREATE TRIGGER achievement_history_day_updated AFTER UPDATE ON step_days
    FOR EACH ROW WHEN ((OLD.credited_steps IS DISTINCT FROM NEW.credited_steps
                        OR OLD.recorded_date <> NEW.recorded_date OR OLD.user_id <> NEW.user_id)
                       AND least(OLD.recorded_date, NEW.recorded_date) <= {_OLD})
    EXECUTE FUNCTION stepcoin_achievement_history_stale();
CREATE TRIGGER achievement_history_day_deleted AFTER DELETE ON step_days
    FOR EACH ROW WHEN (OLD.credited_steps <> 0 AND OLD.recorded_date <= {_OLD})
    EXECUTE FUNCTION stepcoin_achievement_history_stale();
"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE achievement_history (
            user_id uuid NOT NULL,
            generation bigint NOT NULL DEFAULT 0,
            through date,
            total_steps bigint NOT NULL DEFAULT 0,
            approved_days integer NOT NULL DEFAULT 0,
            best_day integer NOT NULL DEFAULT 0,
            thresholds integer[] NOT NULL DEFAULT '{}',
            longest integer[] NOT NULL DEFAULT '{}',
            latest_length integer[] NOT NULL DEFAULT '{}',
            latest_end integer[] NOT NULL DEFAULT '{}',
            computed_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_achievement_history PRIMARY KEY (user_id)
        )
        """
    )
    op.execute(load("stepcoin.achievements", "history_stale.v1.sql"))
    op.execute(TRIGGERS)


def downgrade() -> None:
    for name in ("inserted", "updated", "deleted"):
        op.execute(f"DROP TRIGGER achievement_history_day_{name} ON step_days")
    op.execute("DROP FUNCTION stepcoin_achievement_history_stale()")
    op.execute("DROP TABLE achievement_history")

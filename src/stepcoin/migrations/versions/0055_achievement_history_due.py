"""The due summaries' index on an expression no other query can take (issue 13).

Migration 0054 indexed `achievement_history (through)` for the due search of
`achievements:summarise_history` (`through IS NULL OR through < :stale_before`). The batch's
facts read joins each walker's summary with `through IS NOT NULL`, which that index can also
serve: with statistics taken while most summaries were dropped or not yet built (`through`
NULL, e.g. the bench's data set before the worker's first summaries, autovacuum off), the
planner expected one row from it and read the whole index once per batch (a hash of every
summary: 17-48 ms a batch of 700 at 10,000 walkers, growing with the walkers) or, as a
lateral probe, once per walker (1.7 s a batch). The index is now on
`coalesce(through, '-infinity')`, the due search's own condition written as that expression
(a dropped summary sorts first), which the facts read's `through IS NOT NULL` cannot use.

On a big table an operator builds it first, outside a transaction:
    CREATE INDEX CONCURRENTLY ix_achievement_history_due
        ON achievement_history ((coalesce(through, '-infinity'::date)));
and this migration finds it built (and drops the old one).

Revision ID: 0055
Revises: 0054
Create Date: 2026-12-07 04:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0055"
down_revision: str | Sequence[str] | None = "0054"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_achievement_history_due "
        "ON achievement_history ((coalesce(through, '-infinity'::date)))"
    )
    op.execute("DROP INDEX IF EXISTS ix_achievement_history_through")


def downgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_achievement_history_through ON achievement_history (through)"
    )
    op.execute("DROP INDEX IF EXISTS ix_achievement_history_due")

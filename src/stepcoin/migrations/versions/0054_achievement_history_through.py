"""The summaries due for a rebuild, found without looking at every walker (issue 13).

`achievements:summarise_history` runs every 5 minutes. Its search for walkers to summarise
looked at every walker each time (users anti-joined with achievement_history in id order,
filtered): 140-240 ms at rest at 200,000 walkers, ~1 s at a million, every 5 minutes. Between
its hourly full searches it now searches only the summaries that were dropped (`through` NULL:
a closed day changed) or fell a week behind (`through` before a date): this index finds them
when they are few, and the search walks the key when most are due (the weekly carry-forward).

On a big table an operator builds it first, outside a transaction:
    CREATE INDEX CONCURRENTLY ix_achievement_history_through ON achievement_history (through);
and this migration finds it built.

Revision ID: 0054
Revises: 0053
Create Date: 2026-12-07 02:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0054"
down_revision: str | Sequence[str] | None = "0053"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_achievement_history_through ON achievement_history (through)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_achievement_history_through")

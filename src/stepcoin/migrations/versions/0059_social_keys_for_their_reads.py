"""Indexes for three social statements that read their whole table (issue 13).

Found by running the domain test suites with `enable_seqscan = off` and `auto_explain` (every
plan that still scanned a table had no index that could serve it; BENCHMARKS.md run 24):

- `friend_requests` by sender: sending a request (the sender's latest to the address) and
  `GET /v1/me/friends/requests`' outgoing list (every request a walker sent, not accepted)
  read every request ever made: the only index on `from_id` is the open requests' unique one
  (`status = 'pending'`), which neither statement can use. `ix_friend_requests_from`
  (`from_id, to_email, id`) serves both: the newest per address is a backward range.
- `friend_requests` by address: account deletion removes the requests sent to the walker's
  email, whatever their state (a cancelled one kept the address); only open unattached ones
  were indexed. `ix_friend_requests_to_email` (`to_email`) replaces that partial index
  (`ix_friend_requests_unattached`), whose read (a verified walker's open requests sent before
  the account existed) it serves with the same filter.
- `groups.created_by`: account deletion forgets the walker as creator of their groups; no
  index, every group read. `ix_groups_created_by`, partial (`created_by IS NOT NULL`).

On big tables an operator builds the three first with `CREATE INDEX CONCURRENTLY IF NOT
EXISTS` (the statements below) and this migration finds them built.

Revision ID: 0059
Revises: 0058
Create Date: 2026-12-07 11:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0059"
down_revision: str | Sequence[str] | None = "0058"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_friend_requests_from "
        "ON friend_requests (from_id, to_email, id)"
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_friend_requests_to_email ON friend_requests (to_email)"
    )
    op.execute("DROP INDEX IF EXISTS ix_friend_requests_unattached")
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_groups_created_by ON groups (created_by) "
        "WHERE created_by IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_groups_created_by")
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_friend_requests_unattached ON friend_requests (to_email) "
        "WHERE to_id IS NULL AND status = 'pending'"
    )
    op.execute("DROP INDEX IF EXISTS ix_friend_requests_to_email")
    op.execute("DROP INDEX IF EXISTS ix_friend_requests_from")

"""A walker's unread inbox entries by their own index (issue 13).

Every inbox read (`GET /v1/me/notifications`) counts the walker's unread entries, and
`read-all` marks them; both found them through `ix_notifications_inbox`, which holds every
inbox entry the walker ever got (nothing removes them), and read each entry's row for its
`read_at`: a walker with 5,000 entries, nearly all read, cost 5,000 row reads a look at the
inbox. `ix_notifications_unread` holds only the unread ones (in the inbox order, so the
`?unread=true` page reads it too); marking an entry read takes it out.

On a big table an operator builds it first, outside a transaction:
    CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_notifications_unread ON notifications
        (user_id, created_at, id) WHERE in_inbox AND read_at IS NULL;
and this migration finds it built.

Revision ID: 0061
Revises: 0060
Create Date: 2026-12-07 19:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0061"
down_revision: str | Sequence[str] | None = "0060"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_notifications_unread ON notifications "
        "(user_id, created_at, id) WHERE in_inbox AND read_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_notifications_unread")

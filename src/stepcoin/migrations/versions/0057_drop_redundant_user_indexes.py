"""Four indexes that repeated their table's primary key (issue 13).

Since issue 19 item 4 put the walker first in the keys of admin_sessions, push_devices,
refresh_tokens and user_identities (`(user_id, id)`), their single-column indexes on
`user_id` served nothing the primary key (and a unique `(user_id, ...)` index besides) does
not: each was one more index entry to write and vacuum with every sign-in, token refresh,
device registration and identity link, and pages of cache. A test now finds any such index
in the schema (`tests/test_migrations.py`).

`DROP INDEX` takes the table's lock for a moment; on a busy table an operator runs
`DROP INDEX CONCURRENTLY IF EXISTS <name>` for each first, and this migration finds them gone.

Revision ID: 0057
Revises: 0056
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0057"
down_revision: str | Sequence[str] | None = "0056"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_admin_sessions_user_id": "admin_sessions",
    "ix_push_devices_user": "push_devices",
    "ix_refresh_tokens_user_id": "refresh_tokens",
    "ix_user_identities_user_id": "user_identities",
}


def upgrade() -> None:
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")


def downgrade() -> None:
    for name, table in INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} (user_id)")

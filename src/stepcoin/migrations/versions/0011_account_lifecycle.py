"""The account lifecycle (issue 12, section 2): deletion leaves a tombstone.

- users.deleted_at: when the walker deleted the account. The row stays (the ledger, orders and
  audit rows point at it) with its personal data erased: a tombstone email
  deleted+<id>@deleted.invalid frees the real one, the name is "Deleted walker", no phone, no
  password, no second factor, no linked Google/Apple identity.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("deleted_at", sa.DateTime(timezone=True)))
    op.create_check_constraint(
        op.f("ck_users_deleted_is_inactive"), "users", "deleted_at IS NULL OR NOT is_active"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_users_deleted_is_inactive"), "users", type_="check")
    op.drop_column("users", "deleted_at")

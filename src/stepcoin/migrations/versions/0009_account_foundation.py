"""The ground for the account lifecycle (issue 12).

- users.email_verified_at: when the walker proved the email is theirs (a verification mail,
  or a Google/Apple sign-in whose token says the provider verified it). Accounts created by a
  social sign-in before this revision are taken as verified (the provider had verified them).
- users.sessions_valid_after: a console session that began before it is over; set by every
  password change or reset together with the revocation of the refresh-token families.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("email_verified_at", sa.DateTime(timezone=True)))
    op.add_column("users", sa.Column("sessions_valid_after", sa.DateTime(timezone=True)))
    op.execute("UPDATE users SET email_verified_at = created_at WHERE auth_method <> 'email'")


def downgrade() -> None:
    op.drop_column("users", "sessions_valid_after")
    op.drop_column("users", "email_verified_at")

"""Throttles that reserve each attempt before checking it (issue 12, holes 2, 3 and 10).

- login_throttle.blocked_until goes: a key is refused while its window's count is at its
  limit (stepcoin.auth.throttle), so no separate block time is kept.
- The sign-in limits split: the old per-account limit becomes the limit per account AND client
  address (`auth.login_max_failures_per_account_and_address`, same value); the account alone
  gets a wider limit (ten times the old one, at least 50), so an attack from other addresses
  does not lock the owner out from their own.
- New settings: the console's second-factor limit and the sign-up throttle.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 18:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Defaults of the new runtime settings at this revision (frozen data).
SETTINGS_SEED = [
    (
        "auth.totp_max_failures",
        5,
        "Wrong console TOTP codes for one account within the window before codes are refused "
        "(only a passed code clears the count, never a correct password).",
    ),
    (
        "auth.signup_max_per_address",
        50,
        "Sign-ups (each hashes a password) from one client address within the sign-up window.",
    ),
    ("auth.signup_max_per_email", 5, "Sign-up attempts for one email within the sign-up window."),
    ("auth.signup_window_seconds", 3600, "Window in which sign-ups are counted."),
]

PAIR_DESCRIPTION = (
    "Failed sign-ins for one email from one client address within the window before that "
    "address is refused for that email."
)
ACCOUNT_DESCRIPTION = (
    "Failed sign-ins for one email from all addresses together within the window before the "
    "email is refused everywhere (wider than per address, so an attack from elsewhere does not "
    "lock the owner out at once)."
)
OLD_ACCOUNT_DESCRIPTION = "Failed logins for one email within the window before it is throttled."


def upgrade() -> None:
    op.execute("DELETE FROM login_throttle")  # counts of the old meaning; windows are short
    op.drop_column("login_throttle", "blocked_until")
    op.execute(
        sa.text(
            "INSERT INTO settings (key, value, description) "
            "SELECT 'auth.login_max_failures_per_account_and_address', value, :d "
            "FROM settings WHERE key = 'auth.login_max_failures_per_account' "
            "ON CONFLICT (key) DO NOTHING"
        ).bindparams(d=PAIR_DESCRIPTION)
    )
    op.execute(
        sa.text(
            "UPDATE settings SET description = :d, value = to_jsonb(greatest(50, "
            "least(100000, 10 * (value #>> '{}')::int))) "
            "WHERE key = 'auth.login_max_failures_per_account' AND jsonb_typeof(value) = 'number'"
        ).bindparams(d=ACCOUNT_DESCRIPTION)
    )
    settings = sa.table(
        "settings",
        sa.column("key", sa.String),
        sa.column("value", postgresql.JSONB),
        sa.column("description", sa.Text),
    )
    op.bulk_insert(
        settings, [{"key": k, "value": v, "description": d} for k, v, d in SETTINGS_SEED]
    )


def downgrade() -> None:
    op.execute(
        "DELETE FROM settings WHERE key IN ('auth.totp_max_failures', "
        "'auth.signup_max_per_address', 'auth.signup_max_per_email', "
        "'auth.signup_window_seconds')"
    )
    op.execute(
        sa.text(
            "UPDATE settings AS s SET value = p.value, description = :d FROM settings p "
            "WHERE s.key = 'auth.login_max_failures_per_account' "
            "AND p.key = 'auth.login_max_failures_per_account_and_address'"
        ).bindparams(d=OLD_ACCOUNT_DESCRIPTION)
    )
    op.execute("DELETE FROM settings WHERE key = 'auth.login_max_failures_per_account_and_address'")
    op.add_column(
        "login_throttle", sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True)
    )

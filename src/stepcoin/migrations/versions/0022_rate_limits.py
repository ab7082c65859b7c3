"""Rate limits (issue 14, item 4): the buckets, and the limits as runtime settings.

`rate_limit_buckets` is UNLOGGED: counters shared by every API process without WAL (so without
a flush at commit); a crash or a restore empties it, which only forgives. The settings
`ratelimit.<policy>_per_account` / `_per_address` are seeded with their registry defaults
(stepcoin.ratelimit reads them; an absent key falls back to the same default).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACCOUNT = "by one signed-in account, as <amount>/<period>; beyond it, 429 with Retry-After."
_ADDRESS = (
    "from one client address (an IPv6 /64), as <amount>/<period>; beyond it, 429 with Retry-After."
)
SEEDS = {  # as the registry had them when this revision was written
    "ratelimit.sync_per_account": ("30/minute", f"Step syncs (POST /v1/steps) {_ACCOUNT}"),
    "ratelimit.sync_per_address": ("600/minute", f"Step syncs (POST /v1/steps) {_ADDRESS}"),
    "ratelimit.orders_per_account": ("10/minute", f"Orders placed or cancelled {_ACCOUNT}"),
    "ratelimit.orders_per_address": ("300/minute", f"Orders placed or cancelled {_ADDRESS}"),
    "ratelimit.exports_per_account": ("5/hour", f"Data exports (GET /v1/me/export) {_ACCOUNT}"),
    "ratelimit.exports_per_address": ("60/hour", f"Data exports (GET /v1/me/export) {_ADDRESS}"),
    "ratelimit.mails_per_account": (
        "5/hour",
        f"Mail requests (verification mail, password reset) {_ACCOUNT}",
    ),
    "ratelimit.mails_per_address": (
        "20/15 minutes",
        f"Mail requests (verification mail, password reset) {_ADDRESS}",
    ),
    "ratelimit.sessions_per_address": (
        "300/minute",
        f"Token refreshes and Google or Apple sign-ins {_ADDRESS}",
    ),
}


def upgrade() -> None:
    op.create_table(
        "rate_limit_buckets",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("spent_until", sa.Double(), nullable=False),
        sa.Column("step", sa.Double(), nullable=False),
        sa.Column("span", sa.Double(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limit_buckets")),
        prefixes=["UNLOGGED"],
    )
    for key, (value, description) in SEEDS.items():
        op.execute(
            sa.text(
                "INSERT INTO settings (key, value, description) "
                "VALUES (:k, to_jsonb(CAST(:v AS text)), :d) ON CONFLICT (key) DO NOTHING"
            ).bindparams(k=key, v=value, d=description)
        )


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM settings WHERE key IN :keys").bindparams(
            sa.bindparam("keys", value=list(SEEDS), expanding=True)
        )
    )
    op.drop_table("rate_limit_buckets")

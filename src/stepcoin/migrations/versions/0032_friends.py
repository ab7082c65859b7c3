"""Friends by consent (issue 17, item 1): invitations, friendships, requests, blocks, reports.

- friend_invitations: only the SHA-256 of a code (unique), its expiry, revocation and use;
- friendships: both directions (PK user_id, friend_id), the owner's private alias;
- friend_requests: by exact email (to_id NULL when no walker had it), one open per sender and
  address;
- blocks (PK blocker_id, blocked_id) and reports (the moderation queue, by status);
- runtime settings `friends.invitation_days`, `friends.max_friends`,
  `friends.max_open_invitations` and the rate limits of the policy `friend_codes`, seeded with
  their registry defaults.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-04 23:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | Sequence[str] | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHAT = "Friend invitation look-ups and accepts, and friend requests by email"
SEEDS = {  # key: (value as JSON, description), as the registry had them at this revision
    "friends.invitation_days": ("7", "Days a friend invitation code stays valid."),
    "friends.max_friends": (
        "500",
        "Most friends a walker can have; an accept beyond it on either side is refused "
        "(409 friend_limit_reached).",
    ),
    "friends.max_open_invitations": (
        "20",
        "Most open (unexpired, unrevoked, unused) friend invitations per walker.",
    ),
    "ratelimit.friend_codes_per_account": (
        '"30/hour"',
        f"{_WHAT} by one signed-in account, as <amount>/<period>; beyond it, 429 with Retry-After.",
    ),
    "ratelimit.friend_codes_per_address": (
        '"300/hour"',
        f"{_WHAT} from one client address (an IPv6 /64), as <amount>/<period>; beyond it, 429 "
        "with Retry-After.",
    ),
}


def _now() -> sa.Column[Any]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _fk(table: str, column: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["users.id"], name=op.f(f"fk_{table}_{column}_users"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "friend_invitations",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("inviter_id", sa.UUID(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        _now(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.UUID(), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        _fk("friend_invitations", "inviter_id"),
        _fk("friend_invitations", "accepted_by", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_friend_invitations")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_friend_invitations_code_hash")),
    )
    op.create_index(
        "ix_friend_invitations_open",
        "friend_invitations",
        ["inviter_id", "expires_at"],
        unique=False,
        postgresql_where=sa.text("revoked_at IS NULL AND accepted_at IS NULL"),
    )
    op.create_table(
        "friendships",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("friend_id", sa.UUID(), nullable=False),
        sa.Column("alias", sa.String(length=60), nullable=True),
        _now(),
        sa.CheckConstraint("user_id <> friend_id", name=op.f("ck_friendships_not_self")),
        _fk("friendships", "user_id"),
        _fk("friendships", "friend_id"),
        sa.PrimaryKeyConstraint("user_id", "friend_id", name=op.f("pk_friendships")),
    )
    op.create_index("ix_friendships_friend", "friendships", ["friend_id"], unique=False)
    op.create_table(
        "friend_requests",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("from_id", sa.UUID(), nullable=False),
        sa.Column("to_id", sa.UUID(), nullable=True),
        sa.Column("to_email", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        _now(),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'declined', 'cancelled')",
            name=op.f("ck_friend_requests_status"),
        ),
        sa.CheckConstraint("from_id <> to_id", name=op.f("ck_friend_requests_not_self")),
        _fk("friend_requests", "from_id"),
        _fk("friend_requests", "to_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_friend_requests")),
    )
    op.create_index(
        "uq_friend_requests_open",
        "friend_requests",
        ["from_id", "to_email"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_friend_requests_to", "friend_requests", ["to_id", "status"], unique=False)
    op.create_table(
        "blocks",
        sa.Column("blocker_id", sa.UUID(), nullable=False),
        sa.Column("blocked_id", sa.UUID(), nullable=False),
        _now(),
        sa.CheckConstraint("blocker_id <> blocked_id", name=op.f("ck_blocks_not_self")),
        _fk("blocks", "blocker_id"),
        _fk("blocks", "blocked_id"),
        sa.PrimaryKeyConstraint("blocker_id", "blocked_id", name=op.f("pk_blocks")),
    )
    op.create_index("ix_blocks_blocked", "blocks", ["blocked_id"], unique=False)
    op.create_table(
        "reports",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("reporter_id", sa.UUID(), nullable=True),
        sa.Column("reported_id", sa.UUID(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        _now(),
        sa.Column("resolved_by", sa.UUID(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'resolved')", name=op.f("ck_reports_status")),
        sa.CheckConstraint("reporter_id <> reported_id", name=op.f("ck_reports_not_self")),
        _fk("reports", "reporter_id", "SET NULL"),
        _fk("reports", "reported_id"),
        _fk("reports", "resolved_by", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
    )
    op.create_index("ix_reports_queue", "reports", ["status", "created_at", "id"], unique=False)
    for key, (value, description) in SEEDS.items():
        op.execute(
            sa.text(
                "INSERT INTO settings (key, value, description) "
                "VALUES (:k, CAST(:v AS jsonb), :d) ON CONFLICT (key) DO NOTHING"
            ).bindparams(k=key, v=value, d=description)
        )


def downgrade() -> None:
    op.execute(
        sa.text("DELETE FROM settings WHERE key IN :keys").bindparams(
            sa.bindparam("keys", value=list(SEEDS), expanding=True)
        )
    )
    op.drop_index("ix_reports_queue", table_name="reports")
    op.drop_table("reports")
    op.drop_index("ix_blocks_blocked", table_name="blocks")
    op.drop_table("blocks")
    op.drop_index("ix_friend_requests_to", table_name="friend_requests")
    op.drop_index(
        "uq_friend_requests_open",
        table_name="friend_requests",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_table("friend_requests")
    op.drop_index("ix_friendships_friend", table_name="friendships")
    op.drop_table("friendships")
    op.drop_index(
        "ix_friend_invitations_open",
        table_name="friend_invitations",
        postgresql_where=sa.text("revoked_at IS NULL AND accepted_at IS NULL"),
    )
    op.drop_table("friend_invitations")

"""The placement of every table on Citus (issue 19 item 4, part B): every key of a table that
stepcoin.distribution declares distributed carries its distribution column, and no foreign key
crosses a placement Citus cannot hold (tests/test_distribution.py reads the catalog).

- global_keys (kind, key) -> user_id: the owner of a globally unique key (an email, a Google or
  Apple subject, a push token, a referral code), sharded by the key and written by the code in
  the same transaction as the row it indexes; backfilled here. users.email,
  user_identities (provider, subject), push_devices (platform, token) and referral_codes.code
  are then unique per walker only (with a plain index for their lookups).
- refresh_tokens, email_tokens, admin_sessions: unique on (user_id, token_hash), a plain index
  on token_hash for tokens issued before tokens carried their walker's id.
- user_identities, push_devices, refresh_tokens, email_tokens, admin_sessions: primary key
  (user_id, id). refresh_tokens.replaced_by points within the walker: (user_id, replaced_by)
  -> (user_id, id), ON DELETE SET NULL (replaced_by).
- Foreign keys into users from tables that stay on the coordinator or are copied to every node
  (admin and audit columns, the social and challenge tables), and from per-user tables through
  a column that is not their shard key (friendships.friend_id, blocks.blocked_id,
  link_clearances.cleared_by), are dropped: a users row is never deleted (an account deletion
  keeps a tombstone), so none of their ON DELETE actions ever ran outside tests.

The hot per-user tables (coin_transactions, issuance_holds, orders, order_items,
step_validations, notifications, notification_deliveries, adjustment_requests) are part A's
(migration 0038), which this revision follows.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-06 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0039"
down_revision: str | Sequence[str] | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, ON DELETE) of every foreign key into users that goes
DROPPED_USER_KEYS = [
    ("admin_logs", "admin_id", "SET NULL"),
    ("settings", "updated_by", "SET NULL"),
    ("earn_rules", "created_by", "SET NULL"),
    ("earn_rules", "withdrawn_by", "SET NULL"),
    ("campaigns", "created_by", "SET NULL"),
    ("campaigns", "approved_by", "SET NULL"),
    ("campaigns", "run_by", "SET NULL"),
    ("broadcasts", "created_by", "SET NULL"),
    ("broadcasts", "approved_by", "SET NULL"),
    ("broadcasts", "run_by", "SET NULL"),
    ("leaderboard_prizes", "updated_by", "SET NULL"),
    ("issuance_budgets", "updated_by", "SET NULL"),
    ("link_clearances", "cleared_by", "SET NULL"),
    ("referrals", "referrer_id", "CASCADE"),
    ("referrals", "invitee_id", "CASCADE"),
    ("referrals", "reviewed_by", "SET NULL"),
    ("friend_invitations", "inviter_id", "CASCADE"),
    ("friend_invitations", "accepted_by", "SET NULL"),
    ("friendships", "friend_id", "CASCADE"),
    ("friend_requests", "from_id", "CASCADE"),
    ("friend_requests", "to_id", "CASCADE"),
    ("blocks", "blocked_id", "CASCADE"),
    ("reports", "reporter_id", "SET NULL"),
    ("reports", "reported_id", "CASCADE"),
    ("reports", "resolved_by", "SET NULL"),
    ("groups", "created_by", "SET NULL"),
    ("group_members", "user_id", "CASCADE"),
    ("group_join_requests", "user_id", "CASCADE"),
    ("group_bans", "user_id", "CASCADE"),
    ("group_bans", "banned_by", "SET NULL"),
    ("leaderboard_group_entries", "user_id", "CASCADE"),
    ("challenges", "creator_id", "SET NULL"),
    ("challenge_participants", "user_id", "CASCADE"),
    ("challenge_invitees", "user_id", "CASCADE"),
    ("challenge_scores", "user_id", "CASCADE"),
]

# tables whose lone `id` primary key becomes (user_id, id)
WALKER_KEYED = [
    "user_identities",
    "push_devices",
    "refresh_tokens",
    "email_tokens",
    "admin_sessions",
]
# tables whose unique token_hash becomes unique per walker, with a plain index for old tokens
TOKEN_TABLES = ["refresh_tokens", "email_tokens", "admin_sessions"]


def upgrade() -> None:
    op.create_table(
        "global_keys",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "kind IN ('email', 'identity', 'push_token', 'referral_code')",
            name=op.f("ck_global_keys_kind"),
        ),
        sa.PrimaryKeyConstraint("kind", "key", name=op.f("pk_global_keys")),
    )
    op.create_index("ix_global_keys_user_id", "global_keys", ["user_id"])
    op.execute(
        """
        INSERT INTO global_keys (kind, key, user_id)
        SELECT 'email', email, id FROM users
        UNION ALL
        SELECT 'identity', provider || ':' || subject, user_id FROM user_identities
        UNION ALL
        SELECT 'push_token', platform || ':' || token, user_id FROM push_devices
        UNION ALL
        SELECT 'referral_code', code, user_id FROM referral_codes
        """
    )

    for table, column, _ in DROPPED_USER_KEYS:
        op.drop_constraint(f"fk_{table}_{column}_users", table, type_="foreignkey")

    op.drop_constraint("fk_refresh_tokens_replaced_by_refresh_tokens", "refresh_tokens")
    for table in WALKER_KEYED:
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, ["user_id", "id"])
    op.execute(
        "ALTER TABLE refresh_tokens ADD CONSTRAINT fk_refresh_tokens_user_id_refresh_tokens "
        "FOREIGN KEY (user_id, replaced_by) REFERENCES refresh_tokens (user_id, id) "
        "ON DELETE SET NULL (replaced_by)"
    )

    for table in TOKEN_TABLES:
        op.drop_index(f"ix_{table}_token_hash", table_name=table)
        op.create_index(f"ix_{table}_token_hash", table, ["token_hash"])
        op.create_index(
            f"ix_{table}_user_id_token_hash", table, ["user_id", "token_hash"], unique=True
        )

    op.drop_constraint("uq_users_email", "users", type_="unique")
    op.create_index("ix_users_email", "users", ["email"])
    op.drop_constraint("uq_user_identities_provider_subject", "user_identities", type_="unique")
    op.create_unique_constraint(
        "uq_user_identities_user_id_provider_subject",
        "user_identities",
        ["user_id", "provider", "subject"],
    )
    op.create_index(
        "ix_user_identities_provider_subject", "user_identities", ["provider", "subject"]
    )
    op.drop_constraint("uq_push_devices_platform_token", "push_devices", type_="unique")
    op.create_unique_constraint(
        "uq_push_devices_user_id_platform_token", "push_devices", ["user_id", "platform", "token"]
    )
    op.create_index("ix_push_devices_platform_token", "push_devices", ["platform", "token"])
    op.drop_constraint("uq_referral_codes_code", "referral_codes", type_="unique")
    op.create_unique_constraint(
        "uq_referral_codes_user_id_code", "referral_codes", ["user_id", "code"]
    )
    op.create_index("ix_referral_codes_code", "referral_codes", ["code"])


def downgrade() -> None:
    op.drop_index("ix_referral_codes_code", table_name="referral_codes")
    op.drop_constraint("uq_referral_codes_user_id_code", "referral_codes", type_="unique")
    op.create_unique_constraint("uq_referral_codes_code", "referral_codes", ["code"])
    op.drop_index("ix_push_devices_platform_token", table_name="push_devices")
    op.drop_constraint("uq_push_devices_user_id_platform_token", "push_devices", type_="unique")
    op.create_unique_constraint(
        "uq_push_devices_platform_token", "push_devices", ["platform", "token"]
    )
    op.drop_index("ix_user_identities_provider_subject", table_name="user_identities")
    op.drop_constraint(
        "uq_user_identities_user_id_provider_subject", "user_identities", type_="unique"
    )
    op.create_unique_constraint(
        "uq_user_identities_provider_subject", "user_identities", ["provider", "subject"]
    )
    op.drop_index("ix_users_email", table_name="users")
    op.create_unique_constraint("uq_users_email", "users", ["email"])

    for table in TOKEN_TABLES:
        op.drop_index(f"ix_{table}_user_id_token_hash", table_name=table)
        op.drop_index(f"ix_{table}_token_hash", table_name=table)
        op.create_index(f"ix_{table}_token_hash", table, ["token_hash"], unique=True)

    op.drop_constraint("fk_refresh_tokens_user_id_refresh_tokens", "refresh_tokens")
    for table in WALKER_KEYED:
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, ["id"])
    op.create_foreign_key(
        "fk_refresh_tokens_replaced_by_refresh_tokens",
        "refresh_tokens",
        "refresh_tokens",
        ["replaced_by"],
        ["id"],
        ondelete="SET NULL",
    )

    for table, column, ondelete in DROPPED_USER_KEYS:
        op.create_foreign_key(
            f"fk_{table}_{column}_users", table, "users", [column], ["id"], ondelete=ondelete
        )

    op.drop_index("ix_global_keys_user_id", table_name="global_keys")
    op.drop_table("global_keys")

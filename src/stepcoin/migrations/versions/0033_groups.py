"""Groups (issue 17, item 2): groups, their members with roles, join requests and bans.

- groups: name, kind (friends, club, team, company), open or by request, a description and,
  for a company group, the email domain an admin bound it to;
- group_members (PK group_id, user_id; one owner per group by a partial unique index; by
  user for a walker's groups): the group board reads a group's members as one index range;
- group_join_requests and group_bans (PK group_id, user_id);
- leaderboard_group_entries: each group's board rows (leaderboard_cache x group_members), kept
  by statement triggers (leaderboards/sql/group_boards.v1.sql): a group's board reads its
  top as an index range and a rank as an index-only count;
- runtime settings `groups.max_members`, `groups.max_memberships`, `groups.max_owned`, seeded
  with their registry defaults.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-05 23:30:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0033"
down_revision: str | Sequence[str] | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEEDS = {  # key: (value as JSON, description), as the registry had them at this revision
    "groups.max_members": (
        "10000",
        "Most members a group can have; a join or an approval beyond it is refused "
        "(409 group_full).",
    ),
    "groups.max_memberships": (
        "50",
        "Most groups a walker can belong to (owned ones included); beyond it, 409 "
        "group_limit_reached.",
    ),
    "groups.max_owned": (
        "10",
        "Most groups a walker can own; creating or taking over one more is refused "
        "(409 owned_group_limit_reached).",
    ),
}


TRIGGERS = """
CREATE TRIGGER leaderboard_group_insert AFTER INSERT ON leaderboard_cache
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stepcoin_group_board_upsert();
CREATE TRIGGER leaderboard_group_update AFTER UPDATE ON leaderboard_cache
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stepcoin_group_board_update();
CREATE TRIGGER leaderboard_group_delete AFTER DELETE ON leaderboard_cache
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stepcoin_group_board_delete();
CREATE TRIGGER leaderboard_group_truncate AFTER TRUNCATE ON leaderboard_cache
    FOR EACH STATEMENT EXECUTE FUNCTION stepcoin_group_board_truncated();
CREATE TRIGGER leaderboard_group_joined AFTER INSERT ON group_members
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stepcoin_group_board_joined();
CREATE TRIGGER leaderboard_group_left AFTER DELETE ON group_members
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION stepcoin_group_board_left();
"""
FUNCTIONS = (
    "stepcoin_group_board_upsert",
    "stepcoin_group_board_update",
    "stepcoin_group_board_delete",
    "stepcoin_group_board_truncated",
    "stepcoin_group_board_joined",
    "stepcoin_group_board_left",
)


def _at(name: str = "created_at") -> sa.Column[Any]:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _user_fk(table: str, column: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["users.id"], name=op.f(f"fk_{table}_{column}_users"), ondelete=ondelete
    )


def _group_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["group_id"], ["groups.id"], name=op.f(f"fk_{table}_group_id_groups"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("is_open", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("email_domain", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
        _at(),
        sa.CheckConstraint(
            "kind IN ('friends', 'club', 'team', 'company')", name=op.f("ck_groups_kind")
        ),
        sa.CheckConstraint(
            "email_domain IS NULL OR kind = 'company'", name=op.f("ck_groups_domain_for_company")
        ),
        _user_fk("groups", "created_by", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("role", sa.String(length=8), server_default="member", nullable=False),
        _at("joined_at"),
        sa.CheckConstraint(
            "role IN ('owner', 'admin', 'member')", name=op.f("ck_group_members_role")
        ),
        _group_fk("group_members"),
        _user_fk("group_members", "user_id"),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_group_members")),
    )
    op.create_index("ix_group_members_user", "group_members", ["user_id"], unique=False)
    op.create_index(
        "uq_group_members_owner",
        "group_members",
        ["group_id"],
        unique=True,
        postgresql_where=sa.text("role = 'owner'"),
    )
    for table in ("group_join_requests", "group_bans"):
        extra = [sa.Column("banned_by", sa.UUID(), nullable=True)] if table == "group_bans" else []
        fks = [_user_fk(table, "banned_by", "SET NULL")] if table == "group_bans" else []
        op.create_table(
            table,
            sa.Column("group_id", sa.BigInteger(), nullable=False),
            sa.Column("user_id", sa.UUID(), nullable=False),
            *extra,
            _at(),
            _group_fk(table),
            _user_fk(table, "user_id"),
            *fks,
            sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f(f"pk_{table}")),
        )
        op.create_index(f"ix_{table}_user", table, ["user_id"], unique=False)
    op.create_table(
        "leaderboard_group_entries",
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("total_steps", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "period IN ('daily', 'weekly', 'monthly', 'all_time')",
            name=op.f("ck_leaderboard_group_entries_period"),
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_leaderboard_group_entries_group_id_groups"),
            ondelete="CASCADE",
        ),
        _user_fk("leaderboard_group_entries", "user_id"),
        sa.PrimaryKeyConstraint(
            "group_id",
            "period",
            "period_start",
            "user_id",
            name=op.f("pk_leaderboard_group_entries"),
        ),
    )
    op.create_index(
        "ix_leaderboard_group_entries_order",
        "leaderboard_group_entries",
        ["group_id", "period", "period_start", sa.text("total_steps DESC"), "user_id"],
        unique=False,
    )
    op.execute(load("stepcoin.leaderboards", "group_boards.v1.sql"))
    op.execute(TRIGGERS)
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
    for trigger, table in (
        ("leaderboard_group_insert", "leaderboard_cache"),
        ("leaderboard_group_update", "leaderboard_cache"),
        ("leaderboard_group_delete", "leaderboard_cache"),
        ("leaderboard_group_truncate", "leaderboard_cache"),
        ("leaderboard_group_joined", "group_members"),
        ("leaderboard_group_left", "group_members"),
    ):
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}()")
    op.drop_index("ix_leaderboard_group_entries_order", table_name="leaderboard_group_entries")
    op.drop_table("leaderboard_group_entries")
    for table in ("group_bans", "group_join_requests"):
        op.drop_index(f"ix_{table}_user", table_name=table)
        op.drop_table(table)
    op.drop_index(
        "uq_group_members_owner",
        table_name="group_members",
        postgresql_where=sa.text("role = 'owner'"),
    )
    op.drop_index("ix_group_members_user", table_name="group_members")
    op.drop_table("group_members")
    op.drop_table("groups")

"""Push broadcasts (issue 18, item 7): the broadcasts table (a segment of the campaigns'
builder, the approval and the run's cursor), an index finding a broadcast's notifications by
their dedupe key; the walker's own daily step goal (users.daily_step_goal); runtime settings
`notify.pushes_per_second_per_platform`, `notify.broadcast_approval_threshold_walkers`.

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-06 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0036"
down_revision: str | Sequence[str] | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEEDS = {  # key: (value as JSON, description), as the registry had them at this revision
    "notify.pushes_per_second_per_platform": (
        "5000",
        "Most pushes one worker process sends per second to each push service (FCM, "
        "APNs); FCM allows 600,000 a minute per project (10,000/s): keep workers x this "
        "below it.",
    ),
    "notify.broadcast_approval_threshold_walkers": (
        "10000",
        "A broadcast to more walkers than this runs only once a second admin has approved it.",
    ),
}


def _admin_fk(column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["users.id"], name=op.f(f"fk_broadcasts_{column}_users"), ondelete="SET NULL"
    )


def upgrade() -> None:
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.String(length=1000), nullable=False),
        sa.Column("segment", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="draft", nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("approved_by", sa.UUID(), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_walkers", sa.BigInteger(), nullable=True),
        sa.Column("run_by", sa.UUID(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("walkers_total", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("walkers_queued", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("resume_after", sa.UUID(), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'approved', 'running', 'done')", name=op.f("ck_broadcasts_status")
        ),
        _admin_fk("created_by"),
        _admin_fk("approved_by"),
        _admin_fk("run_by"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    op.create_index("ix_broadcasts_created_at", "broadcasts", ["created_at"], unique=False)
    op.create_index(
        "ix_notifications_broadcast",
        "notifications",
        ["dedupe_key"],
        unique=False,
        postgresql_where=sa.text("kind = 'broadcast'"),
    )
    op.add_column("users", sa.Column("daily_step_goal", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_users_daily_step_goal"),
        "users",
        "daily_step_goal IS NULL OR daily_step_goal BETWEEN 1 AND 100000",
    )
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
    op.drop_constraint(op.f("ck_users_daily_step_goal"), "users", type_="check")
    op.drop_column("users", "daily_step_goal")
    op.drop_index("ix_notifications_broadcast", table_name="notifications")
    op.drop_index("ix_broadcasts_created_at", table_name="broadcasts")
    op.drop_table("broadcasts")

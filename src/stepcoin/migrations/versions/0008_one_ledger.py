"""One ledger, one queue: every coin movement through one posting function.

- stepcoin_defer_job: the queue's defer (a waiting job of the same queueing lock is a no-op).
- stepcoin_wallet_post: the wallet's one door (lock, ledger row, counters, no negative balance).
- wallets.steps_version becomes wallets.version, bumped by every post.
- stepcoin_apply_sync v3: readable payload names; coins move through stepcoin_wallet_post.
- The lifetime counters follow one rule (shop movements change lifetime_spent, every other
  movement lifetime_earned), back-filled from the ledger.
- coin_transactions and admin_logs are append-only (triggers refuse UPDATE, DELETE, TRUNCATE).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 13:40:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_TABLES = ("coin_transactions", "admin_logs")


def _apply_sync_as_of_0007() -> str:
    """The function as 0007 left it (for the downgrade), built the way 0007 built it."""
    path = Path(__file__).with_name("0007_console.py")
    spec = importlib.util.spec_from_file_location("stepcoin_migration_0007", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sql: str = module._apply_sync_0003()
    return sql.replace(module.OLD_VALIDATION_UPDATE, module.NEW_VALIDATION_UPDATE)


def upgrade() -> None:
    op.execute(load("stepcoin", "defer_job.v1.sql"))
    op.alter_column("wallets", "steps_version", new_column_name="version")
    op.execute(load("stepcoin.wallet", "post.v1.sql"))
    op.execute(load("stepcoin.steps", "apply_sync.v3.sql"))
    op.execute(load("stepcoin.wallet", "backfill_counters.v1.sql"))
    op.execute(load("stepcoin", "append_only.v1.sql"))
    for table in APPEND_ONLY_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION stepcoin_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION stepcoin_append_only()"
        )


def downgrade() -> None:
    for table in APPEND_ONLY_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    op.execute("DROP FUNCTION IF EXISTS stepcoin_append_only()")
    op.alter_column("wallets", "version", new_column_name="steps_version")
    op.execute(_apply_sync_as_of_0007())
    op.execute(
        "DROP FUNCTION IF EXISTS stepcoin_wallet_post(uuid, bigint[], text[], text[], text[], "
        "bigint, boolean)"
    )
    op.execute("DROP FUNCTION IF EXISTS stepcoin_defer_job(text, text, text, text, jsonb)")

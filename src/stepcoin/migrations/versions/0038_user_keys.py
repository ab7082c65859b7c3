"""Every key of the hot per-user tables carries user_id (issue 19 item 4, part A), so that each
can be distributed by user_id on Citus (whose unique keys and foreign keys between distributed
tables must include the distribution column).

- coin_transactions, issuance_holds: UNIQUE (transaction_type, reference_id) becomes
  (transaction_type, reference_id, user_id): a reference is unique PER WALKER
  (docs/scale-out.md, "Ledger references per user", shows every caller needs no more);
  PRIMARY KEY (id) becomes (id, user_id).
- orders: PRIMARY KEY (id, user_id); UNIQUE (order_code) becomes (order_code, user_id) (the
  order-code directory of part B keeps a code unique across walkers); UNIQUE (user_id,
  idempotency_key) stays.
- order_items: gains user_id (NOT NULL, copied from its order); PRIMARY KEY (id, user_id);
  UNIQUE (order_id, product_id, user_id); FOREIGN KEY (user_id, order_id) -> orders (user_id,
  id) ON DELETE CASCADE instead of (order_id) -> orders (id).
- step_validations, adjustment_requests (user_id is the walker adjusted), notifications:
  PRIMARY KEY (id, user_id).
- notification_deliveries: gains user_id (NOT NULL, copied from its notification); PRIMARY
  KEY (notification_id, device_id, user_id); FOREIGN KEY (user_id, notification_id) ->
  notifications (user_id, id) ON DELETE CASCADE.
- stepcoin_wallet_post v2, stepcoin_apply_sync v8, stepcoin_place_order v3: their look-ups and
  ON CONFLICT targets name the walker. stepcoin_wallet_post_many and _hold_many call post by
  name and touch no changed key: unchanged.

Keys lead with the column that is looked up WITHOUT the walker (id; transaction_type and
reference_id; order_code; notification_id): on one node those look-ups (console, jobs, webhooks,
the retention job walking ids) keep their index, and new ids append at the index's right edge
instead of landing on a page per walker. Citus asks only that the key include user_id.

Each new unique index is built before the old key is dropped. Here it is a plain CREATE UNIQUE
INDEX inside the migration's transaction, which blocks writes to the table while it builds:
fine for the tables this project has had so far. An operator with a big table runs, before
this migration and outside a transaction, for each key:
    CREATE UNIQUE INDEX CONCURRENTLY <new name>_tmp ON <table> (<columns>);
and then, in a short transaction, the swap this migration does:
    ALTER TABLE <table> DROP CONSTRAINT <old key>,
        ADD CONSTRAINT <new name> PRIMARY KEY | UNIQUE USING INDEX <new name>_tmp;
(this migration reuses such an index when it finds one by that name). A new foreign key on a
big table: ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in its own transaction (it
takes no write lock); the user_id backfill of order_items and notification_deliveries in
batches of a few thousand rows before that.

Downgrade restores the single-column keys; it fails (and changes nothing) if two walkers now
share a ledger reference or an order code, which the old keys cannot hold.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-06 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from stepcoin.sqlfiles import load

revision: str = "0038"
down_revision: str | Sequence[str] | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _swap(table: str, old: str, new: str, kind: str, columns: Sequence[str]) -> None:
    """Build the new unique index (unless an operator built it concurrently), then replace
    the old key by a constraint on it in one statement."""
    tmp = f"{new}_tmp"
    op.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {tmp} ON {table} ({', '.join(columns)})")
    op.execute(
        f"ALTER TABLE {table} DROP CONSTRAINT {old}, ADD CONSTRAINT {new} {kind} USING INDEX {tmp}"
    )


def _add_user_id(table: str, parent: str, parent_column: str) -> None:
    op.add_column(table, sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=True))
    op.execute(
        f"UPDATE {table} c SET user_id = p.user_id FROM {parent} p WHERE p.id = c.{parent_column}"
    )
    op.alter_column(table, "user_id", nullable=False)


def upgrade() -> None:
    for table in ("coin_transactions", "issuance_holds"):
        _swap(
            table,
            f"uq_{table}_transaction_type_reference_id",
            f"uq_{table}_transaction_type_reference_id_user_id",
            "UNIQUE",
            ("transaction_type", "reference_id", "user_id"),
        )
        _swap(table, f"pk_{table}", f"pk_{table}", "PRIMARY KEY", ("id", "user_id"))

    _add_user_id("order_items", "orders", "order_id")
    _swap(
        "orders",
        "uq_orders_order_code",
        "uq_orders_order_code_user_id",
        "UNIQUE",
        ("order_code", "user_id"),
    )
    op.drop_constraint("fk_order_items_order_id_orders", "order_items", type_="foreignkey")
    _swap("orders", "pk_orders", "pk_orders", "PRIMARY KEY", ("id", "user_id"))
    op.create_foreign_key(
        "fk_order_items_user_id_orders",
        "order_items",
        "orders",
        ["user_id", "order_id"],
        ["user_id", "id"],
        ondelete="CASCADE",
    )
    _swap("order_items", "pk_order_items", "pk_order_items", "PRIMARY KEY", ("id", "user_id"))
    _swap(
        "order_items",
        "uq_order_items_order_id_product_id",
        "uq_order_items_order_id_product_id_user_id",
        "UNIQUE",
        ("order_id", "product_id", "user_id"),
    )

    _add_user_id("notification_deliveries", "notifications", "notification_id")
    op.drop_constraint(
        "fk_notification_deliveries_notification_id_notifications",
        "notification_deliveries",
        type_="foreignkey",
    )
    _swap("notifications", "pk_notifications", "pk_notifications", "PRIMARY KEY", ("id", "user_id"))
    op.create_foreign_key(
        "fk_notification_deliveries_user_id_notifications",
        "notification_deliveries",
        "notifications",
        ["user_id", "notification_id"],
        ["user_id", "id"],
        ondelete="CASCADE",
    )
    _swap(
        "notification_deliveries",
        "pk_notification_deliveries",
        "pk_notification_deliveries",
        "PRIMARY KEY",
        ("notification_id", "device_id", "user_id"),
    )

    for table in ("step_validations", "adjustment_requests"):
        _swap(table, f"pk_{table}", f"pk_{table}", "PRIMARY KEY", ("id", "user_id"))

    op.execute(load("stepcoin.wallet", "post.v2.sql"))
    op.execute(load("stepcoin.steps", "apply_sync.v8.sql"))
    op.execute(load("stepcoin.shop", "place_order.v3.sql"))


def downgrade() -> None:
    op.execute(load("stepcoin.shop", "place_order.v2.sql"))
    op.execute(load("stepcoin.steps", "apply_sync.v7.sql"))
    op.execute(load("stepcoin.wallet", "post.v1.sql"))

    for table in ("step_validations", "adjustment_requests"):
        _swap(table, f"pk_{table}", f"pk_{table}", "PRIMARY KEY", ("id",))

    _swap(
        "notification_deliveries",
        "pk_notification_deliveries",
        "pk_notification_deliveries",
        "PRIMARY KEY",
        ("notification_id", "device_id"),
    )
    op.drop_constraint(
        "fk_notification_deliveries_user_id_notifications",
        "notification_deliveries",
        type_="foreignkey",
    )
    _swap("notifications", "pk_notifications", "pk_notifications", "PRIMARY KEY", ("id",))
    op.create_foreign_key(
        "fk_notification_deliveries_notification_id_notifications",
        "notification_deliveries",
        "notifications",
        ["notification_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.drop_column("notification_deliveries", "user_id")

    _swap(
        "order_items",
        "uq_order_items_order_id_product_id_user_id",
        "uq_order_items_order_id_product_id",
        "UNIQUE",
        ("order_id", "product_id"),
    )
    _swap("order_items", "pk_order_items", "pk_order_items", "PRIMARY KEY", ("id",))
    op.drop_constraint("fk_order_items_user_id_orders", "order_items", type_="foreignkey")
    _swap("orders", "pk_orders", "pk_orders", "PRIMARY KEY", ("id",))
    op.create_foreign_key(
        "fk_order_items_order_id_orders",
        "order_items",
        "orders",
        ["order_id"],
        ["id"],
        ondelete="CASCADE",
    )
    _swap(
        "orders", "uq_orders_order_code_user_id", "uq_orders_order_code", "UNIQUE", ("order_code",)
    )
    op.drop_column("order_items", "user_id")

    for table in ("coin_transactions", "issuance_holds"):
        _swap(table, f"pk_{table}", f"pk_{table}", "PRIMARY KEY", ("id",))
        _swap(
            table,
            f"uq_{table}_transaction_type_reference_id_user_id",
            f"uq_{table}_transaction_type_reference_id",
            "UNIQUE",
            ("transaction_type", "reference_id"),
        )

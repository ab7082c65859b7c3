"""The last keys of issue 19 item 4: an order code claimed across walkers, and the three
foreign keys into users that Citus cannot hold on the hot per-user tables.

- global_keys gains the kind 'order_code', backfilled from every order; stepcoin_place_order v4
  (shop/sql/place_order.v4.sql) claims each order's code there in the order's transaction.
  Since 0038 orders is unique by (order_code, user_id) only, and a code must stay unique
  across walkers: the Shopify webhook and the console find an order by its code, and the
  order's Shopify tag is stepcoin-<code>.
- step_validations.reviewed_by, adjustment_requests.requested_by and decided_by (staff members,
  set by the code that records the decision) lose their foreign keys into users: a foreign key
  between two distributed tables must join their distribution columns (tests/
  test_distribution.py); a users row is never deleted (migration 0039's docstring), so their
  ON DELETE SET NULL never ran.

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-06 03:00:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0040"
down_revision: str | Sequence[str] | None = "0039"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STAFF_KEYS = [
    ("step_validations", "reviewed_by"),
    ("adjustment_requests", "requested_by"),
    ("adjustment_requests", "decided_by"),
]
KINDS_BEFORE = "kind IN ('email', 'identity', 'push_token', 'referral_code')"
KINDS_AFTER = "kind IN ('email', 'identity', 'push_token', 'referral_code', 'order_code')"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_global_keys_kind"), "global_keys", type_="check")
    op.create_check_constraint(op.f("ck_global_keys_kind"), "global_keys", KINDS_AFTER)
    # every order's code; a code two walkers share (possible only between 0038 and now) is
    # claimed by its oldest order
    op.execute(
        "INSERT INTO global_keys (kind, key, user_id) "
        "SELECT DISTINCT ON (order_code) 'order_code', order_code, user_id FROM orders "
        "ORDER BY order_code, created_at "
        "ON CONFLICT (kind, key) DO NOTHING"
    )
    op.execute(load("stepcoin.shop", "place_order.v4.sql"))
    for table, column in STAFF_KEYS:
        op.drop_constraint(f"fk_{table}_{column}_users", table, type_="foreignkey")


def downgrade() -> None:
    for table, column in STAFF_KEYS:
        op.create_foreign_key(
            f"fk_{table}_{column}_users", table, "users", [column], ["id"], ondelete="SET NULL"
        )
    op.execute(load("stepcoin.shop", "place_order.v3.sql"))
    op.execute("DELETE FROM global_keys WHERE kind = 'order_code'")
    op.drop_constraint(op.f("ck_global_keys_kind"), "global_keys", type_="check")
    op.create_check_constraint(op.f("ck_global_keys_kind"), "global_keys", KINDS_BEFORE)

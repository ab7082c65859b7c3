"""The job queue at depth, and no job per order (issue 13).

- An index on procrastinate_jobs (lock): procrastinate's fetch rejects a waiting job whose lock
  has an earlier or running job (a NOT EXISTS per candidate, matched on `lock`). Its own indexes
  have `lock` only as a second column (id, lock), so each check read the whole index; with
  statistics taken while the queue was nearly empty the generic plan checks every waiting job
  before sorting them: quadratic in the backlog (~150 ms a fetch at 2,800 waiting jobs, over a
  second at 7,000). With this index each check is one probe. It also finds an order's Shopify
  job (lock order:<id>) for the submission sweep. procrastinate's own schema is left as it is:
  an upgrade of it keeps this index as long as the table and column stay.
- stepcoin_place_order v2 (src/stepcoin/shop/sql/place_order.v2.sql): the user is marked in
  achievements_dirty instead of an evaluation job, and the Shopify outbox sweep is woken (one
  waiting job at most) instead of a submission job per order.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 16:40:00
"""

from collections.abc import Sequence

from alembic import op

from stepcoin.sqlfiles import load

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOBS_LOCK_INDEX = "stepcoin_procrastinate_jobs_lock_idx"


def upgrade() -> None:
    op.execute(
        f"CREATE INDEX IF NOT EXISTS {JOBS_LOCK_INDEX} ON procrastinate_jobs (lock) "
        "WHERE lock IS NOT NULL"
    )
    op.execute(load("stepcoin.shop", "place_order.v2.sql"))


def downgrade() -> None:
    op.execute(load("stepcoin.shop", "place_order.v1.sql"))
    # pending orders with no Shopify job get the job they would have had before this revision
    op.execute(
        "SELECT stepcoin_defer_job('shop', 'shop:submit_order', 'order:' || o.id::text, NULL, "
        "jsonb_build_object('order_id', o.id::text)) FROM orders o "
        "WHERE o.status = 'pending' AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j "
        "WHERE j.lock = 'order:' || o.id::text AND j.status IN ('todo', 'doing'))"
    )
    op.execute(f"DROP INDEX IF EXISTS {JOBS_LOCK_INDEX}")

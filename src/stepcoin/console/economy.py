"""The overview's figures, gathered from the domains that own them.

The queries live with their data (wallet.reports: coins and the ledger; steps.review and
steps.reports: the queue and the steps; shop.queries: orders), so the console keeps no SQL of
its own; this module only names what the overview shows.
"""

from __future__ import annotations

from stepcoin.shop.queries import orders_by_status
from stepcoin.steps.reports import approved_steps_on
from stepcoin.steps.review import QueueSummary as Queue
from stepcoin.steps.review import queue_summary as review_queue
from stepcoin.wallet.reports import (
    CLAWBACK_TYPES,
    ECONOMY_DAYS,
    ISSUED_TYPES,
    SETTLE_AFTER,
    Economy,
    EconomyDay,
    economy,
    settle_days,
    settled_before,
    top_earners,
    utc_today,
)

__all__ = [
    "CLAWBACK_TYPES",
    "ECONOMY_DAYS",
    "ISSUED_TYPES",
    "SETTLE_AFTER",
    "Economy",
    "EconomyDay",
    "Queue",
    "approved_steps_on",
    "economy",
    "orders_by_status",
    "review_queue",
    "settle_days",
    "settled_before",
    "top_earners",
    "utc_today",
]

"""Prometheus metrics: per-route request counts and latencies, recorded by the one ASGI
middleware at the cost of a dict lookup; everything else is read at scrape time.

- stepcoin_http_requests_total{method,route,status}, stepcoin_http_request_duration_seconds
  {method,route}: the route is the template (/v1/orders/{order_id}), never the raw path;
- stepcoin_db_pool_*: the SQLAlchemy pool of the process that answers the scrape;
- stepcoin_job_queue_depth{queue}, stepcoin_jobs{status}, stepcoin_jobs_failed{task}: from
  procrastinate_jobs;
- stepcoin_coins_issued_total, stepcoin_coins_redeemed_total, stepcoin_coins_refunded_total,
  stepcoin_ledger_coins_total{type}: from the append-only ledger, summed incrementally by id;
- stepcoin_step_records_written_total: inserts + updates of step_records (PostgreSQL's stats);
- stepcoin_push_deliveries_24h{platform,status} (sent, failed, invalidated, retry, skipped),
  stepcoin_push_pending: the notification outbox (stepcoin.notify);
- stepcoin_retention_deleted_total{job}, stepcoin_retention_last_run_timestamp_seconds{job},
  stepcoin_retention_archived_months{state}: what the retention jobs did (stepcoin.retention);
- stepcoin_orders{status}; stepcoin_backup_last_success_timestamp_seconds,
  stepcoin_backup_last_success_age_seconds, stepcoin_backup_failures_total{activity}.

Database-derived values are cached for SNAPSHOT_TTL_SECONDS so that many scrapers cost one
set of queries. With several processes see docs/operations.md (multiprocess mode).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import text

from stepcoin.backup.catalogue import load_catalogue
from stepcoin.backup.engine import BackupError, for_settings

logger = logging.getLogger("stepcoin.metrics")
SNAPSHOT_TTL_SECONDS = 5.0
BACKUP_TTL_SECONDS = 60.0
# Ledger rows younger than this are summed on a later scrape: a row's id is taken at insert,
# so a slow transaction can commit a lower id after a higher one was already counted.
LEDGER_SETTLE_SECONDS = 30

REQUESTS = Counter(
    "stepcoin_http_requests_total", "HTTP requests by route template", ["method", "route", "status"]
)
LATENCY = Histogram(
    "stepcoin_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(scope: MutableMapping[str, Any], status: int, seconds: float) -> None:
    """Count one request under its route template (cached label children: ~1 µs)."""
    route = scope.get("route")
    template = getattr(route, "path", None) or "unmatched"
    key = (scope["method"], template, status)
    pair = _children.get(key)
    if pair is None:
        pair = (
            REQUESTS.labels(key[0], template, str(status)),
            LATENCY.labels(key[0], template),
        )
        _children[key] = pair
    pair[0].inc()
    pair[1].observe(seconds)


@dataclass
class _Snapshot:
    taken: float = float("-inf")
    pool: dict[str, float] = field(default_factory=dict)
    queue_depth: dict[str, int] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)
    jobs_failed: dict[str, int] = field(default_factory=dict)
    orders: dict[str, int] = field(default_factory=dict)
    mail_unsent: int = 0
    mail_oldest_unsent_seconds: float = 0.0
    step_records_written: int | None = None
    ledger_last_id: int = 0
    ledger: dict[str, int] = field(default_factory=dict)  # type -> sum of |amount|
    backup_taken: float = float("-inf")
    backup_last_success: float | None = None
    backup_failures: dict[str, int] = field(default_factory=dict)
    backups: dict[str, int] = field(default_factory=dict)
    budgets: list[tuple[str, str, float, int]] = field(default_factory=list)
    push: dict[tuple[str, str], int] = field(default_factory=dict)  # (platform, status) -> n
    push_pending: int = 0
    retention_deleted: dict[str, int] = field(default_factory=dict)  # job -> rows deleted
    retention_last_run: dict[str, float] = field(default_factory=dict)  # job -> finished at
    retention_archives: dict[str, int] = field(default_factory=dict)  # state -> months


class DatabaseCollector(Collector):
    """Yields the last snapshot; refresh() (async, called by /metrics) keeps it current."""

    def __init__(self) -> None:
        self.snapshot = _Snapshot()
        self._lock = asyncio.Lock()

    async def refresh(self, database: Any, settings: Any) -> None:
        async with self._lock:
            snap = self.snapshot
            now = time.monotonic()
            pool = database.engine.pool
            snap.pool = {
                "size": float(pool.size()),
                "checked_out": float(pool.checkedout()),
                "overflow": float(pool.overflow()),
                "checked_in": float(pool.checkedin()),
            }
            if now - snap.taken >= SNAPSHOT_TTL_SECONDS:
                try:
                    await self._query(database)
                    snap.taken = now
                except Exception:
                    logger.exception("metrics: database snapshot failed")
            if now - snap.backup_taken >= BACKUP_TTL_SECONDS:
                snap.backup_taken = now
                await asyncio.to_thread(self._read_backups, settings)

    async def _query(self, database: Any) -> None:
        snap = self.snapshot
        async with database.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT queue_name, status::text, task_name, count(*), "
                    "count(*) FILTER (WHERE status = 'todo' AND (scheduled_at IS NULL "
                    "OR scheduled_at <= now())) FROM procrastinate_jobs GROUP BY 1, 2, 3"
                )
            )
            depth: dict[str, int] = {}
            jobs: dict[str, int] = {}
            failed: dict[str, int] = {}
            for queue, status, task, n, ready in rows:
                depth[queue] = depth.get(queue, 0) + int(ready)
                jobs[status] = jobs.get(status, 0) + int(n)
                if status == "failed":
                    failed[task] = failed.get(task, 0) + int(n)
            snap.queue_depth, snap.jobs, snap.jobs_failed = depth, jobs, failed
            orders = await conn.execute(text("SELECT status, count(*) FROM orders GROUP BY 1"))
            snap.orders = {status: int(n) for status, n in orders}
            unsent = (
                await conn.execute(
                    text(
                        "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) "
                        "FROM mail_outbox WHERE sent_at IS NULL"
                    )
                )
            ).one()
            snap.mail_unsent, snap.mail_oldest_unsent_seconds = int(unsent[0]), float(unsent[1])
            written = await conn.execute(
                text(
                    "SELECT sum(n_tup_ins + n_tup_upd) FROM pg_stat_user_tables "
                    "WHERE relname LIKE 'step\\_records%'"
                )
            )
            total = written.scalar()
            snap.step_records_written = int(total) if total is not None else None
            ledger = await conn.execute(
                text(
                    "SELECT transaction_type, sum(abs(amount)), max(id) FROM coin_transactions "
                    "WHERE id > :last AND created_at < now() - make_interval(secs => :settle) "
                    "GROUP BY 1"
                ),
                {"last": snap.ledger_last_id, "settle": LEDGER_SETTLE_SECONDS},
            )
            budgets = await conn.execute(
                text(  # this period's use of each issuance budget, and the coins it holds
                    """
                    SELECT b.source, b.period,
                           coalesce(u.issued, 0)::float8 / greatest(b.cap_coins, 1),
                           (SELECT coalesce(sum(h.amount), 0) FROM issuance_holds h
                            WHERE h.source = b.source AND h.released_at IS NULL)
                    FROM issuance_budgets b
                    CROSS JOIN LATERAL (SELECT (now() AT TIME ZONE 'UTC')::date AS today) t
                    LEFT JOIN issuance_usage u ON (u.source, u.period) = (b.source, b.period)
                     AND u.period_start = (CASE b.period WHEN 'day' THEN t.today
                         ELSE date_trunc(b.period, t.today)::date END)
                    """
                )
            )
            snap.budgets = [(a, b, float(c), int(d)) for a, b, c, d in budgets]
            push = await conn.execute(
                text(
                    "SELECT platform, status, count(*) FROM notification_deliveries "
                    "WHERE updated_at > now() - interval '1 day' GROUP BY 1, 2"
                )
            )
            snap.push = {(p, st): int(n) for p, st, n in push}
            snap.push_pending = int(
                (
                    await conn.execute(
                        text("SELECT count(*) FROM notifications WHERE push_status = 'pending'")
                    )
                ).scalar_one()
            )
            retention = await conn.execute(
                text(
                    "SELECT job, sum(deleted), extract(epoch FROM max(finished_at)) "
                    "FROM retention_runs GROUP BY job"
                )
            )
            snap.retention_deleted, snap.retention_last_run = {}, {}
            for job, deleted, finished in retention:
                snap.retention_deleted[job] = int(deleted)
                if finished is not None:
                    snap.retention_last_run[job] = float(finished)
            archives = await conn.execute(
                text("SELECT state, count(*) FROM retention_archives GROUP BY state")
            )
            snap.retention_archives = {state: int(n) for state, n in archives}
            for kind, amount, max_id in ledger:
                snap.ledger[kind] = snap.ledger.get(kind, 0) + int(amount)
                snap.ledger_last_id = max(snap.ledger_last_id, int(max_id))
            await conn.rollback()

    def _read_backups(self, settings: Any) -> None:
        snap = self.snapshot
        try:
            config = for_settings(settings, settings.database_url)
            catalogue = load_catalogue(config.open())
        except BackupError:
            return  # no repository configured: no backup series
        except Exception:
            logger.exception("metrics: cannot read the backup catalogue")
            return
        latest = catalogue.latest(verified_only=True)
        snap.backup_last_success = latest.stopped_at.timestamp() if latest else None
        snap.backup_failures = {
            activity: int(run.get("failures", 0)) for activity, run in catalogue.runs.items()
        }
        kinds: dict[str, int] = {}
        for record in catalogue.backups:
            kinds[record.type] = kinds.get(record.type, 0) + 1
        snap.backups = kinds

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        for name, value in snap.pool.items():
            g = GaugeMetricFamily(f"stepcoin_db_pool_{name}", f"Database pool: {name}")
            g.add_metric([], value)
            yield g
        if snap.taken == float("-inf"):
            return
        g = GaugeMetricFamily("stepcoin_job_queue_depth", "Jobs ready to run", labels=["queue"])
        for queue, n in sorted(snap.queue_depth.items()):
            g.add_metric([queue], n)
        yield g
        g = GaugeMetricFamily(
            "stepcoin_jobs", "Jobs in the queue table by status", labels=["status"]
        )
        for status, n in sorted(snap.jobs.items()):
            g.add_metric([status], n)
        yield g
        g = GaugeMetricFamily(
            "stepcoin_jobs_failed", "Failed jobs kept in the queue", labels=["task"]
        )
        for task, n in sorted(snap.jobs_failed.items()):
            g.add_metric([task], n)
        yield g
        g = GaugeMetricFamily("stepcoin_orders", "Orders by status", labels=["status"])
        for status, n in sorted(snap.orders.items()):
            g.add_metric([status], n)
        yield g
        g = GaugeMetricFamily("stepcoin_mail_unsent", "Mails in the outbox not sent yet")
        g.add_metric([], snap.mail_unsent)
        yield g
        g = GaugeMetricFamily(
            "stepcoin_mail_oldest_unsent_seconds",
            "Age of the oldest unsent mail (SMTP down or not configured when it grows)",
        )
        g.add_metric([], snap.mail_oldest_unsent_seconds)
        yield g
        if snap.step_records_written is not None:
            c = CounterMetricFamily(
                "stepcoin_step_records_written", "Step records inserted or re-synced"
            )
            c.add_metric([], snap.step_records_written)
            yield c
        c = CounterMetricFamily("stepcoin_ledger_coins", "Coins moved, by type", labels=["type"])
        for kind, amount in sorted(snap.ledger.items()):
            c.add_metric([kind], amount)
        yield c
        for name, kinds in (
            (
                "issued",
                (
                    "step_reward",
                    "achievement_reward",
                    "campaign_reward",
                    "prize_reward",
                    "referral_reward",
                ),
            ),
            ("redeemed", ("redemption",)),
            ("refunded", ("refund",)),
        ):
            c = CounterMetricFamily(f"stepcoin_coins_{name}", f"Coins {name} (from the ledger)")
            c.add_metric([], sum(snap.ledger.get(k, 0) for k in kinds))
            yield c
        g = GaugeMetricFamily(
            "stepcoin_issuance_budget_used_ratio",
            "Coins a source issued this period over its issuance budget's cap",
            labels=["source", "period"],
        )
        h = GaugeMetricFamily(
            "stepcoin_issuance_held_coins",
            "Rewards an issuance budget holds, waiting for room (pending for walkers)",
            labels=["source", "period"],
        )
        for source, period, ratio, held in snap.budgets:
            g.add_metric([source, period], ratio)
            h.add_metric([source, period], held)
        yield g
        yield h
        g = GaugeMetricFamily(
            "stepcoin_push_deliveries_24h",
            "Pushes to devices in the last 24 hours by platform and outcome (sent, failed, "
            "invalidated: a dead token dropped; retry: waiting; skipped: no sender configured)",
            labels=["platform", "status"],
        )
        for (platform, status), n in sorted(snap.push.items()):
            g.add_metric([platform, status], n)
        yield g
        g = GaugeMetricFamily(
            "stepcoin_push_pending", "Notifications whose push waits (quiet hours, retries)"
        )
        g.add_metric([], snap.push_pending)
        yield g
        c = CounterMetricFamily(
            "stepcoin_retention_deleted",
            "Rows the retention jobs deleted, by job (docs/retention.md)",
            labels=["job"],
        )
        for job, n in sorted(snap.retention_deleted.items()):
            c.add_metric([job], n)
        yield c
        g = GaugeMetricFamily(
            "stepcoin_retention_last_run_timestamp_seconds",
            "End of the last finished run of each retention job",
            labels=["job"],
        )
        for job, at in sorted(snap.retention_last_run.items()):
            g.add_metric([job], at)
        yield g
        g = GaugeMetricFamily(
            "stepcoin_retention_archived_months",
            "step_records months in the archive by state (archived, restored, half done)",
            labels=["state"],
        )
        for state, n in sorted(snap.retention_archives.items()):
            g.add_metric([state], n)
        yield g
        if snap.backup_last_success is not None:
            g = GaugeMetricFamily(
                "stepcoin_backup_last_success_timestamp_seconds", "End of the newest good backup"
            )
            g.add_metric([], snap.backup_last_success)
            yield g
            g = GaugeMetricFamily(
                "stepcoin_backup_last_success_age_seconds", "Age of the newest good backup"
            )
            g.add_metric([], max(0.0, time.time() - snap.backup_last_success))
            yield g
        c = CounterMetricFamily(
            "stepcoin_backup_failures", "Failed scheduled backup activities", labels=["activity"]
        )
        for activity, n in sorted(snap.backup_failures.items()):
            c.add_metric([activity], n)
        yield c
        g = GaugeMetricFamily("stepcoin_backups", "Backups in the catalogue", labels=["type"])
        for kind, n in sorted(snap.backups.items()):
            g.add_metric([kind], n)
        yield g


DATABASE_COLLECTOR = DatabaseCollector()
REGISTRY.register(DATABASE_COLLECTOR)


def _registry() -> CollectorRegistry:
    """The default registry, or, in prometheus_client's multiprocess mode, the per-process
    files of every API process merged (request series) plus this process's collector."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(DATABASE_COLLECTOR)
    return registry


async def render(app: Any) -> tuple[bytes, str]:
    """The exposition text after refreshing the scrape-time series."""
    await DATABASE_COLLECTOR.refresh(app.state.database, app.state.settings)
    return generate_latest(_registry()), CONTENT_TYPE_LATEST

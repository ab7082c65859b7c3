"""The StepCoin load driver: open loop at a fixed rate, or closed loop with C clients.

    python bench/load.py --base-url http://127.0.0.1:8001 --database-url postgresql://... \
        --jwt-secret S --scenario sync --rate 1100 --duration 25 --out results/sync.json
    python bench/load.py ... --scenario profile --concurrency 16 --duration 25   # closed loop

Open loop (--rate): request i is *scheduled* at t0 + i/rate whatever happened before, and its
latency is measured from that scheduled time to the end of the response. A stalled server
therefore shows up in the percentiles of every request that should have been sent during the
stall (no coordinated omission), and nothing is synthesised: these are raw samples.
Closed loop (--concurrency C): C clients, each sends its next request when the previous answer
arrived; latency from the actual send; the achieved rate is the throughput.

Both modes discard a warm-up (--warmup seconds) and report count, errors (non-2xx and transport
failures), achieved rate, p50/p90/p95/p99/p99.9/max, how late the scheduler sent (open loop:
if that grows, the driver itself is the bottleneck), and the CPU time per request of the driver,
the API processes and PostgreSQL over the measured window, the API processes' max RSS, the
autovacuum/autoanalyze counters before and after, and (when track_functions is on) the time
spent inside stepcoin_apply_sync.

Per run it also reports what the database did per request over the measured window: WAL
bytes (pg_current_wal_lsn delta), WAL records and full-page images (pg_stat_wal), commits and
rows inserted/updated/deleted in this database (pg_stat_database), statements (when the
pg_stat_statements view answers), and the CPU of a separate job worker (--worker-pid).
WAL counters cover the whole server: other databases' writes during the window count too.

Scenarios: sync, profile, wallet, ledger, achievements, leaderboard, order, approve, bulk
(see bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import sys
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import httptools
import orjson
import psutil

SOURCES_BULK = ("healthkit", "health_connect", "google_fit")
BULK_BATCH = 500


# --------------------------------------------------------------------------- requests


@dataclass(slots=True)
class Req:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None = None
    raw: bytes = b""  # the whole HTTP/1.1 request, for the raw client


_HOST = b"127.0.0.1"


def raw_request(method: str, path: str, headers: dict[str, str], body: bytes | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + _HOST]
    lines += [f"{k}: {v}".encode() for k, v in headers.items()]
    if body is not None:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def make_req(method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> Req:
    return Req(method, path, headers, body, raw_request(method, path, headers, body))


@dataclass
class Fixture:
    """What the scenarios need from the database, read once at start."""

    walkers: list[uuid.UUID]
    headers: list[dict[str, str]]
    recent: dict[tuple[int, date], int]
    queue: list[int]
    bulk_headers: list[dict[str, str]]
    admin_headers: dict[str, str]
    bulk_ids: list[str] = field(default_factory=list)  # the bulk walkers, as bulk_headers
    products: list[int] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)  # walker i's phone, as generated


def _auth(token: str, json_body: bool = False) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if json_body:
        headers["Content-Type"] = "application/json"
    return headers


async def load_fixture(url: str, secret: str, scenario: str, products_n: int = 50) -> Fixture:
    os.environ["STEPCOIN_JWT_SECRET"] = secret
    from stepcoin.auth.tokens import create_access_token
    from stepcoin.config import Settings

    settings = Settings(jwt_secret=secret)
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT id, email FROM users WHERE email LIKE 'walker%@bench.stepcoin.test' "
            "ORDER BY created_at, email"
        )
        # the generator's phone of walker n ('walker<n>@...') is 'bench-device-<n>': a sync
        # resends it from that phone (another id would make every day a new device's claim)
        device_of = {
            r["id"]: "bench-device-" + r["email"].split("@")[0][len("walker") :] for r in rows
        }
        walkers = sorted((r["id"] for r in rows), key=str)  # a stable order for the seeded choices
        index = {uid: i for i, uid in enumerate(walkers)}
        recent: dict[tuple[int, date], int] = {}
        queue: list[int] = []
        bulk: list[uuid.UUID] = []
        products: list[int] = []
        admin_id = await conn.fetchval(
            "SELECT id FROM users WHERE email = 'admin@bench.stepcoin.test'"
        )
        if scenario == "sync":
            today = datetime.now(UTC).date()
            for r in await conn.fetch(
                "SELECT user_id, recorded_date, steps FROM step_records "
                "WHERE recorded_date >= $1 AND source = 'healthkit'",
                today - timedelta(days=7),
            ):
                if r["user_id"] in index:
                    recent[(index[r["user_id"]], r["recorded_date"])] = r["steps"]
        if scenario == "approve":
            queue = [
                r["id"]
                for r in await conn.fetch(
                    "SELECT id FROM step_validations WHERE status = 'flagged' "
                    "AND reviewed_at IS NULL AND superseded_by IS NULL ORDER BY created_at, id"
                )
            ]
        if scenario == "order":
            products = await _bench_products(conn, products_n)
        if scenario == "bulk":
            # bulk users that have never synced (a rerun picks up the unused ones)
            bulk = [
                r["id"]
                for r in await conn.fetch(
                    "SELECT u.id FROM users u WHERE u.email LIKE 'bulk%@bench.stepcoin.test' "
                    "AND NOT EXISTS (SELECT 1 FROM step_days d WHERE d.user_id = u.id) "
                    "ORDER BY u.email"
                )
            ]
    finally:
        await conn.close()
    json_body = scenario in ("sync", "bulk", "approve", "order")
    return Fixture(
        walkers=walkers,
        headers=[_auth(create_access_token(settings, uid, "user"), json_body) for uid in walkers],
        recent=recent,
        queue=queue,
        bulk_headers=[_auth(create_access_token(settings, uid, "user"), True) for uid in bulk],
        bulk_ids=[str(uid) for uid in bulk],
        admin_headers=_auth(create_access_token(settings, admin_id, "admin"), True)
        if admin_id
        else {},
        products=products,
        devices=[device_of[uid] for uid in walkers],
    )


async def _bench_products(conn: Any, count: int) -> list[int]:
    """`count` cheap products (1-5 coins) with deep stock, so orders measure the order path,
    not sell-outs (each order locks its two products' rows: fewer products, more waiting)."""
    existing = [
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM reward_products WHERE title LIKE 'Bench product %' ORDER BY id"
        )
    ]
    if existing:
        return existing
    return [
        r["id"]
        for r in await conn.fetch(
            "INSERT INTO reward_products (title, coin_price, stock_quantity, category) "
            "SELECT 'Bench product ' || n, 1 + n % 5, 10000000, 'bench' "
            "FROM generate_series(1, $1::int) n RETURNING id",
            count,
        )
    ]


class Scenario:
    """Builds the next request; returns None when it has run out of work (queue, bulk users)."""

    def __init__(self, name: str, fx: Fixture, rng: random.Random, changed_days: int) -> None:
        self.name = name
        self.fx = fx
        self.rng = rng
        self.changed_days = changed_days
        self.queue_pos = 0
        self.bulk_pos = 0
        self.records_per_request = BULK_BATCH if name == "bulk" else (7 if name == "sync" else 0)
        self.board_period = "weekly"  # leaderboard: the board read (_wait_for_boards picks it)
        self._get_cache: dict[tuple[str, int], Req] = {}

    def _get(self, path: str) -> Req:
        """GETs are the same bytes for a given user: build each once."""
        i = self._user()
        req = self._get_cache.get((path, i))
        if req is None:
            req = self._get_cache[(path, i)] = make_req("GET", path, self.fx.headers[i])
        return req

    def next(self) -> Req | None:
        return getattr(self, f"_{self.name}")()

    def _user(self) -> int:
        return self.rng.randrange(len(self.fx.walkers))

    def _profile(self) -> Req:
        return self._get("/v1/me")

    def _wallet(self) -> Req:
        return self._get("/v1/wallet")

    def _ledger(self) -> Req:
        return self._get("/v1/wallet/transactions?limit=20")

    def _achievements(self) -> Req:
        return self._get("/v1/achievements")

    def _leaderboard(self) -> Req:
        return self._get(f"/v1/leaderboards/{self.board_period}")

    def _sync(self) -> Req:
        """A 7-day batch (today and the 6 days before, UTC = the walkers' zone): the last
        `changed_days` days re-synced 100-600 steps higher (each pays >= 1 coin below the
        daily cap), the older days resent unchanged; today is new on its first sync."""
        i = self._user()
        today = datetime.now(UTC).date()
        records = []
        for k in range(6, -1, -1):
            day = today - timedelta(days=k)
            key = (i, day)
            steps = self.fx.recent.get(key)
            if steps is None:
                steps = self.rng.randint(1000, 4000)
                self.fx.recent[key] = steps
            elif k < self.changed_days:
                steps += self.rng.randint(100, 600)
                self.fx.recent[key] = steps
            records.append(
                {
                    "date": day.isoformat(),
                    "steps": steps,
                    "source": "healthkit",
                    "device_id": self.fx.devices[i],
                }
            )
        return make_req("POST", "/v1/steps", self.fx.headers[i], orjson.dumps({"records": records}))

    def _order(self) -> Req:
        """Two lines (1-2 units each) of the cheap bench products; a fresh Idempotency-Key."""
        i = self._user()
        lines = self.rng.sample(self.fx.products, 2)
        body = {
            "items": [{"product_id": p, "quantity": self.rng.randint(1, 2)} for p in lines],
            "shipping_address": {
                "name": "Bench Walker",
                "line1": "1 Load Street",
                "city": "Berlin",
                "postal_code": "10115",
                "country": "DE",
            },
        }
        headers = {**self.fx.headers[i], "Idempotency-Key": uuid.uuid4().hex}
        return make_req("POST", "/v1/orders", headers, orjson.dumps(body))

    def _approve(self) -> Req | None:
        if self.queue_pos >= len(self.fx.queue):
            return None
        vid = self.fx.queue[self.queue_pos]
        self.queue_pos += 1
        return make_req(
            "POST", f"/v1/admin/validations/{vid}/approve", self.fx.admin_headers, b"{}"
        )

    def _bulk(self) -> Req | None:
        """500 records for one user who never synced: 167 days x 3 sources (the 500 newest),
        within a sync window raised for the scenario (--bulk-window)."""
        if self.bulk_pos >= len(self.fx.bulk_headers):
            return None
        headers = self.fx.bulk_headers[self.bulk_pos]
        # each walker's own phone: one phone shared by every bulk walker made them linked
        # accounts (fair play), so each batch re-ran the sync for the relink and marked up
        # to hundreds of accounts (the bulk figure fell from 13,042 to 9,895 records/s); named
        # by the walker, not by the position (a second run on one database starts at 0 again)
        device = f"bench-bulk-phone-{self.fx.bulk_ids[self.bulk_pos]}"
        self.bulk_pos += 1
        today = datetime.now(UTC).date()
        records = []
        k = 0
        while len(records) < BULK_BATCH:
            day = (today - timedelta(days=k)).isoformat()
            base = self.rng.randint(3000, 12000)
            for source in SOURCES_BULK:
                if len(records) == BULK_BATCH:
                    break
                records.append(
                    {
                        "date": day,
                        "steps": base + self.rng.randint(-200, 200),
                        "source": source,
                        "device_id": device,
                    }
                )
            k += 1
        return make_req("POST", "/v1/steps", headers, orjson.dumps({"records": records}))


# --------------------------------------------------------------------------- sampling


@dataclass
class Sampled:
    rss_max: dict[int, float] = field(default_factory=dict)  # pid -> MB


def _api_processes(server_pid: int | None) -> list[psutil.Process]:
    if not server_pid:
        return []
    try:
        root = psutil.Process(server_pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _serving_pids(procs: list[psutil.Process]) -> set[int]:
    """The processes that answer requests: `serve --workers N`'s N children (uvicorn spawns
    them with multiprocessing: not its resource tracker), or serve itself when it has none."""
    serving = set()
    for proc in procs[1:]:
        try:
            line = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if "spawn_main" in line and "resource_tracker" not in line:
            serving.add(proc.pid)
    return serving or {p.pid for p in procs[:1]}


HOST_SAMPLE_S = 0.1  # the machine's CPU counters, read this often with --timeline


def host_timeline_path(timeline: str) -> str:
    """Where the machine's CPU samples of a --timeline run go (bench/stalls.py reads them)."""
    root, ext = os.path.splitext(timeline)
    return f"{root}.host{ext or '.csv'}"


class HostSampler:
    """The machine's CPU counters (/proc/stat's first line: every core, in clock ticks) and the
    CPU time of each group of processes (the driver, the API, PostgreSQL, the worker), read
    every HOST_SAMPLE_S by a thread of its own (the driver's event loop may be late; the thread
    reads on time), for bench/stalls.py: which slow requests waited while the hypervisor ran
    someone else (stolen), or while no core was free, and who had the cores then."""

    GROUPS = ("driver", "api", "postgres", "worker")

    def __init__(self, groups: dict[str, Any]) -> None:
        """groups: name -> a function returning that group's processes (called again every
        ~2 s: PostgreSQL's backends come and go)."""
        self.groups = groups
        self.samples: list[tuple[float, list[int], dict[str, dict[int, float]]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="host-sampler", daemon=True)

    @staticmethod
    def _read() -> list[int] | None:
        try:
            with open("/proc/stat") as f:
                return [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None

    def _run(self) -> None:
        procs: dict[str, list[psutil.Process]] = {}
        n = 0
        while not self._stop.is_set():
            if n % 20 == 0:
                procs = {name: list(find()) for name, find in self.groups.items()}
            n += 1
            ticks = self._read()
            if ticks is None:
                return
            cpu = {name: _cpu(group) for name, group in procs.items()}
            self.samples.append((time.time(), ticks, cpu))
            self._stop.wait(HOST_SAMPLE_S)

    def start(self) -> HostSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)

    def rows(self) -> list[tuple[float, ...]]:
        """(start, end, idle share, stolen share, then the cores each group used) of each
        interval between two readings (/proc/stat's columns: user nice system idle iowait irq
        softirq steal ...); a group's CPU counts only processes seen at both ends."""
        out: list[tuple[float, ...]] = []
        for (t0, a, ca), (t1, b, cb) in zip(self.samples, self.samples[1:], strict=False):
            total = sum(b[:8]) - sum(a[:8])
            if total <= 0 or t1 <= t0:
                continue
            idle = (b[3] + b[4]) - (a[3] + a[4])
            steal = b[7] - a[7] if len(a) > 7 and len(b) > 7 else 0
            cores = []
            for name in self.GROUPS:
                before, after = ca.get(name, {}), cb.get(name, {})
                used = sum(after[p] - before[p] for p in after if p in before)
                cores.append(max(used, 0.0) / (t1 - t0))
            out.append((t0, t1, idle / total, steal / total, *cores))
        return out


def _host_share(before: Any, after: Any, window: float) -> dict[str, float]:
    """Shares of the machine's CPU time over the window (psutil.cpu_times: all cores)."""
    cores = (psutil.cpu_count() or 1) * max(window, 1e-9)
    return {
        name: round((getattr(after, name, 0.0) - getattr(before, name, 0.0)) / cores, 3)
        for name in ("steal", "idle", "iowait")
    }


def _cpu(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
    return out


def _postgres_processes() -> list[psutil.Process]:
    procs = []
    for p in psutil.process_iter(["name"]):
        if p.info["name"] and p.info["name"].startswith("postgres"):
            procs.append(p)
    return procs


PG_PIDS_SQL = """
SELECT pid, datname = current_database() AS ours FROM pg_stat_activity
WHERE datname = current_database() OR datname IS NULL
"""


async def _pg_split(conn: Any) -> tuple[list[psutil.Process], list[psutil.Process]]:
    """This database's backends, and the server's shared background processes (WAL writer,
    checkpointer, background writer, autovacuum, ...: they also serve other databases)."""
    ours, shared = [], []
    for r in await conn.fetch(PG_PIDS_SQL):
        with contextlib.suppress(psutil.Error):
            (ours if r["ours"] else shared).append(psutil.Process(r["pid"]))
    return ours, shared


def _delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


async def _rss_sampler(procs: list[psutil.Process], out: Sampled, stop: asyncio.Event) -> None:
    while not stop.is_set():
        for p in procs:
            with contextlib.suppress(psutil.Error):
                mb = p.memory_info().rss / 1e6
                out.rss_max[p.pid] = max(out.rss_max.get(p.pid, 0.0), mb)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


WAITS_SQL = """
SELECT coalesce(wait_event_type, 'CPU') || ':' || coalesce(wait_event, 'running')
FROM pg_stat_activity
WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()
"""


async def _wait_sampler(url: str, out: Counter[str], stop: asyncio.Event) -> None:
    """What the active backends of this database wait on, sampled every 50 ms."""
    conn = await asyncpg.connect(url)
    try:
        while not stop.is_set():
            for (event,) in await conn.fetch(WAITS_SQL):
                out[event] += 1
            out["_samples"] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
    finally:
        await conn.close()


VACUUM_SQL = """
SELECT relname, autovacuum_count, autoanalyze_count, n_dead_tup, n_live_tup,
       last_autovacuum, last_autoanalyze
FROM pg_stat_user_tables
WHERE relname IN ('wallets', 'coin_transactions', 'step_days', 'step_validations', 'users')
   OR relname LIKE 'step_records%'
ORDER BY relname
"""

FUNC_SQL = """
SELECT coalesce(sum(calls), 0) AS calls, coalesce(sum(total_time), 0) AS total_ms,
       coalesce(sum(self_time), 0) AS self_ms
FROM pg_stat_user_functions WHERE funcname = 'stepcoin_apply_sync'
"""


async def _db_state(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        tables = {
            r["relname"]: {
                "autovacuum_count": r["autovacuum_count"],
                "autoanalyze_count": r["autoanalyze_count"],
                "n_dead_tup": r["n_dead_tup"],
                "n_live_tup": r["n_live_tup"],
                "last_autovacuum": r["last_autovacuum"].isoformat()
                if r["last_autovacuum"]
                else None,
            }
            for r in await conn.fetch(VACUUM_SQL)
        }
        func = dict(await conn.fetchrow(FUNC_SQL))
        workers = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
        )
        autovacuum = await conn.fetchval("SHOW autovacuum")
        return {
            "tables": tables,
            "apply_sync": {k: float(v) for k, v in func.items()},
            "autovacuum_workers_running": workers,
            "autovacuum_setting": autovacuum,
        }
    finally:
        await conn.close()


COUNTERS_SQL = """
SELECT pg_current_wal_lsn() - '0/0'::pg_lsn AS wal_lsn,
       d.xact_commit, d.xact_rollback, d.tup_inserted, d.tup_updated, d.tup_deleted,
       d.tup_fetched, d.blks_read, d.blks_hit
FROM pg_stat_database d WHERE d.datname = current_database()
"""


# The server's checkpoints (server-wide): begun, and the ms spent writing and in the fsync phase
# (the phase that stalls commits), as of the checkpoints that ended. PostgreSQL 17 moved them.
CHECKPOINTS_SQL = (
    "SELECT checkpoints_timed + checkpoints_req AS checkpoints, "
    "checkpoint_write_time AS checkpoint_write_ms, checkpoint_sync_time AS checkpoint_sync_ms "
    "FROM pg_stat_bgwriter",
    "SELECT num_timed + num_requested AS checkpoints, write_time AS checkpoint_write_ms, "
    "sync_time AS checkpoint_sync_ms FROM pg_stat_checkpointer",
)


class Counters:
    """Database counters sampled at the start and the end of the measured window, on one
    connection opened beforehand (so sampling costs a round trip, not a connect)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.has_wal_view = True
        self.has_statements = True
        self.checkpoints_sql: str | None = CHECKPOINTS_SQL[0]

    @classmethod
    async def open(cls, url: str) -> Counters:
        return cls(await asyncpg.connect(url))

    async def sample(self) -> dict[str, float]:
        row = await self.conn.fetchrow(COUNTERS_SQL)
        out = {k: float(v) for k, v in dict(row).items()}
        if self.has_wal_view:
            try:
                wal = await self.conn.fetchrow(
                    "SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal"
                )
                out.update({k: float(v) for k, v in dict(wal).items()})
            except asyncpg.PostgresError:
                self.has_wal_view = False
        while self.checkpoints_sql is not None:
            try:
                cp = await self.conn.fetchrow(self.checkpoints_sql)
                out.update({k: float(v) for k, v in dict(cp).items()})
                break
            except asyncpg.PostgresError:  # another server version: the other view, or none
                later = CHECKPOINTS_SQL[CHECKPOINTS_SQL.index(self.checkpoints_sql) + 1 :]
                self.checkpoints_sql = later[0] if later else None
        if self.has_statements:
            try:  # needs the extension in this database and in shared_preload_libraries
                out["statements"] = float(
                    await self.conn.fetchval(
                        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                        "WHERE dbid = (SELECT oid FROM pg_database "
                        "WHERE datname = current_database())"
                    )
                )
            except asyncpg.PostgresError:
                self.has_statements = False
        return out

    async def close(self) -> None:
        await self.conn.close()


async def _job_backlog(url: str) -> int | None:
    """Jobs waiting in the queue (procrastinate's table), None when it cannot be read."""
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")
        )
    except asyncpg.PostgresError:
        return None
    finally:
        await conn.close()


DUE_JOBS_SQL = """
SELECT count(*) FROM procrastinate_jobs
WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())
"""


# The work a run leaves to the worker outside the job queue: walkers marked for the achievements
# batch (every paid sync and every order marks its walker) and the boards' change log (drained by
# the refresh every 15 s).
BACKLOG_SQL = """
SELECT (SELECT count(*) FROM achievements_dirty), (SELECT count(*) FROM leaderboard_dirty)
"""


async def _settle(url: str, wait_s: float) -> dict[str, Any]:
    """Wait (at most wait_s) until the job worker has caught up with the jobs due now (a few
    periodic ones may stay) and with the marks the previous run left (the achievements batch's
    walkers, the boards' log), so that a run does not pay for the previous run's backlog."""
    conn = await asyncpg.connect(url)
    started = time.monotonic()

    async def backlog() -> tuple[int, int, int]:
        due = int(await conn.fetchval(DUE_JOBS_SQL))
        marks = await conn.fetchrow(BACKLOG_SQL)
        return due, int(marks[0]), int(marks[1])

    try:
        first = now = await backlog()
        while (now[0] > 3 or now[1] or now[2]) and time.monotonic() - started < wait_s:
            await asyncio.sleep(0.5)
            now = await backlog()
    except asyncpg.PostgresError:
        return {"jobs_due_before": None, "waited_s": 0.0, "jobs_due_at_start": None}
    finally:
        await conn.close()
    return {
        "jobs_due_before": first[0],
        "achievements_marks_before": first[1],
        "board_log_before": first[2],
        "waited_s": round(time.monotonic() - started, 1),
        "jobs_due_at_start": now[0],
        "achievements_marks_at_start": now[1],
        "board_log_at_start": now[2],
    }


# The boards the leaderboard scenario may read, in order of preference. The generated history
# ends yesterday, so on a Monday (UTC) the week's board lists nobody until walkers sync, and on
# the 1st the month's: the run then reads the next board that lists a full top, not an empty one.
BOARD_PERIODS = ("weekly", "monthly", "all_time")


async def _wait_for_boards(
    base_url: str, headers: dict[str, str], wait_s: float
) -> tuple[str, int]:
    """Until a board of BOARD_PERIODS lists someone (the worker's scheduled rebuild runs every
    minute), at most wait_s seconds; returns the first board whose top is as long as the
    longest seen (weekly unless it is shorter) and its entries."""
    deadline = time.monotonic() + wait_s
    seen: dict[str, int] = {}
    async with aiohttp.ClientSession() as http:
        while True:
            for period in BOARD_PERIODS:
                with contextlib.suppress(aiohttp.ClientError, ValueError):
                    async with http.get(
                        f"{base_url}/v1/leaderboards/{period}", headers=headers
                    ) as r:
                        if r.status == 200:
                            seen[period] = len((await r.json()).get("entries") or [])
            longest = max(seen.values(), default=0)
            if longest or time.monotonic() >= deadline:
                for period in BOARD_PERIODS:
                    if seen.get(period, 0) == longest:
                        return period, longest
                return BOARD_PERIODS[0], 0
            await asyncio.sleep(2)


async def _set_window(url: str, days: int | None) -> int:
    conn = await asyncpg.connect(url)
    try:
        old = int(
            await conn.fetchval(
                "SELECT value::text FROM settings WHERE key = 'anticheat.sync_window_days'"
            )
        )
        if days is not None:
            await conn.execute(
                "UPDATE settings SET value = to_jsonb($1::int), updated_at = now() "
                "WHERE key = 'anticheat.sync_window_days'",
                days,
            )
            # what the hourly steps:ensure_step_partitions does after a raised window: the
            # window's months get their partitions (a sync of an older month would otherwise
            # land in the default partition until the job's next run)
            await conn.execute(
                "SELECT stepcoin_ensure_step_partitions(current_date - $1::int - 1, 3)", days
            )
        return old
    finally:
        await conn.close()


# --------------------------------------------------------------------------- raw client


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: write pre-encoded bytes, parse with httptools."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.status = 0
        self.body = bytearray()
        self.alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self.status >= 300 and len(self.body) < 400:
            self.body += body

    def on_message_complete(self) -> None:
        if not self.parser.should_keep_alive():
            self.alive = False
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self.status, bytes(self.body)))
        self.body.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        self._fail(exc or ConnectionResetError("connection closed"))

    def _fail(self, exc: BaseException) -> None:
        self.alive = False
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter


class RawPool:
    """Up to `limit` keep-alive connections; a request waits for a free one (FIFO)."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.idle: list[_Conn] = []
        self.open = 0
        self.waiters: deque[asyncio.Future[_Conn]] = deque()
        self._tasks: set[asyncio.Future[None]] = set()

    async def acquire(self) -> _Conn:
        while self.idle:  # skip connections the server closed while idle (keep-alive timeout)
            conn = self.idle.pop()
            if conn.alive and conn.transport is not None and not conn.transport.is_closing():
                return conn
            self.open -= 1
        if self.open < self.limit:
            self.open += 1
            try:
                _, conn = await asyncio.get_running_loop().create_connection(
                    _Conn, self.host, self.port
                )
            except BaseException:
                self.open -= 1
                raise
            return conn
        fut: asyncio.Future[_Conn] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        return await fut

    def release(self, conn: _Conn) -> None:
        if not conn.alive:
            self.open -= 1
            if conn.transport is not None:
                conn.transport.close()
            if self.waiters:  # let a waiter open a fresh connection
                fut = self.waiters.popleft()
                task = asyncio.ensure_future(self._open_for(fut))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        self.idle.append(conn)

    async def _open_for(self, fut: asyncio.Future[_Conn]) -> None:
        try:
            conn = await self.acquire()
        except BaseException as exc:
            if not fut.done():
                fut.set_exception(exc)
            return
        if fut.done():
            self.release(conn)
        else:
            fut.set_result(conn)

    def close(self) -> None:
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()


# --------------------------------------------------------------------------- driving


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)  # seconds, measured window only
    statuses: Counter[int] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    lag_max: float = 0.0
    lags: list[float] = field(default_factory=list)
    measured_sent: int = 0
    exhausted: bool = False
    # (due time on the perf_counter clock, latency s, status): kept only with --timeline
    timeline: list[tuple[float, float, int]] | None = None


async def _send(client: Any, base: str, req: Req, run: Run, record: bool, t_from: float) -> None:
    status = 0
    try:
        if isinstance(client, RawPool):
            conn = await client.acquire()
            try:
                status, body = await conn.request(req.raw)
            finally:
                client.release(conn)
        else:
            async with client.request(
                req.method, base + req.path, data=req.body, headers=req.headers
            ) as resp:
                body = await resp.read()
                status = resp.status
        if status >= 300 and len(run.error_samples) < 5:
            run.error_samples.append(f"{status} {req.path}: {body[:300]!r}")
    except Exception as exc:  # transport failure: an error, not a latency
        if len(run.error_samples) < 5:
            run.error_samples.append(f"{type(exc).__name__}: {exc}")
    if record:
        latency = time.perf_counter() - t_from
        run.latencies.append(latency)
        run.statuses[status] += 1
        if run.timeline is not None:
            run.timeline.append((t_from, latency, status))


async def open_loop(
    session: Any,
    base: str,
    scenario: Scenario,
    rate: float,
    warmup: float,
    duration: float,
    run: Run,
) -> float:
    """Request i is due at t0 + i / rate; latency counts from that due time."""
    total = int(rate * (warmup + duration))
    t0 = time.perf_counter() + 0.05
    measure_from = t0 + warmup
    tasks: set[asyncio.Task[None]] = set()
    for i in range(total):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        req = scenario.next()
        if req is None:
            run.exhausted = True
            break
        record = due >= measure_from
        if record:
            lag = time.perf_counter() - due
            run.lags.append(lag)
            run.lag_max = max(run.lag_max, lag)
            run.measured_sent += 1
        task = asyncio.create_task(_send(session, base, req, run, record, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    return measure_from


async def closed_loop(
    session: Any,
    base: str,
    scenario: Scenario,
    concurrency: int,
    warmup: float,
    duration: float,
    run: Run,
) -> float:
    t0 = time.perf_counter()
    measure_from = t0 + warmup
    stop_at = measure_from + duration

    async def client() -> None:
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                return
            req = scenario.next()
            if req is None:
                run.exhausted = True
                return
            await _send(session, base, req, run, now >= measure_from, now)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return measure_from


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of raw samples (no interpolation, nothing synthesised)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(-(-q * len(sorted_values) // 100)))  # ceil(q/100 * n)
    return sorted_values[min(rank, len(sorted_values)) - 1]


@contextlib.contextmanager
def _no_collections() -> Any:
    """No garbage collection in this process while it sends: a load generator must not pause.

    The driver's own full collections (40-45 ms each, every ~8 s at 2,500 requests/s, seen with
    bench/gc_probe) held every request due meanwhile, and the latency is counted from the due
    time: the half-load runs' p99s carried the driver's pauses, not only the server's. The heap
    built so far is frozen and the collector is off for the run; afterwards both are given back
    without a forced collection (one here would count in the driver's CPU per request: the
    run's few cycles go with the next automatic one)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    url = args.database_url.replace("postgresql+asyncpg://", "postgresql://")
    old_window = None
    if args.scenario == "bulk" and args.bulk_window:
        old_window = await _set_window(url, args.bulk_window)
        await asyncio.sleep(6)  # the runtime-settings cache lives 5 s in every API process
    settled = await _settle(url, args.settle) if args.settle > 0 else None
    fx = await load_fixture(url, args.jwt_secret, args.scenario, args.products)
    board_entries = None
    board_period = BOARD_PERIODS[0]
    if args.scenario == "leaderboard" and args.board:
        board_period = args.board
    elif args.scenario == "leaderboard" and args.board_wait > 0:
        board_period, board_entries = await _wait_for_boards(
            args.base_url, fx.headers[0], args.board_wait
        )
        if not board_entries:
            print("leaderboard: every board is still empty", file=sys.stderr)
    rng = random.Random(f"{args.seed}:{args.scenario}:{args.rate}:{args.concurrency}")
    scenario = Scenario(args.scenario, fx, rng, args.changed_days)
    scenario.board_period = board_period
    run = Run(timeline=[] if args.timeline else None)
    host = None
    if args.timeline:
        me = psutil.Process()
        host = HostSampler(
            {
                "driver": lambda: [me],
                "api": lambda: _api_processes(args.server_pid),
                "postgres": _postgres_processes,
                "worker": lambda: _api_processes(args.worker_pid),
            }
        ).start()
    api_procs = _api_processes(args.server_pid)
    worker_procs = _api_processes(args.worker_pid)
    counters = await Counters.open(url)
    pg_procs = _postgres_processes()
    sampled = Sampled()
    stop = asyncio.Event()
    sampler = asyncio.create_task(_rss_sampler(api_procs, sampled, stop))
    waits: Counter[str] = Counter()
    wait_task = asyncio.create_task(_wait_sampler(url, waits, stop))
    state_before = await _db_state(url)

    conns = args.connections or (args.concurrency if args.concurrency else 64)
    connector = aiohttp.TCPConnector(limit=conns, limit_per_host=conns, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    marks: dict[str, Any] = {}

    async def mark_measurement(measure_from: float) -> None:
        """Snapshot the CPU counters when the warm-up ends."""
        delay = measure_from - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        marks["t"] = time.perf_counter()
        marks["host"] = psutil.cpu_times()
        marks["self"] = resource.getrusage(resource.RUSAGE_SELF)
        marks["api"] = _cpu(api_procs)
        marks["worker"] = _cpu(worker_procs)
        marks["pg"] = _cpu(_postgres_processes())
        ours, shared = await _pg_split(counters.conn)
        marks["pg_ours"], marks["pg_shared"] = _cpu(ours), _cpu(shared)
        marks["db"] = await counters.sample()

    if args.client == "aiohttp":
        session_cm: Any = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            skip_auto_headers=("User-Agent",),
        )
    else:
        parts = urlsplit(args.base_url)
        session_cm = contextlib.nullcontext(
            RawPool(parts.hostname or "127.0.0.1", parts.port or 80, conns)
        )
    with _no_collections():
        async with session_cm as session:
            started = time.perf_counter()
            marker = asyncio.create_task(mark_measurement(started + 0.05 + args.warmup))
            if args.rate:
                await open_loop(
                    session, args.base_url, scenario, args.rate, args.warmup, args.duration, run
                )
            else:
                await closed_loop(
                    session,
                    args.base_url,
                    scenario,
                    args.concurrency,
                    args.warmup,
                    args.duration,
                    run,
                )
            ended = time.perf_counter()
            if isinstance(session, RawPool):
                session.close()
            if not marker.done():  # ran out of work during the warm-up
                marker.cancel()
                marks.update(
                    t=ended,
                    host=psutil.cpu_times(),
                    self=resource.getrusage(resource.RUSAGE_SELF),
                    api=_cpu(api_procs),
                    worker=_cpu(worker_procs),
                    pg=_cpu(pg_procs),
                    pg_ours={},
                    pg_shared={},
                    db=await counters.sample(),
                )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    host_after = psutil.cpu_times()
    api_after = _cpu(api_procs)
    api_cpu = _delta(marks["api"], api_after)
    api_per_process = {
        str(pid): round((v - marks["api"].get(pid, 0.0)) / max(ended - marks["t"], 1e-9), 3)
        for pid, v in api_after.items()
    }
    # new backends count from 0; the server-wide figure includes other databases' work
    pg_all_cpu = _delta(marks["pg"], _cpu(_postgres_processes()))
    ours_after, shared_after = await _pg_split(counters.conn)
    pg_cpu = _delta(marks["pg_ours"], _cpu(ours_after))
    pg_shared_cpu = _delta(marks["pg_shared"], _cpu(shared_after))
    worker_cpu = _delta(marks["worker"], _cpu(worker_procs))
    db_after = await counters.sample()
    await counters.close()
    db_delta = {k: db_after[k] - marks["db"].get(k, 0.0) for k in db_after}
    stop.set()
    await sampler
    await wait_task
    wait_samples = waits.pop("_samples", 0)
    await asyncio.sleep(1.2)  # let the backends flush their statistics
    state_after = await _db_state(url)
    backlog = await _job_backlog(url)
    if old_window is not None:
        await _set_window(url, old_window)

    window = ended - marks["t"]
    lat = sorted(run.latencies)
    n = len(lat)
    ok = sum(c for s, c in run.statuses.items() if 200 <= s < 300)
    driver_cpu = (usage.ru_utime + usage.ru_stime) - (
        marks["self"].ru_utime + marks["self"].ru_stime
    )
    f_before, f_after = state_before["apply_sync"], state_after["apply_sync"]
    calls = f_after["calls"] - f_before["calls"]
    vac = {
        rel: {
            "autovacuum": t["autovacuum_count"]
            - state_before["tables"].get(rel, t)["autovacuum_count"],
            "autoanalyze": t["autoanalyze_count"]
            - state_before["tables"].get(rel, t)["autoanalyze_count"],
            "n_dead_tup_after": t["n_dead_tup"],
        }
        for rel, t in state_after["tables"].items()
    }
    ms = 1000.0
    result = {
        "scenario": args.scenario,
        "mode": "open" if args.rate else "closed",
        "client": args.client,
        "target_rate": args.rate or None,
        "concurrency": args.concurrency or None,
        "connections": conns,
        "warmup_s": args.warmup,
        "duration_s": round(window, 2),
        "count": n,
        "ok": ok,
        "errors": n - ok,
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "error_samples": run.error_samples,
        "ran_out_of_work": run.exhausted,
        "achieved_rate": round(n / window, 1) if window > 0 else None,
        "ok_rate": round(ok / window, 1) if window > 0 else None,
        "records_per_s": round(ok * scenario.records_per_request / window, 1)
        if scenario.records_per_request and window > 0
        else None,
        "latency_ms": {
            "mean": round(sum(lat) / n * ms, 3) if n else None,
            "p50": round(percentile(lat, 50) * ms, 3),
            "p90": round(percentile(lat, 90) * ms, 3),
            "p95": round(percentile(lat, 95) * ms, 3),
            "p99": round(percentile(lat, 99) * ms, 3),
            "p99.9": round(percentile(lat, 99.9) * ms, 3),
            "max": round(lat[-1] * ms, 3) if n else None,
        },
        "scheduler_lag_ms": {
            "p99": round(percentile(sorted(run.lags), 99) * ms, 3) if run.lags else None,
            "max": round(run.lag_max * ms, 3),
        }
        if args.rate
        else None,
        "cpu_us_per_request": {
            "driver": round(driver_cpu / max(n, 1) * 1e6, 1),
            "api": round(api_cpu / max(n, 1) * 1e6, 1),
            "postgres": round(pg_cpu / max(n, 1) * 1e6, 1),
            "worker": round(worker_cpu / max(n, 1) * 1e6, 1) if worker_procs else None,
            "postgres_shared": round(pg_shared_cpu / max(n, 1) * 1e6, 1),
            "postgres_server_all": round(pg_all_cpu / max(n, 1) * 1e6, 1),
        },
        "cpu_note": "postgres: this database's backends (the API's and the worker's "
        "connections, and the driver's two sampling connections); postgres_shared: the server's "
        "background processes (WAL writer, checkpointer, ...), shared with other databases; "
        "postgres_server_all: every postgres process of the server, other databases' included",
        "db_per_request": {
            "wal_bytes": round(db_delta["wal_lsn"] / max(n, 1), 1),
            "wal_records": round(db_delta["wal_records"] / max(n, 1), 2)
            if "wal_records" in db_delta
            else None,
            "wal_fpi": round(db_delta["wal_fpi"] / max(n, 1), 3) if "wal_fpi" in db_delta else None,
            "commits": round(db_delta["xact_commit"] / max(n, 1), 3),
            "rollbacks": round(db_delta["xact_rollback"] / max(n, 1), 3),
            "rows_inserted": round(db_delta["tup_inserted"] / max(n, 1), 2),
            "rows_updated": round(db_delta["tup_updated"] / max(n, 1), 2),
            "rows_deleted": round(db_delta["tup_deleted"] / max(n, 1), 2),
            "rows_fetched": round(db_delta["tup_fetched"] / max(n, 1), 2),
            "statements": round(db_delta["statements"] / max(n, 1), 2)
            if "statements" in db_delta
            else None,
            "note": "WAL counters are server-wide; row and commit counters are this database's "
            "and lag up to ~1 s (PostgreSQL flushes backend statistics at most once a second)",
        },
        "jobs_waiting_after": backlog,
        "settle": settled,
        "leaderboard_entries_before": board_entries,
        "leaderboard_period": board_period if args.scenario == "leaderboard" else None,
        # the whole machine over the window: `steal` is time the hypervisor ran someone else
        # while this VM wanted a core (a noisy neighbour: it shows as latency no process here
        # accounts for); `idle` is what was left
        "host_cpu_share": _host_share(marks["host"], host_after, window),
        "cpu_share_of_2_cores": {
            "driver": round(driver_cpu / (window * psutil.cpu_count()), 3),
            "api": round(api_cpu / (window * psutil.cpu_count()), 3),
            "postgres": round(pg_cpu / (window * psutil.cpu_count()), 3),
            "postgres_server_all": round(pg_all_cpu / (window * psutil.cpu_count()), 3),
            "worker": round(worker_cpu / (window * psutil.cpu_count()), 3),
        },
        "api_cpu_cores_per_process": api_per_process,
        # the processes that answer requests, busiest first: one near 1.0 and the others near 0
        # is a run whose connections all landed on one process (BENCHMARKS.md, run 25)
        "api_serving_cores": sorted(
            (
                api_per_process[str(pid)]
                for pid in _serving_pids(api_procs)
                if str(pid) in api_per_process
            ),
            reverse=True,
        ),
        "pg_active_backends_by_wait": {
            "samples": wait_samples,
            "mean_active": round(sum(waits.values()) / max(1, wait_samples), 2),
            "share": {
                k: round(v / max(1, sum(waits.values())), 3) for k, v in waits.most_common(8)
            },
        },
        "api_rss_max_mb": {str(pid): round(mb, 1) for pid, mb in sampled.rss_max.items()},
        "apply_sync": {
            "calls": calls,
            "mean_total_ms": round((f_after["total_ms"] - f_before["total_ms"]) / calls, 3)
            if calls
            else None,
        },
        "checkpoints": {  # server-wide, in the measured window (bench/run.sh issues one before)
            "begun": db_delta.get("checkpoints"),
            "write_ms": db_delta.get("checkpoint_write_ms"),
            "sync_ms": db_delta.get("checkpoint_sync_ms"),
        },
        "autovacuum": {
            "setting": state_after["autovacuum_setting"],
            "ran_during": {rel: v for rel, v in vac.items() if v["autovacuum"] or v["autoanalyze"]},
            "workers_running_at_end": state_after["autovacuum_workers_running"],
            "dead_tuples_after": {rel: v["n_dead_tup_after"] for rel, v in vac.items()},
        },
        "sync_window_days_for_run": args.bulk_window if args.scenario == "bulk" else None,
        "started_at": datetime.now(UTC).isoformat(),
    }
    if run.timeline is not None:
        to_unix = time.time() - time.perf_counter()
        result["_timeline"] = [(t + to_unix, lat * 1000, st) for t, lat, st in run.timeline]
    if host is not None:
        host.stop()
        result["_host"] = host.rows()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="StepCoin load driver (open or closed loop).")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), required=False)
    parser.add_argument("--jwt-secret", default=os.environ.get("STEPCOIN_JWT_SECRET"))
    parser.add_argument(
        "--scenario",
        required=True,
        choices=[
            "sync",
            "profile",
            "wallet",
            "ledger",
            "achievements",
            "leaderboard",
            "approve",
            "bulk",
            "order",
        ],
    )
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: requests per second")
    parser.add_argument("--concurrency", type=int, default=0, help="closed loop: clients")
    parser.add_argument("--connections", type=int, default=0, help="open loop: keep-alive pool")
    parser.add_argument("--duration", type=float, default=25.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds not measured")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument(
        "--changed-days",
        type=int,
        default=7,
        help="sync: how many of the 7 days come back with more steps",
    )
    parser.add_argument(
        "--bulk-window",
        type=int,
        default=200,
        help="bulk: anticheat.sync_window_days during the run (0: leave as is)",
    )
    parser.add_argument("--server-pid", type=int, default=0, help="serve's pid, for CPU and RSS")
    parser.add_argument("--worker-pid", type=int, default=0, help="the job worker's pid, for CPU")
    parser.add_argument("--products", type=int, default=50, help="order: bench products")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="first wait at most this long for the job worker to catch up with the due jobs",
    )
    parser.add_argument(
        "--board",
        choices=BOARD_PERIODS,
        help="leaderboard: read this board (bench/run.sh: the half-load run reads the board "
        "its maximum was measured on), instead of picking the first full one",
    )
    parser.add_argument(
        "--board-wait",
        type=float,
        default=75.0,
        help="leaderboard: wait at most this long for a board to list someone "
        "(weekly, else monthly, else all_time)",
    )
    parser.add_argument(
        "--client",
        choices=["raw", "aiohttp"],
        default="raw",
        help="raw: keep-alive HTTP/1.1 on asyncio + httptools (cheapest); aiohttp",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", help="write the JSON result here")
    parser.add_argument(
        "--timeline",
        help="also write every measured request as CSV (unix time it was due, latency ms, "
        "status) here: bench/stalls.py lines slow requests up with the jobs that ran",
    )
    args = parser.parse_args()
    if not args.database_url or not args.jwt_secret:
        parser.error("--database-url and --jwt-secret (or the env variables) are required")
    if bool(args.rate) == bool(args.concurrency):
        parser.error("give exactly one of --rate (open loop) or --concurrency (closed loop)")
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    result = asyncio.run(main_async(args))
    timeline = result.pop("_timeline", None)
    host_rows = result.pop("_host", None)
    if args.timeline and timeline is not None:
        with open(args.timeline, "w") as f:
            f.write("due_unix,latency_ms,status\n")
            f.writelines(f"{t:.4f},{ms:.3f},{st}\n" for t, ms, st in timeline)
    if args.timeline and host_rows is not None:
        # beside the timeline: per ~100 ms the machine's idle and stolen share and the cores
        # each group used (stalls.py)
        with open(host_timeline_path(args.timeline), "w") as f:
            f.write("from_unix,to_unix,idle_share,steal_share,driver,api,postgres,worker\n")
            f.writelines(
                f"{row[0]:.4f},{row[1]:.4f}," + ",".join(f"{v:.3f}" for v in row[2:]) + "\n"
                for row in host_rows
            )
    text = json.dumps(result, indent=2)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    lat = result["latency_ms"]
    how = f"rate {result['target_rate']}" if result["target_rate"] else f"c={result['concurrency']}"
    print(
        f"{result['scenario']:8s} {result['mode']:6s} {how}: "
        f"n={result['count']} err={result['errors']} rate={result['achieved_rate']}/s "
        f"p50={lat['p50']} p95={lat['p95']} p99={lat['p99']} max={lat['max']} ms "
        f"cpu/req us={result['cpu_us_per_request']}"
        + (f" records/s={result['records_per_s']}" if result["records_per_s"] else ""),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

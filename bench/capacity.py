"""The capacity model's measurements: bytes per walker-day per table and index, WAL and rows
per operation through the real API (issue 19 item 1; the model itself is docs/scale-out.md).

    python bench/capacity.py [--server-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--sizes 2000x60,4000x60] [--ops 400] [--out-dir bench/results] [--keep]

For each size WxD (walkers x days) it creates a throwaway database, migrates it, fills it with
bench/generate.py (the benchmark data set: one record, decision, step_days row and, when the
day paid, a ledger row per walker-day), runs VACUUM ANALYZE and reads, per table (monthly
partitions of step_records folded into their table), the heap, TOAST and each index's size
(pg_relation_size / pg_table_size / pg_indexes_size / pg_total_relation_size), divided by the
walker-days, the walkers and the table's rows. Two sizes show whether the figures are linear.

On the last size it then starts one `stepcoin serve --no-worker` and, one request at a time
(nothing else writes to this database), drives through HTTP, the path the phones use:

- `sync_first`: a walker's first sync of the day: 7 records (today and the 6 days before),
  today new, the 6 older days resent unchanged;
- `sync_again`: the same walkers again, today 100-600 steps higher (a later sync of the day);
- `sync_again_after_checkpoint`: the same once more right after a CHECKPOINT (unless
  --no-checkpoint): every page it changes writes a full-page image, the upper bound;
- `sync_7changed`: all 7 days higher (the load benchmark's sync, the worst case);
- `order`: `POST /v1/orders`, 2 lines of cheap products;
- `approve`: `POST /v1/admin/validations/{id}/approve` of a queued flagged day (200 coins).

After the first two sync phases a real `stepcoin worker` drains the marks they left (the
boards' refresh, the achievements batch; the generator's own marks were drained before,
unmeasured), then the same worker runs with nothing to drain, whose WAL per second is
subtracted: the worker's WAL per walker refreshed (`--no-worker` skips it).

For each it reads the rows each table gained (count(*) before and after) and the WAL this
database wrote: `pg_walinspect` over the LSN range of the phase, keeping the records of every
transaction that touched a block of this database (its commit record included) and the
transaction-less records on its blocks (pruning, hint-bit images); other databases' writes on
the shared server are left out. WAL is reported with and without full-page images (the first
change of a page after a checkpoint writes the whole 8 kB page: how many a production server
writes depends on its checkpoint interval and working set). Nothing here depends on the CPU's
speed except the `ms` columns, which are informational.

Writes `capacity-<stamp>.json` and `capacity-<stamp>.md` in --out-dir and drops the databases
unless --keep. Needs the pg_walinspect extension (PostgreSQL 15+ contrib) and a superuser.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from generate import generate  # noqa: E402

from stepcoin import migrate  # noqa: E402

PARTITION = re.compile(r"_(p\d{6}|p?\d{4}_\d{2}|default)$")

# every table and index of the schema: the partitioned step_records is summed over its
# partitions (relkind 'p' has no storage of its own)
SIZES_SQL = """
SELECT c.relname, c.relkind, c.oid::regclass::text,
       coalesce(p.relname, c.relname) AS parent,
       pg_relation_size(c.oid) AS heap,
       pg_table_size(c.oid) - pg_relation_size(c.oid) AS toast_fsm_vm,
       pg_indexes_size(c.oid) AS indexes,
       pg_total_relation_size(c.oid) AS total,
       (SELECT count(*) FROM pg_inherits i2 WHERE i2.inhparent = c.oid) AS children
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
LEFT JOIN pg_class p ON p.oid = i.inhparent
WHERE c.relkind IN ('r', 'p')
"""

INDEX_SQL = """
SELECT coalesce(pt.relname, t.relname) AS tbl,
       coalesce(pi.relname, ix.relname) AS idx,
       pg_relation_size(ix.oid) AS bytes
FROM pg_index x
JOIN pg_class ix ON ix.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
LEFT JOIN pg_inherits it ON it.inhrelid = t.oid
LEFT JOIN pg_class pt ON pt.oid = it.inhparent
LEFT JOIN pg_inherits ii ON ii.inhrelid = ix.oid
LEFT JOIN pg_class pi ON pi.oid = ii.inhparent
WHERE t.relkind = 'r'
"""

# the WAL of one database between two LSNs: the records of every transaction that wrote a
# block of it (commit records carry no block reference: they are kept by their xid) and the
# transaction-less records on its blocks; record_length includes the full-page images
WAL_SQL = """
WITH r AS (
    SELECT xid, record_length, fpi_length, resource_manager, record_type,
           block_ref ~ %(pattern)s AS ours
    FROM pg_get_wal_records_info(%(a)s::pg_lsn, %(b)s::pg_lsn)
), x AS (SELECT DISTINCT xid FROM r WHERE ours AND xid::text <> '0')
SELECT count(*) AS records,
       coalesce(sum(record_length), 0) AS bytes,
       coalesce(sum((record_length + 7) / 8 * 8), 0) AS bytes_aligned,
       coalesce(sum(fpi_length), 0) AS fpi_bytes,
       count(*) FILTER (WHERE fpi_length > 0) AS records_with_fpi,
       count(*) FILTER (WHERE resource_manager = 'Transaction') AS xact_records,
       (SELECT count(*) FROM x) AS transactions
FROM r
WHERE (xid::text <> '0' AND xid IN (SELECT xid FROM x)) OR (xid::text = '0' AND ours)
"""


WAL_KEYS = (
    "records",
    "bytes",
    "bytes_aligned",
    "fpi_bytes",
    "records_with_fpi",
    "xact_records",
    "transactions",
)
CHUNK = 25


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def table_of(relname: str) -> str:
    return PARTITION.sub("", relname)


def measure_sizes(conn: psycopg.Connection[Any], walkers: int, days: int) -> dict[str, Any]:
    """Per table: rows, heap, TOAST (+FSM/VM), indexes, total; per walker-day and per row."""
    tables: dict[str, dict[str, int]] = {}
    for _relname, relkind, _reg, parent, heap, toast, idx, total, _children in conn.execute(
        SIZES_SQL
    ).fetchall():
        if relkind == "p":
            continue  # the partitions carry the bytes
        name = table_of(parent)
        t = tables.setdefault(name, {"heap": 0, "toast_fsm_vm": 0, "indexes": 0, "total": 0})
        t["heap"] += heap
        t["toast_fsm_vm"] += toast
        t["indexes"] += idx
        t["total"] += total
    for name in tables:
        (rows,) = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()  # type: ignore[misc]
        tables[name]["rows"] = rows
    indexes: dict[str, dict[str, int]] = {}
    for tbl, idx, size in conn.execute(INDEX_SQL).fetchall():
        tname = table_of(tbl)
        indexes.setdefault(tname, {})
        iname = table_of(idx) if idx.startswith(tbl) else idx
        indexes[tname][iname] = indexes[tname].get(iname, 0) + size
    wd = walkers * days
    out: dict[str, Any] = {"walkers": walkers, "days": days, "walker_days": wd, "tables": {}}
    for name, t in sorted(tables.items(), key=lambda kv: -kv[1]["total"]):
        rows = t["rows"]
        out["tables"][name] = {
            **t,
            "per_walker_day": round(t["total"] / wd, 1),
            "per_walker": round(t["total"] / walkers, 1),
            "heap_per_row": round(t["heap"] / rows, 1) if rows else None,
            "indexes_per_row": round(t["indexes"] / rows, 1) if rows else None,
            "total_per_row": round(t["total"] / rows, 1) if rows else None,
            "index_sizes": dict(sorted(indexes.get(name, {}).items())),
        }
    (db_size,) = conn.execute("SELECT pg_database_size(current_database())").fetchone()  # type: ignore[misc]
    out["database_bytes"] = db_size
    return out


def row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        ).fetchall()
    ]
    counts = {}
    for name in names:
        (n,) = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()  # type: ignore[misc]
        counts[name] = n
    return counts


def wal_between(conn: psycopg.Connection[Any], dboid: int, a: str, b: str) -> dict[str, int]:
    row = conn.execute(WAL_SQL, {"a": a, "b": b, "pattern": rf"rel \d+/{dboid}/"}).fetchone()
    assert row is not None
    return {k: int(v) for k, v in zip(WAL_KEYS, row, strict=True)}


class Driver:
    """Serial HTTP requests of the phones' and the reviewer's paths, tokens minted directly."""

    def __init__(self, base: str, url: str, secret: str, seed: int) -> None:
        os.environ["STEPCOIN_JWT_SECRET"] = secret
        from stepcoin.auth.tokens import create_access_token
        from stepcoin.config import Settings

        settings = Settings(jwt_secret=secret)
        self.http = httpx.Client(base_url=base, timeout=60)
        self.rng = random.Random(seed)
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT id, email FROM users WHERE email LIKE 'walker%%@bench.stepcoin.test' "
                "ORDER BY id"
            ).fetchall()
            self.walkers = [r[0] for r in rows]
            # the generator's device of walker n is 'bench-device-<n>': the same device resent
            self.device = {
                r[0]: "bench-device-" + r[1].split("@")[0][len("walker") :] for r in rows
            }
            admin = conn.execute(
                "SELECT id FROM users WHERE email = 'admin@bench.stepcoin.test'"
            ).fetchone()
            assert admin is not None
            today = datetime.now(UTC).date()
            self.steps: dict[tuple[uuid.UUID, date], int] = {
                (u, d): s
                for u, d, s in conn.execute(
                    "SELECT user_id, recorded_date, steps FROM step_records "
                    "WHERE recorded_date >= %s AND source = 'healthkit'",
                    (today - timedelta(days=7),),
                ).fetchall()
            }
            self.queue = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM step_validations WHERE status = 'flagged' "
                    "AND reviewed_at IS NULL AND superseded_by IS NULL ORDER BY id"
                ).fetchall()
            ]
            self.products = [
                r[0]
                for r in conn.execute(
                    "INSERT INTO reward_products (title, coin_price, stock_quantity, category) "
                    "SELECT 'Bench product ' || n, 1 + n % 5, 10000000, 'bench' "
                    "FROM generate_series(1, 20) n RETURNING id"
                ).fetchall()
            ]
            conn.commit()
        self.tokens = {
            u: {"Authorization": f"Bearer {create_access_token(settings, u, 'user')}"}
            for u in self.walkers
        }
        self.admin = {"Authorization": f"Bearer {create_access_token(settings, admin[0], 'admin')}"}

    def sync(self, walker: uuid.UUID, changed_days: int) -> None:
        """7 records, today and the 6 days before; the last `changed_days` days higher, a day
        never stored (today on the first sync) new."""
        today = datetime.now(UTC).date()
        records = []
        for k in range(6, -1, -1):
            day = today - timedelta(days=k)
            steps = self.steps.get((walker, day))
            if steps is None:
                steps = self.rng.randint(1000, 4000)
            elif k < changed_days:
                steps += self.rng.randint(100, 600)
            self.steps[(walker, day)] = steps
            records.append(
                {
                    "date": day.isoformat(),
                    "steps": steps,
                    "source": "healthkit",
                    "device_id": self.device[walker],
                }
            )
        r = self.http.post("/v1/steps", json={"records": records}, headers=self.tokens[walker])
        assert r.status_code == 200, (r.status_code, r.text[:300])

    def order(self, walker: uuid.UUID) -> None:
        lines = self.rng.sample(self.products, 2)
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
        headers = {**self.tokens[walker], "Idempotency-Key": uuid.uuid4().hex}
        r = self.http.post("/v1/orders", json=body, headers=headers)
        assert r.status_code in (200, 201), (r.status_code, r.text[:300])

    def approve(self, validation_id: int) -> None:
        r = self.http.post(
            f"/v1/admin/validations/{validation_id}/approve", json={}, headers=self.admin
        )
        assert r.status_code == 200, (r.status_code, r.text[:300])


def run_phase(
    conn: psycopg.Connection[Any],
    dboid: int,
    name: str,
    calls: list[Any],
    checkpoint: bool = False,
) -> dict[str, Any]:
    """Run the calls (each a zero-argument function, one HTTP request) serially; the rows each
    table gained and this database's WAL per call. checkpoint: a CHECKPOINT first, so that
    every page the phase changes is its first change since a checkpoint (a full-page image
    each: the upper bound of the WAL)."""
    before = row_counts(conn)
    if checkpoint:
        conn.execute("CHECKPOINT")
    times = []
    wal = {k: 0 for k in WAL_KEYS}
    # the WAL is read every CHUNK calls: on a busy shared server a long phase's first segments
    # may be recycled before its end (each call is one committed request: no transaction spans
    # two chunks)
    for start in range(0, len(calls), CHUNK):
        (a,) = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()  # type: ignore[misc]
        for call in calls[start : start + CHUNK]:
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1000)
        (b,) = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()  # type: ignore[misc]
        for _ in range(100):  # pg_walinspect reads only flushed WAL
            (flushed,) = conn.execute(  # type: ignore[misc]
                "SELECT pg_current_wal_flush_lsn() >= %s::pg_lsn", (b,)
            ).fetchone()
            if flushed:
                break
            time.sleep(0.05)
        for k, v in wal_between(conn, dboid, a, b).items():
            wal[k] += v
    after = row_counts(conn)
    n = len(calls)
    gained = {
        t: round((after[t] - before.get(t, 0)) / n, 3)
        for t in sorted(after)
        if after[t] != before.get(t, 0)
    }
    result = {
        "calls": n,
        "wal_total": wal,
        "wal_per_call": {k: round(v / n, 1) for k, v in wal.items()},
        "wal_per_call_without_fpi": round((wal["bytes_aligned"] - wal["fpi_bytes"]) / n, 1),
        "rows_gained_per_call": gained,
        "ms_median_informational": round(statistics.median(times), 2),
        "after_checkpoint": checkpoint,
    }
    log(
        f"{name}: {n} calls, {result['wal_per_call']['bytes_aligned']:,.0f} WAL bytes per call "
        f"({result['wal_per_call_without_fpi']:,.0f} without full-page images, "
        f"{result['wal_per_call']['records']:.1f} records), rows {gained}"
    )
    return result


DIRTY_SQL = (
    "SELECT (SELECT count(*) FROM leaderboard_dirty) + (SELECT count(*) FROM achievements_dirty)"
)


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    stepcoin = str(Path(sys.executable).with_name("stepcoin"))
    return subprocess.Popen(
        [stepcoin, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def drain(conn: psycopg.Connection[Any], env: dict[str, str], timeout: float) -> bool:
    """Run a `stepcoin worker` until the dirty marks (boards, achievements) are gone."""
    worker = start_worker(env)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            (left,) = conn.execute(DIRTY_SQL).fetchone()  # type: ignore[misc]
            if not left:
                return True
            time.sleep(0.5)
        return False
    finally:
        stop(worker)


def read_wal(conn: psycopg.Connection[Any], dboid: int, a: str, wal: dict[str, int]) -> str:
    """Add this database's WAL from `a` to the flushed end; the new start."""
    (b, ahead) = conn.execute(  # type: ignore[misc]
        "SELECT pg_current_wal_flush_lsn()::text, pg_current_wal_flush_lsn() > %s::pg_lsn", (a,)
    ).fetchone()
    if not ahead:
        return a
    for k, v in wal_between(conn, dboid, a, b).items():
        wal[k] += v
    return str(b)


def worker_phase(
    conn: psycopg.Connection[Any],
    dboid: int,
    env: dict[str, str],
    syncs: int,
    walkers: int,
    timeout: float,
    min_seconds: float = 0.0,
) -> dict[str, Any]:
    """The job worker's WAL for the marks `syncs` syncs of `walkers` walkers left (the boards'
    refresh, the achievements batch), read every second while it drains them; its periodic
    tasks that fall in the window count too. The refresh works per walker, not per sync: a
    walker whose syncs fall into different refreshes is refreshed once for each."""
    wal = {k: 0 for k in WAL_KEYS}
    (marks,) = conn.execute(DIRTY_SQL).fetchone()  # type: ignore[misc]
    started = time.monotonic()
    (a,) = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()  # type: ignore[misc]
    worker = start_worker(env)
    drained = False
    try:
        while time.monotonic() - started < timeout:
            time.sleep(1)
            (left,) = conn.execute(DIRTY_SQL).fetchone()  # type: ignore[misc]
            a = read_wal(conn, dboid, a, wal)
            if not left:
                drained = True
                if time.monotonic() - started >= min_seconds:
                    break
    finally:
        stop(worker)
    time.sleep(0.5)
    a = read_wal(conn, dboid, a, wal)
    if not syncs:  # the idle baseline: a start, the start-up tasks, the schedule
        seconds = time.monotonic() - started
        log(f"worker idle for {seconds:.1f} s: {wal['bytes_aligned']:,} WAL bytes")
        return {"seconds_informational": round(seconds, 1), "wal_total": wal}
    result = {
        "syncs": syncs,
        "walkers": walkers,
        "wal_per_walker": {k: round(v / walkers, 1) for k, v in wal.items()},
        "marks_before": marks,
        "drained": drained,
        "seconds_informational": round(time.monotonic() - started, 1),
        "wal_total": wal,
        "wal_per_sync": {k: round(v / syncs, 1) for k, v in wal.items()},
        "wal_per_sync_without_fpi": round((wal["bytes_aligned"] - wal["fpi_bytes"]) / syncs, 1),
    }
    log(
        f"worker after {syncs} syncs ({marks} marks, drained {drained}): "
        f"{result['wal_per_sync']['bytes_aligned']:,.0f} WAL bytes per sync "
        f"({result['wal_per_sync_without_fpi']:,.0f} without full-page images)"
    )
    return result


def drive(url: str, ops: int, seed: int, checkpoint: bool, worker: bool) -> dict[str, Any]:
    port = free_port()
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "STEPCOIN_ENV": "production",
        "STEPCOIN_JWT_SECRET": secret,
        "STEPCOIN_ACCESS_LOG": "false",
        "STEPCOIN_LOG_LEVEL": "WARNING",
        "STEPCOIN_RUN_WORKER_IN_SERVE": "false",
    }
    stepcoin = str(Path(sys.executable).with_name("stepcoin"))
    server = subprocess.Popen(
        [stepcoin, "serve", "--no-worker", "--no-migrate", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        driver = Driver(base, url, secret, seed)
        rng = random.Random(seed)
        walkers = rng.sample(driver.walkers, min(ops, len(driver.walkers)))
        warm = [w for w in driver.walkers if w not in set(walkers)][:5]
        for w in warm:  # prepared statements, caches; not measured
            driver.sync(w, 1)
            driver.order(w)
        phases: dict[str, Any] = {}
        with psycopg.connect(url, autocommit=True) as conn:
            (dboid,) = conn.execute(  # type: ignore[misc]
                "SELECT oid FROM pg_database WHERE datname = current_database()"
            ).fetchone()
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
            worker_env = {k: v for k, v in env.items() if k != "STEPCOIN_RUN_WORKER_IN_SERVE"}
            if worker:
                # the generator's marks first (every walker-day's), not measured
                phases["worker_initial_drain"] = drain(conn, worker_env, 300)
            phases["sync_first"] = run_phase(
                conn, dboid, "sync_first", [lambda w=w: driver.sync(w, 0) for w in walkers]
            )
            phases["sync_again"] = run_phase(
                conn, dboid, "sync_again", [lambda w=w: driver.sync(w, 1) for w in walkers]
            )
            if worker and phases["worker_initial_drain"]:
                phases["worker_after_syncs"] = worker_phase(
                    conn, dboid, worker_env, 2 * len(walkers), len(walkers), 120, 8
                )
                # the same window with nothing to drain: what a worker's start and its schedule
                # write anyway, to subtract
                idle = worker_phase(conn, dboid, worker_env, 0, 0, 8, 8)
                phases["worker_idle"] = idle
                w = phases["worker_after_syncs"]
                scale = w["seconds_informational"] / max(idle["seconds_informational"], 0.1)
                net = {k: w["wal_total"][k] - idle["wal_total"][k] * scale for k in WAL_KEYS}
                w["net_of_idle"] = {
                    "wal_per_walker": {k: round(v / w["walkers"], 1) for k, v in net.items()},
                    "wal_per_walker_without_fpi": round(
                        (net["bytes_aligned"] - net["fpi_bytes"]) / w["walkers"], 1
                    ),
                }
                log(f"worker per walker refreshed, net of the idle window: {w['net_of_idle']}")
            if checkpoint:
                phases["sync_again_after_checkpoint"] = run_phase(
                    conn,
                    dboid,
                    "sync_again_after_checkpoint",
                    [lambda w=w: driver.sync(w, 1) for w in walkers],
                    checkpoint=True,
                )
            phases["sync_7changed"] = run_phase(
                conn, dboid, "sync_7changed", [lambda w=w: driver.sync(w, 7) for w in walkers]
            )
            phases["order"] = run_phase(
                conn, dboid, "order", [lambda w=w: driver.order(w) for w in walkers]
            )
            queue = driver.queue[:ops]
            if queue:
                phases["approve"] = run_phase(
                    conn, dboid, "approve", [lambda v=v: driver.approve(v) for v in queue]
                )
            (mismatch,) = conn.execute(  # type: ignore[misc]
                "SELECT count(*) FROM wallets w LEFT JOIN (SELECT user_id, sum(amount) AS s "
                "FROM coin_transactions GROUP BY user_id) l ON l.user_id = w.user_id "
                "WHERE w.available_coins <> coalesce(l.s, 0)"
            ).fetchone()
            phases["wallets_not_equal_to_ledger"] = mismatch
            conn.execute("VACUUM (ANALYZE)")
        return phases
    finally:
        server.terminate()
        server.wait(timeout=30)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Capacity measurements {report['stamp']}",
        "",
        f"`python bench/capacity.py {report['args']}` on PostgreSQL {report['server_version']}, "
        f"commit {report['commit']}, wal_compression {report.get('wal_compression', 'off')}. "
        "Sizes after VACUUM ANALYZE of the generated data set "
        "(bench/generate.py). Bytes, rows and WAL do not depend on the CPU's speed.",
        "",
    ]
    for size in report["sizes"]:
        lines += [
            f"## {size['walkers']:,} walkers x {size['days']} days "
            f"({size['walker_days']:,} walker-days; database {size['database_bytes']:,} bytes)",
            "",
            "| table | rows | heap | TOAST+FSM+VM | indexes | total | per walker-day | "
            "per walker | per row (heap / indexes) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, t in size["tables"].items():
            if t["total"] < 65536 and t["rows"] < 100:
                continue
            per_row = (
                f"{t['heap_per_row']:,.0f} / {t['indexes_per_row']:,.0f}" if t["rows"] else "-"
            )
            lines.append(
                f"| {name} | {t['rows']:,} | {t['heap']:,} | {t['toast_fsm_vm']:,} | "
                f"{t['indexes']:,} | {t['total']:,} | {t['per_walker_day']:,.1f} | "
                f"{t['per_walker']:,.1f} | {per_row} |"
            )
        lines += ["", "Indexes of the big tables (bytes per row):", ""]
        for name, t in size["tables"].items():
            if t["rows"] >= size["walkers"] and t["index_sizes"]:
                parts = ", ".join(f"{i} {b / t['rows']:,.1f}" for i, b in t["index_sizes"].items())
                lines.append(f"- {name}: {parts}")
        lines.append("")
    if report.get("operations"):
        ops = report["operations"]
        lines += [
            "## Per operation, through the API, serial (this database's WAL only)",
            "",
            "| operation | calls | WAL bytes/call | of which full-page images | without FPI | "
            "WAL records/call | rows gained per call | ms median (informational) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, p in ops.items():
            if not isinstance(p, dict) or "wal_per_call" not in p:
                continue
            w = p["wal_per_call"]
            gained = ", ".join(f"{t} {v:g}" for t, v in p["rows_gained_per_call"].items())
            lines.append(
                f"| {name} | {p['calls']} | {w['bytes_aligned']:,.0f} | {w['fpi_bytes']:,.0f} | "
                f"{p['wal_per_call_without_fpi']:,.0f} | {w['records']:.1f} | {gained} | "
                f"{p['ms_median_informational']} |"
            )
        lines += [
            "",
            f"wallets != ledger after the operations: {ops.get('wallets_not_equal_to_ledger')}",
            "",
        ]
        w = ops.get("worker_after_syncs")
        if w:
            walkers = w.get("walkers", w["syncs"] // 2)
            per_walker = w["wal_per_sync"]["bytes_aligned"] * w["syncs"] / walkers
            lines += [
                f"The job worker after the {w['syncs']:,} syncs of `sync_first` and `sync_again` "
                f"({w['marks_before']:,} dirty marks, drained: {w['drained']}, "
                f"{w['seconds_informational']} s): {w['wal_per_sync']['bytes_aligned']:,.0f} WAL "
                f"bytes per sync ({w['wal_per_sync_without_fpi']:,.0f} without full-page images, "
                f"{w['wal_per_sync']['records']:.1f} records, "
                f"{w['wal_per_sync']['xact_records']:.2f} commits); per walker refreshed "
                f"(two syncs each): {per_walker:,.0f} bytes; its periodic tasks in that window "
                "included.",
                "",
            ]
            if "net_of_idle" in w:
                lines += [
                    f"Net of the same worker's idle window "
                    f"({ops['worker_idle']['wal_total']}, scaled to the drain's seconds), per "
                    f"walker refreshed: {w['net_of_idle']}.",
                    "",
                ]
        after = report.get("sizes_after_operations")
        if after:
            lines += [
                "## Tables grown only by the operations (after VACUUM ANALYZE)",
                "",
                "| table | rows | total bytes | per row |",
                "|---|---|---|---|",
            ]
            for name in ("orders", "order_items", "audit_log", "step_validations"):
                t = after["tables"].get(name)
                if t and t["rows"]:
                    lines.append(
                        f"| {name} | {t['rows']:,} | {t['total']:,} | {t['total_per_row']:,.1f} |"
                    )
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--server-url",
        default=os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--sizes", default="2000x60,4000x60", help="WALKERSxDAYS, comma-separated")
    parser.add_argument("--ops", type=int, default=400, help="calls per operation (last size)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--no-checkpoint",
        action="store_true",
        help="skip the sync phase run right after a CHECKPOINT (a server-wide checkpoint: "
        "harmless, but it makes the server write its dirty pages now)",
    )
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="skip the job worker's WAL for the syncs' marks (boards, achievements)",
    )
    parser.add_argument(
        "--wal-compression",
        choices=["pglz", "lz4", "zstd"],
        help="compress full-page images in the operations' database (ALTER DATABASE ... SET)",
    )
    parser.add_argument("--render", help="only rewrite the .md of this capacity-<stamp>.json")
    args = parser.parse_args()
    if args.render:
        Path(args.render).with_suffix(".md").write_text(
            markdown(json.loads(Path(args.render).read_text()))
        )
        return
    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",")]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    report: dict[str, Any] = {
        "stamp": stamp,
        "commit": commit,
        "args": " ".join(sys.argv[1:]),
        "sizes": [],
    }
    with psycopg.connect(args.server_url, autocommit=True) as admin:
        (report["server_version"],) = admin.execute("SHOW server_version").fetchone()  # type: ignore[misc]
    for i, (walkers, days) in enumerate(sizes):
        name = f"stepcoin_capacity_{os.getpid()}_{i}"
        url = with_database(args.server_url, name)
        with psycopg.connect(args.server_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            migrate.upgrade(url)
            last = i == len(sizes) - 1
            queue = min(walkers, args.ops + 10) if last else 0
            log(f"generating {walkers} walkers x {days} days (queue {queue})")
            generate(url, walkers, days, queue, 0, args.seed)
            with psycopg.connect(url, autocommit=True) as conn:
                size = measure_sizes(conn, walkers, days)
                size["queued_flagged_days"] = queue
            report["sizes"].append(size)
            for t in ("step_records", "step_validations", "step_days", "coin_transactions"):
                log(f"{walkers}x{days} {t}: {size['tables'][t]['per_walker_day']} B/walker-day")
            if last and args.ops:
                if args.wal_compression:
                    # this database's sessions only (a superuser setting, no server change)
                    with psycopg.connect(args.server_url, autocommit=True) as admin:
                        admin.execute(
                            f'ALTER DATABASE "{name}" SET wal_compression = '
                            f"'{args.wal_compression}'"
                        )
                    report["wal_compression"] = args.wal_compression
                report["operations"] = drive(
                    url, args.ops, args.seed, not args.no_checkpoint, not args.no_worker
                )
                with psycopg.connect(url, autocommit=True) as conn:
                    report["sizes_after_operations"] = measure_sizes(conn, walkers, days)
        finally:
            if not args.keep:
                with psycopg.connect(args.server_url, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"capacity-{stamp}.json").write_text(json.dumps(report, indent=2, default=str))
    (out / f"capacity-{stamp}.md").write_text(markdown(report))
    print(markdown(report))
    log(f"wrote {out}/capacity-{stamp}.json and .md")


if __name__ == "__main__":
    main()

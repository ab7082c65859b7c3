"""A/B of stepcoin_apply_sync v3 against the migrated one (v4), serial, on a generated database
(issue 13). Not part of bench/run.sh: run it on a bench database that bench/generate.py filled.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/<db> python bench/apply_sync_ab.py

It installs v3 from its SQL file as stepcoin_apply_sync_v3 (dropped at the end) and
pg_walinspect, then alternates blocks (v3, v4, v3, v4, ...) of 7-day syncs that change and pay
every day each time (7 records, 7 approved decisions, 7 days, 7 ledger rows), each user on one
side only. Per side: client-side time per call (one autocommit statement: includes the commit),
server time inside the function (pg_stat_user_functions, track_functions=pl; wall time), the
backend's CPU time (/proc/<pid>/stat: PostgreSQL must run on this machine), WAL records and
bytes written by the calls' own transactions (pg_walinspect by xid: other sessions' WAL on a
shared server is left out), and the statements one call executes (auto_explain's nested
statements sent to this client as notices; foreign-key checks counted apart).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from datetime import date, timedelta
from typing import Any

import orjson
import psycopg

from stepcoin.db import libpq_url
from stepcoin.sqlfiles import load

V3 = "stepcoin_apply_sync_v3"
V4 = "stepcoin_apply_sync"


def payload(today: date, k: int) -> str:
    days = [today - timedelta(days=i) for i in range(6, -1, -1)]
    records, validations, settled = [], [], []
    for i, day in enumerate(days):
        steps = 20_000 + 150 * k + 10 * i
        records.append(
            {
                "day": day,
                "source": "healthkit",
                "steps": steps,
                "approved_steps": steps,
                "device_ids": ["bench-phone"],
                "client_record_id": f"r{day}",
                "client_record_version": k,
                "manual": False,
                "deleted": False,
                "intervals": None,
                "status": "approved",
                "reasons": [],
            }
        )
        validations.append(
            {
                "day": day,
                "source": "healthkit",
                "steps": steps,
                "status": "approved",
                "rule_hits": [],
                "risk_score": 0,
                "stored": True,
            }
        )
        settled.append(
            {
                "day": day,
                "credited_source": "healthkit",
                "credited_steps": steps,
                "coins_paid": steps // 100,
                "coins_pending": 0,
            }
        )
    return orjson.dumps({"records": records, "validations": validations, "days": settled}).decode()


def function_time(conn: psycopg.Connection[Any], name: str) -> tuple[int, float, float]:
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT coalesce(sum(calls), 0), coalesce(sum(total_time), 0), "
        "coalesce(sum(self_time), 0) FROM pg_stat_user_functions WHERE funcname = %s",
        (name,),
    ).fetchone()
    assert row is not None
    return int(row[0]), float(row[1]), float(row[2])


def count_statements(
    conn: psycopg.Connection[Any], fn: str, user: uuid.UUID, k: int, today: date
) -> tuple[int, int]:
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    conn.execute("LOAD 'auto_explain'")
    for setting, value in (
        ("log_min_duration", "0"),
        ("log_nested_statements", "on"),
        ("log_level", "notice"),
        ("log_format", "text"),
    ):
        conn.execute(f"SET auto_explain.{setting} = {value}")
    version = conn.execute("SELECT version FROM wallets WHERE user_id = %s", (user,)).fetchone()
    assert version is not None
    notices.clear()
    conn.execute(f"SELECT {fn}(%s, %s, %s::jsonb)", (user, version[0], payload(today, k)))
    conn.execute("SET auto_explain.log_min_duration = -1")
    conn._notice_handlers.clear()  # type: ignore[attr-defined]
    plans = [n for n in notices if "Query Text" in n]
    fk = [n for n in plans if "FOR KEY SHARE OF" in n]
    return len(plans) - len(fk) - 1, len(fk)  # the outer SELECT fn(...) is not counted


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a PostgreSQL backend on this machine (/proc): unlike
    wall time, not inflated by other sessions' load on a shared server."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


WAL_CHUNK = 20  # calls per WAL read: a busy shared server recycles WAL segments quickly


def run_chunk(
    conn: psycopg.Connection[Any],
    fn: str,
    users: list[uuid.UUID],
    versions: dict[uuid.UUID, int],
    body: str,
    times: list[float],
    cpu: list[float],
) -> list[int]:
    """Run the calls; return the WAL records, bytes and FPI bytes of their transactions."""
    start_lsn = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]  # type: ignore[index]
    xids = []
    pid = conn.info.backend_pid
    cpu0 = backend_cpu(pid)
    for user in users:
        t0 = time.perf_counter()
        xid, answer = conn.execute(
            f"SELECT txid_current(), {fn}(%s, %s, %s::jsonb)", (user, versions[user], body)
        ).fetchone()  # type: ignore[misc]
        times.append(time.perf_counter() - t0)
        assert not answer.get("conflict"), answer
        assert sum(d["coins_delta"] for d in answer["days"]) > 0, answer
        versions[user] = answer["version"]
        xids.append(xid % 2**32)
    cpu.append(backend_cpu(pid) - cpu0)
    end_lsn = conn.execute("SELECT pg_current_wal_flush_lsn()").fetchone()[0]  # type: ignore[index]
    row = conn.execute(
        "SELECT count(*), coalesce(sum(record_length), 0), coalesce(sum(fpi_length), 0) "
        "FROM pg_get_wal_records_info(%s, %s) WHERE xid::text::bigint = ANY(%s)",
        (start_lsn, end_lsn, xids),
    ).fetchone()
    assert row is not None
    return [int(row[0]), int(row[1]), int(row[2])]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--calls", type=int, default=200, help="calls per side per round")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    url = libpq_url(args.database_url)
    conn = psycopg.connect(url, autocommit=True)
    stats = psycopg.connect(url, autocommit=True)
    conn.execute(
        load("stepcoin.steps", "apply_sync.v3.sql").replace(
            "FUNCTION stepcoin_apply_sync(", f"FUNCTION {V3}("
        )
    )
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    users = [
        r[0]
        for r in conn.execute(
            "SELECT w.user_id FROM wallets w JOIN users u ON u.id = w.user_id "
            "WHERE u.is_active AND EXISTS (SELECT 1 FROM step_days d WHERE d.user_id = w.user_id) "
            "ORDER BY w.user_id"
        )
    ]
    random.Random(args.seed).shuffle(users)
    need = args.calls
    side_users = {V3: users[:need], V4: users[need : 2 * need]}
    assert len(side_users[V4]) == need, "not enough users"
    today = date.today()
    versions = {u: v for u, v in conn.execute("SELECT user_id, version FROM wallets")}
    top = conn.execute("SELECT coalesce(max(credited_steps), 0) FROM step_days").fetchone()
    assert top is not None
    k_base = max(0, (int(top[0]) - 20_000) // 150 + 1)  # every call pays more than the last
    times: dict[str, list[float]] = {V3: [], V4: []}
    wal: dict[str, list[tuple[int, int, int]]] = {V3: [], V4: []}
    server: dict[str, list[float]] = {V3: [], V4: []}
    cpu: dict[str, list[float]] = {V3: [], V4: []}
    for rnd in range(args.rounds):
        for fn in (V3, V4):
            before = function_time(stats, fn)
            walsum = [0, 0, 0]
            for chunk in range(0, need, WAL_CHUNK):
                walsum = [
                    a + b
                    for a, b in zip(
                        walsum,
                        run_chunk(
                            conn,
                            fn,
                            side_users[fn][chunk : chunk + WAL_CHUNK],
                            versions,
                            payload(today, k_base + rnd),
                            times[fn],
                            cpu[fn],
                        ),
                        strict=True,
                    )
                ]
            row = tuple(walsum)
            wal[fn].append((walsum[0], walsum[1], walsum[2]))
            conn.execute("SELECT pg_stat_force_next_flush()")
            conn.execute("SELECT 1")  # the calls' function stats are flushed at its end
            after = function_time(stats, fn)
            if after[0] > before[0]:
                server[fn].append((after[1] - before[1]) / (after[0] - before[0]))
            block_cpu = sum(cpu[fn][-(need // WAL_CHUNK) :]) / need * 1000
            print(
                f"round {rnd} {fn}: backend CPU {block_cpu:.3f} ms/call, "
                f"median {statistics.median(times[fn][-need:]) * 1000:.3f} ms, "
                f"server {server[fn][-1] if server[fn] else float('nan'):.3f} ms/call, "
                f"WAL {row[0] / need:.1f} records {(row[1]) / need:.0f} B/call "
                f"(FPI {row[2] / need:.0f} B)",
                flush=True,
            )
    k = k_base + args.rounds
    statements = {fn: count_statements(conn, fn, side_users[fn][0], k, today) for fn in (V3, V4)}
    print("\n| per call | v3 | v4 |\n|---|---|---|")

    def q(values: list[float], p: float) -> float:
        return statistics.quantiles(values, n=100)[int(p) - 1] * 1000

    print(
        f"| client time median (ms) | {statistics.median(times[V3]) * 1000:.3f} | "
        f"{statistics.median(times[V4]) * 1000:.3f} |"
    )
    print(f"| client time p90 (ms) | {q(times[V3], 90):.3f} | {q(times[V4], 90):.3f} |")
    print(
        f"| backend CPU per call, whole statement incl. commit (ms) | "
        f"{sum(cpu[V3]) / len(times[V3]) * 1000:.3f} | {sum(cpu[V4]) / len(times[V4]) * 1000:.3f} |"
    )
    print(
        f"| server time in the function, mean of blocks (ms) | "
        f"{statistics.mean(server[V3]):.3f} | {statistics.mean(server[V4]):.3f} |"
    )
    for label, idx in (("WAL records", 0), ("WAL bytes (with FPI)", 1), ("of which FPI bytes", 2)):
        print(
            f"| {label} | {sum(w[idx] for w in wal[V3]) / len(times[V3]):.1f} | "
            f"{sum(w[idx] for w in wal[V4]) / len(times[V4]):.1f} |"
        )
    print(
        f"| WAL bytes without FPI | "
        f"{sum(w[1] - w[2] for w in wal[V3]) / len(times[V3]):.1f} | "
        f"{sum(w[1] - w[2] for w in wal[V4]) / len(times[V4]):.1f} |"
    )
    print(
        f"| statements executed (auto_explain, nested) | {statements[V3][0]} | "
        f"{statements[V4][0]} |"
    )
    print(f"| foreign-key checks | {statements[V3][1]} | {statements[V4][1]} |")
    conn.execute(f"DROP FUNCTION {V3}(uuid, bigint, jsonb)")


if __name__ == "__main__":
    main()

"""The exact database cost of one step sync's database work, serial, immune to other load.

    python bench/sync_cost.py --database-url URL --script results/X/ceiling_sync.sql \
        [--users 10000] [--seed 42] [--calls 40] [--out sync_cost.json]

Runs the `sync` form of bench/sql_ceiling.sh (snapshot read + stepcoin_apply_sync with a 7-day
paying payload, for a random walker) --calls times, one at a time, each in its own transaction
as `EXPLAIN (ANALYZE, WAL, BUFFERS, FORMAT JSON)` (which executes it for real), and reads:

- the WAL this statement wrote (records, full-page images, bytes: PostgreSQL's own per-statement
  WAL accounting, nested function statements included — not the server-wide LSN, so other
  databases' writes do not count; the commit record, ~50-100 bytes, is not included);
- the rows it inserted / updated (HOT or not) / deleted per table, from
  pg_stat_xact_user_tables inside the same transaction (partitions folded into their table);
- its execution time and shared buffers hit / dirtied / written.

Prints and writes medians and means. Every call pays real coins through the wallet's door, so
wallet = ledger still holds afterwards.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg

XACT_SQL = """
SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del
FROM pg_stat_xact_user_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0
  AND schemaname = 'public'
"""


def statement(script: str, uid: int, seed: int) -> str:
    """The pgbench script's statement with its variables filled in."""
    body = "\n".join(line for line in script.splitlines() if not line.startswith("\\"))
    body = body.replace(":uid", str(uid)).replace(":seed", str(seed)).strip()
    return body.rstrip(";")


def table_of(relname: str) -> str:
    """step_records_p202612 -> step_records (monthly partitions folded into their table)."""
    return re.sub(r"_(p\d{6}|p?\d{4}_\d{2}|default)$", "", relname)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--script", required=True, help="the pgbench sync script")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--out")
    args = parser.parse_args()
    script = Path(args.script).read_text()
    rng = random.Random(args.seed)
    per_call: list[dict[str, float]] = []
    rows: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    url = args.database_url.replace("postgresql+asyncpg://", "postgresql://")
    with psycopg.connect(url) as conn:
        # each walker twice in a row: the first call usually is the first change of its pages
        # since the last checkpoint (full-page images), the second shows the WAL without them
        walkers = [rng.randint(1, args.users) for _ in range(args.calls // 2 + 1)]
        for i, uid in enumerate(w for w in walkers for _ in (0, 1)):
            sql = statement(script, uid, args.seed)
            with conn.transaction():
                # PostgreSQL 15 shows a backend's not yet flushed counts of earlier transactions
                # too: the call's rows are the difference within this one transaction
                before = conn.execute(XACT_SQL).fetchall()
                (plan,) = conn.execute(
                    "EXPLAIN (ANALYZE, WAL, BUFFERS, FORMAT JSON) " + sql  # type: ignore[arg-type]
                ).fetchone()  # type: ignore[misc]
                xact = conn.execute(XACT_SQL).fetchall()
            if i < 2:
                continue  # the first walker: plans and warms the caches
            top = plan[0]
            node = top["Plan"]
            per_call.append(
                {
                    "again": i % 2,
                    "ms": top["Execution Time"],
                    "wal_records": node.get("WAL Records", 0),
                    "wal_fpi": node.get("WAL FPI", 0),
                    "wal_bytes": node.get("WAL Bytes", 0),
                    "shared_hit": node.get("Shared Hit Blocks", 0),
                    "shared_dirtied": node.get("Shared Dirtied Blocks", 0),
                    "shared_written": node.get("Shared Written Blocks", 0),
                }
            )
            seen: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            for relname, ins, upd, hot, dele in before:
                t = seen[table_of(relname)]
                t["inserted"] -= ins
                t["updated"] -= upd
                t["hot_updated"] -= hot
                t["deleted"] -= dele
            for relname, ins, upd, hot, dele in xact:
                t = seen[table_of(relname)]
                t["inserted"] += ins
                t["updated"] += upd
                t["hot_updated"] += hot
                t["deleted"] += dele
            for table, counts in seen.items():
                for k, v in counts.items():
                    rows[table][k].append(v)
    n = len(per_call)
    keys = [k for k in per_call[0] if k != "again"] if per_call else []
    first = [c for c in per_call if not c["again"]]
    again = [c for c in per_call if c["again"]]
    result: dict[str, Any] = {
        "calls": n,
        "median": {k: statistics.median(c[k] for c in per_call) for k in keys},
        "median_first_call": {k: statistics.median(c[k] for c in first) for k in keys}
        if first
        else {},
        "median_same_walker_again": {k: statistics.median(c[k] for c in again) for k in keys}
        if again
        else {},
        "mean": {k: round(statistics.fmean(c[k] for c in per_call), 2) for k in keys},
        "rows_per_call": {
            table: {k: round(sum(v) / n, 2) for k, v in counts.items()}
            for table, counts in sorted(rows.items())
        },
        "note": "EXPLAIN (ANALYZE, WAL) of the sync form, serial; WAL excludes the commit record",
    }
    med = result["median"]
    written = sum(
        t["inserted"] + t["updated"] + t["deleted"] for t in result["rows_per_call"].values()
    )
    print(
        f"sync_cost: {n} calls, median {med.get('ms', 0):.2f} ms, {med.get('wal_bytes', 0):,.0f} "
        f"WAL bytes, {med.get('wal_records', 0):.0f} WAL records, {med.get('wal_fpi', 0):.0f} FPI; "
        f"{written:.1f} rows written per call; the same walker again: "
        f"{result['median_same_walker_again'].get('wal_bytes', 0):,.0f} WAL bytes, "
        f"{result['median_same_walker_again'].get('wal_fpi', 0):.0f} FPI",
        file=sys.stderr,
    )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()

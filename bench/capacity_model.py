"""The capacity model: bench/capacity.py's measurements x stated assumptions -> what 1M and 10M
walkers need per day, per year and at the peak second (docs/scale-out.md).

    python bench/capacity_model.py bench/results/capacity-<stamp>.json [--walkers 1e6,1e7]
        [--active-share 0.6] [--syncs 4] [--orders 0.005] [--approvals 0.01] [--peak 3]
        [--reads 20] [--out FILE.md]

Every figure is a measured quantity from the JSON (bytes per row, rows per operation, WAL per
operation, commits per operation, pages first dirtied per operation) multiplied by an
assumption given on the command line (printed with the result). CPU-derived figures (API
processes, PostgreSQL cores) use BENCHMARKS.md run 5's measured CPU per request, which depends
on the machine: they are passed in as `--api-us-*` / `--pg-us-*` and labelled as such.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

# rows that do not stay: drained by the worker (dirty marks), pruned (finished jobs), upserted in
# place (rate-limit buckets, UNLOGGED), once per walker and device (device_accounts)
TRANSIENT = {
    "leaderboard_dirty",
    "achievements_dirty",
    "rate_limit_buckets",
    "procrastinate_jobs",
    "procrastinate_events",
    "device_accounts",
}
GiB = 2**30
TiB = 2**40


def per_row_bytes(report: dict[str, Any], table: str) -> tuple[float, str]:
    """Total bytes (heap + TOAST + indexes) per row, from the largest generated data set that
    has 10,000 rows of the table, else from the largest measurement with rows (the tables only
    the operations fill: a few hundred rows, whole 8 kB pages, an overestimate)."""
    named = [(f"{s['walkers']}x{s['days']}", s) for s in reversed(report["sizes"])]
    named.append(("after the operations", report.get("sizes_after_operations") or {"tables": {}}))
    best: tuple[int, float, str] = (0, 0.0, "")
    for where, size in named:
        t = size["tables"].get(table)
        if t and t["rows"] >= 10_000:
            return t["total"] / t["rows"], f"{where}, {t['rows']:,} rows"
        if t and t["rows"] > best[0]:
            best = (t["rows"], t["total"] / t["rows"], f"{where}, {t['rows']:,} rows")
    return best[1], best[2]


def human(n: float) -> str:
    for unit, div in (("TiB", TiB), ("GiB", GiB), ("MiB", 2**20), ("KiB", 1024)):
        if abs(n) >= div:
            return f"{n / div:,.1f} {unit}"
    return f"{n:,.0f} B"


def model(report: dict[str, Any], a: argparse.Namespace) -> str:
    ops = report["operations"]
    lines = ["# The capacity model", "", f"Measurements: `capacity-{report['stamp']}.json`.", ""]
    lines += [
        "Assumptions (each a command-line option of bench/capacity_model.py):",
        "",
        f"- active share: {a.active_share:.0%} of the walkers sync on a given day",
        f"- syncs per active walker per day: {a.syncs:g} (the first of the day = `sync_first`, "
        f"the others each change today = `sync_again`; every one pays a ledger row: an upper "
        "bound, a walker at the daily cap is paid nothing more)",
        f"- orders: {a.orders:g} per walker per day; review approvals: {a.approvals:g} per "
        "active walker-day (flagged and approved)",
        f"- reads: {a.reads:g} API reads per active walker per day (profile, wallet, boards...)",
        f"- peak factor: {a.peak:g} (the peak hour's rate / the day's average rate)",
        "- WAL: the lower bound has no full-page images (each page already changed since the "
        "last checkpoint), the upper bound writes one for every page a call changes "
        "(for a later sync the phase with the most of them, plain or right after a CHECKPOINT; "
        "the other operations as measured)",
        "",
    ]
    # bytes that stay, per operation (rows gained x bytes per row)
    kept: dict[str, float] = {}
    sources: dict[str, str] = {}
    for name, p in ops.items():
        if not isinstance(p, dict) or "rows_gained_per_call" not in p:
            continue
        total = 0.0
        for table, rows in p["rows_gained_per_call"].items():
            if table in TRANSIENT:
                continue
            b, src = per_row_bytes(report, table)
            sources[table] = f"{b:,.0f} B/row ({src})"
            total += rows * b
        kept[name] = total
    lines += ["Bytes per row, heap + TOAST + indexes, measured:", ""]
    lines += [f"- {t}: {s}" for t, s in sorted(sources.items())]
    base = 0.0
    for table in ("users", "wallets"):
        b, src = per_row_bytes(report, table)
        base += b
        lines.append(f"- {table} (per walker): {b:,.0f} B/row ({src})")
    first, again = ops["sync_first"], ops["sync_again"]
    # the upper bound of a later sync: the phase (plain or right after a checkpoint) that wrote
    # the most full-page images (how many depends on when the server's checkpoints fell)
    upper_again = max(
        (p for k, p in ops.items() if k in ("sync_again", "sync_again_after_checkpoint")),
        key=lambda p: p["wal_per_call"]["bytes_aligned"],
    )
    order, approve = ops.get("order"), ops.get("approve")
    per_active_day = (
        kept["sync_first"]
        + (a.syncs - 1) * kept["sync_again"]
        + (kept.get("approve", 0.0) * a.approvals)
    )
    per_walker_day_orders = kept.get("order", 0.0) * a.orders
    lines += [
        "",
        f"Stored per active walker-day: {per_active_day:,.0f} B (first sync "
        f"{kept['sync_first']:,.0f} + {a.syncs - 1:g} x later sync {kept['sync_again']:,.0f} "
        f"+ approvals); orders add {per_walker_day_orders:,.1f} B per walker-day "
        f"({kept.get('order', 0):,.0f} B per order); every walker {base:,.0f} B once.",
        "",
    ]

    def wal(p: dict[str, Any] | None, upper: bool) -> float:
        if p is None:
            return 0.0
        if upper:
            return float(p["wal_per_call"]["bytes_aligned"])
        return float(p["wal_per_call_without_fpi"])

    # the job worker's share (the boards' refresh, achievements), when measured: it works per
    # walker marked since its last run; capacity.py's phases sync each walker twice between two
    # runs, so per walker = per sync x 2. A walker's syncs hours apart are refreshed once each:
    # the model counts one refresh per sync (an upper bound)
    worker = ops.get("worker_after_syncs")
    worker_wal = (0.0, 0.0)
    if worker and worker.get("drained"):
        net = worker.get("net_of_idle")
        if net:  # the worker's start-up and schedule in the same window subtracted
            worker_wal = (
                float(net["wal_per_walker_without_fpi"]),
                float(net["wal_per_walker"]["bytes_aligned"]),
            )
        else:
            per_walker = worker["syncs"] / worker.get("walkers", worker["syncs"] // 2)
            worker_wal = (
                float(worker["wal_per_sync_without_fpi"]) * per_walker,
                float(worker["wal_per_sync"]["bytes_aligned"]) * per_walker,
            )
        lines += [
            f"The job worker adds {worker_wal[0]:,.0f} - {worker_wal[1]:,.0f} WAL bytes per sync "
            "(the boards' refresh and the achievements batch of the walker a sync marked, once "
            "per sync: measured per walker refreshed), included below.",
            "",
        ]

    lines += [
        "| walkers | stored per day | per year | WAL per day (no FPI - all FPI) | per year "
        "| syncs/s peak | WAL MB/s peak | commits/s peak | pages first dirtied/s peak (max) "
        "| API cores peak | PostgreSQL cores peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in a.walkers:
        active = n * a.active_share
        syncs_first = active
        syncs_again = active * (a.syncs - 1)
        orders = n * a.orders
        approvals = active * a.approvals
        stored_day = active * per_active_day + n * per_walker_day_orders
        wal_day = [
            syncs_first * wal(first, upper)
            + syncs_again * wal(upper_again if upper else again, upper)
            + orders * wal(order, upper)
            + approvals * wal(approve, upper)
            + (syncs_first + syncs_again) * worker_wal[int(upper)]
            for upper in (False, True)
        ]
        f = a.peak / 86400
        syncs_s = (syncs_first + syncs_again) * f
        wal_s = wal_day[1] * f / 2**20
        commits_s = (
            syncs_first * first["wal_per_call"]["xact_records"]
            + syncs_again * again["wal_per_call"]["xact_records"]
            + orders * (order["wal_per_call"]["xact_records"] if order else 0)
            + approvals * (approve["wal_per_call"]["xact_records"] if approve else 0)
        ) * f
        pages_s = (
            syncs_first
            * max(
                first["wal_per_call"]["records_with_fpi"],
                upper_again["wal_per_call"]["records_with_fpi"],
            )
            + syncs_again * upper_again["wal_per_call"]["records_with_fpi"]
            + orders * (order["wal_per_call"]["records_with_fpi"] if order else 0)
        ) * f
        api_us = (
            (syncs_first + syncs_again) * a.api_us_sync
            + orders * a.api_us_order
            + active * a.reads * a.api_us_read
        ) * f
        pg_us = (
            (syncs_first + syncs_again) * a.pg_us_sync
            + orders * a.pg_us_order
            + active * a.reads * a.pg_us_read
        ) * f
        lines.append(
            f"| {n:,.0f} | {human(stored_day)} | {human(stored_day * 365 + n * base)} | "
            f"{human(wal_day[0])} - {human(wal_day[1])} | "
            f"{human(wal_day[0] * 365)} - {human(wal_day[1] * 365)} | {syncs_s:,.0f} | "
            f"{wal_s:,.1f} | {commits_s:,.0f} | {pages_s:,.0f} | "
            f"{api_us / 1e6:.1f} | {pg_us / 1e6:.1f} |"
        )
    lines += [
        "",
        f"CPU per request (BENCHMARKS.md run 5, `bench/results/20261204T173901Z/`, a shared "
        f"2-core machine; timing-dependent): API {a.api_us_sync:g} µs per sync, "
        f"{a.api_us_order:g} per order, {a.api_us_read:g} per read; PostgreSQL "
        f"{a.pg_us_sync:g} µs per sync, {a.pg_us_order:g} per order, {a.pg_us_read:g} per read. "
        "Cores are busy cores at the peak, no headroom added.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("json", help="a capacity-<stamp>.json of bench/capacity.py")
    parser.add_argument("--walkers", default="1000000,10000000")
    parser.add_argument("--active-share", type=float, default=0.6)
    parser.add_argument("--syncs", type=float, default=4)
    parser.add_argument("--orders", type=float, default=0.005)
    parser.add_argument("--approvals", type=float, default=0.01)
    parser.add_argument("--reads", type=float, default=20)
    parser.add_argument("--peak", type=float, default=3)
    # BENCHMARKS.md run 5 (bench/results/20261204T173901Z/summary.md): the 7-day sync at half
    # load (API 1,281 / PostgreSQL 2,653 µs), orders at c=16 (API 680 / PostgreSQL 3,225 µs);
    # reads: run 9's profile/achievements figures (~250 API + ~160 PostgreSQL µs)
    parser.add_argument("--api-us-sync", type=float, default=1281)
    parser.add_argument("--pg-us-sync", type=float, default=2653)
    parser.add_argument("--api-us-order", type=float, default=680)
    parser.add_argument("--pg-us-order", type=float, default=3225)
    parser.add_argument("--api-us-read", type=float, default=250)
    parser.add_argument("--pg-us-read", type=float, default=160)
    parser.add_argument("--out")
    args = parser.parse_args()
    args.walkers = [float(x) for x in args.walkers.split(",")]
    report = json.loads(Path(args.json).read_text())
    text = model(report, args)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()

"""Summarise one bench/run.sh results folder as Markdown: python bench/report.py RESULTS_DIR.

Three tables: issue 13's goals (achieved / same-run ceiling / goal / met), "where a sync's time
goes" (CPU of the API, PostgreSQL, the worker and the driver, WAL, commits, rows and statements
per sync), and every scenario's raw figures. Missing files make missing rows, never an error.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Result = dict[str, Any]


def load(folder: Path, name: str) -> Result | None:
    path = folder / f"{name}.json"
    if not path.exists():
        return None
    try:
        data: Result = json.loads(path.read_text())
    except ValueError:
        return None
    return data


def num(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def p99(r: Result | None) -> float | None:
    return r["latency_ms"]["p99"] if r else None


def rate(r: Result | None) -> float | None:
    return r["ok_rate"] if r else None


def clean(r: Result | None) -> bool:
    """A run counts only when it answered without errors."""
    return bool(r) and r["errors"] == 0 and r["count"] > 0  # type: ignore[index]


def met(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "**no**")


def ceiling_of(ceiling: Result, form: str) -> float | None:
    c = ceiling.get(form)
    return c.get("tps") if isinstance(c, dict) else None


def goals_table(folder: Path, ceiling: Result) -> list[str]:
    out = [
        "## Goals (issue 13)\n",
        "| path | achieved | same-run ceiling | goal | met |",
        "|---|---|---|---|---|",
    ]
    sync = load(folder, "max_sync")
    sync_ceiling = ceiling_of(ceiling, "sync")
    read_ceiling = ceiling_of(ceiling, "read")
    if sync:
        share = sync["ok_rate"] / sync_ceiling if sync_ceiling else None
        ok = clean(sync) and sync["ok_rate"] >= 1700 and p99(sync) < 15  # type: ignore[operator]
        if share is not None:
            ok = ok and share >= 0.45
        out.append(
            f"| step sync (7 days, judged, paid), c={sync['concurrency']} | "
            f"{num(sync['ok_rate'])} req/s, p99 {num(p99(sync), 1)} ms"
            f"{', errors ' + str(sync['errors']) if sync['errors'] else ''} | "
            f"{num(sync_ceiling)} calls/s (stepcoin_apply_sync under pgbench)"
            f"{f'; API = {share:.0%} of it' if share is not None else ''} | "
            f">= 1,700 req/s, p99 < 15 ms, >= 45% of the ceiling | {met(ok)} |"
        )
    rows: list[tuple[str, str, float]] = [
        ("max_profile", "profile `GET /v1/me`", 6000),
        ("max_wallet", "wallet `GET /v1/wallet`", 4000),
        ("max_ledger", "ledger page `GET /v1/wallet/transactions`", 4000),
        ("max_achievements", "achievements `GET /v1/achievements`", 4000),
        ("max_leaderboard", "leaderboard `GET /v1/leaderboards/{period}`", 4000),
    ]
    for name, label, goal in rows:
        r = load(folder, name)
        if not r:
            continue
        extra = ""
        label = label.replace("{period}", r.get("leaderboard_period") or "weekly")
        if name == "max_leaderboard" and r.get("leaderboard_entries_before") == 0:
            extra = " (the board was still empty)"
        out.append(
            f"| {label}, c={r['concurrency']} | {num(r['ok_rate'])} req/s, p99 "
            f"{num(p99(r), 1)} ms{extra} | {num(read_ceiling)} reads/s (the profile's query) | "
            f">= {goal:,.0f} req/s | {met(clean(r) and r['ok_rate'] >= goal)} |"
        )
    order = load(folder, "max_order")
    if order:
        errors = f", {order['errors']} errors {order['statuses']}" if order["errors"] else ""
        order_ceiling = ceiling_of(ceiling, "order")
        if order_ceiling:
            share = order["ok_rate"] / order_ceiling
            limit = (
                f"{num(order_ceiling)} orders/s (stepcoin_place_order under pgbench); "
                f"API = {share:.0%} of it"
            )
        else:
            limit = f"{num(ceiling_of(ceiling, 'cte'))} coin transactions/s (one statement)"
        out.append(
            f"| order creation (2 lines, stock, debit, outbox), c={order['concurrency']} | "
            f"{num(order['ok_rate'])} orders/s, p99 {num(p99(order), 1)} ms{errors} | "
            f"{limit} | >= 1,000 orders/s | {met(clean(order) and order['ok_rate'] >= 1000)} |"
        )
    bulk = load(folder, "bulk")
    if bulk:
        rec = bulk.get("records_per_s") or 0
        out.append(
            f"| bulk ingest (500-record batches), c={bulk['concurrency']} | {num(rec)} records/s "
            f"({num(bulk['ok_rate'], 1)} batches/s) | - | >= 50,000 records/s | "
            f"{met(clean(bulk) and rec >= 50000)} |"
        )
    half: list[tuple[str, str, float | None]] = [
        ("half_sync", "sync", 10),
        ("half_approve", "coin transaction (a review approval)", 10),
        ("half_leaderboard", "leaderboard", 5),
        ("half_profile", "profile", 5),
        ("half_order", "order", 20),
        ("half_wallet", "wallet read (no goal of its own)", None),
    ]
    for name, label, goal in half:
        r = load(folder, name)
        if not r:
            continue
        lag = (r.get("scheduler_lag_ms") or {}).get("p99")
        host = r.get("host_cpu_share") or {}
        # how busy the two cores were: at half of the closed-loop maximum a request served
        # alone costs more CPU than among 16, so the machine is more than half busy
        busy = f"; machine {1 - host['idle']:.0%} busy" if "idle" in host else ""
        goal_text = f"p99 < {goal:g} ms" if goal is not None else "-"
        ok = None if goal is None else clean(r) and p99(r) < goal  # type: ignore[operator]
        again = load(folder, name.replace("half_", "recheck_"))
        first = load(folder, name.replace("half_", "max_"))
        of = (
            f" (half of the lower of {num(first['ok_rate'])} and {num(again['ok_rate'])} measured "
            "again just before)"
            if again and first
            else ""
        )
        out.append(
            f"| at half load: {label}, open {num(r['target_rate'])}/s{of} | p99 "
            f"{num(p99(r), 2)} ms (p50 {num(r['latency_ms']['p50'], 2)}; achieved "
            f"{num(r['ok_rate'])}/s; driver lag p99 {num(lag, 2)} ms{busy}) | - | {goal_text} | "
            f"{met(ok)} |"
        )
    if not any((folder / f"{n}.json").exists() for n, _, _ in half):
        out.append("| at half of each load | not run (BENCH_SKIP_HALF) | - | p99 goals | - |")
    out.append(boards_row(folder))
    rss = max_rss(folder)
    out.append(
        f"| memory: one API process, resident under load | max {num(rss)} MB | - | < 250 MB | "
        f"{met(None if rss is None else rss < 250)} |"
    )
    return out


def boards_row(folder: Path) -> str:
    goal = "a sync in the boards within 60 s; 10k changed walkers < 2 s"
    parts = []
    lag = load(folder, "board_lag")
    lag_ok = None
    if lag:
        seen = [s["seen_after_s"] for s in lag["samples"]]
        lag_ok = lag.get("max_s") is not None and lag["max_s"] < 60
        if all(x is None for x in seen):
            when = f"not seen within {num(lag['timeout_s'])} s ({len(seen)} walkers)"
        else:
            when = "seen after " + ", ".join("-" if x is None else f"{x:g}" for x in seen) + " s"
        parts.append(
            f"a sync in the daily board: {when} (board_lag.json, at this run's size"
            + (
                f"; leaderboards.rebuild_interval_minutes = "
                f"{lag['rebuild_interval_minutes_setting']}"
                if lag.get("rebuild_interval_minutes_setting")
                else ""
            )
            + ")"
        )
    md = folder / "boards.md"
    size = "1M"
    if md.exists():
        text = md.read_text()
        # the rebuild after a share of the walkers re-synced (leaderboard_bench.py's table row)
        line = next(
            (ln for ln in text.splitlines() if "re-synced" in ln and ln.startswith("|")), ""
        )
        cells = [c.strip() for c in line.strip("|").split("|")] if line else []
        users = re.search(r"Data: ([\d,]+) walkers", text)
        size = users.group(1) if users else "?"
        parts.append(
            (f"{cells[0]}: {cells[1]}" if len(cells) > 1 else "see boards.md") + " (boards.md)"
        )
    else:
        parts.append("the refresh at scale: not run (BENCH_BOARDS_USERS)")
    verdict = met(lag_ok) + " (the 60 s part)" if lag else "-"
    return f"| boards at {size} walkers | {'; '.join(parts)} | - | {goal} | {verdict} |"


def max_rss(folder: Path) -> float | None:
    values = []
    for path in folder.glob("*.json"):
        if path.name in ("env.json", "ceiling.json"):
            continue
        with_rss = json.loads(path.read_text()).get("api_rss_max_mb") or {}
        values += list(with_rss.values())
    return max(values) if values else None


def breakdown_table(folder: Path, ceiling: Result) -> list[str]:
    runs = [(n, r) for n in ("max_sync", "half_sync") if (r := load(folder, n))]
    if not runs:
        return []
    out = [
        "## Where a sync's time goes\n",
        "Per sync (7 days, judged, paid), over each run's measured window. CPU is each group "
        "of processes' CPU time delta (psutil) divided by the syncs answered: the API (serve's "
        "processes), PostgreSQL (the backends connected to the benchmark database: the API's "
        "and the worker's), the server's shared background processes, the job worker "
        "(achievements after a sync), the load driver. Two cores give 2,000,000 µs of CPU a "
        "second. The LSN-based WAL figures count the whole server (other databases' writes in "
        "the window count too: use the exact serial figures below to compare code); rows and "
        "commits are this database's (pg_stat_database). `Lock:object` waits are the "
        "server-wide NOTIFY lock, taken at commit by every transaction that notifies "
        "(procrastinate's job defer) and held until the commit is flushed.\n",
        "| per sync | " + " | ".join(f"{n} ({how(r)})" for n, r in runs) + " |",
        "|---|" + "---|" * len(runs),
    ]

    def line(label: str, get: Callable[[Result], Any], digits: int = 0) -> None:
        values = []
        for _, r in runs:
            try:
                values.append(num(get(r), digits))
            except (KeyError, TypeError):
                values.append("-")
        out.append(f"| {label} | " + " | ".join(values) + " |")

    cpu = "cpu_us_per_request"
    db = "db_per_request"
    line("syncs answered per second", lambda r: r["ok_rate"])
    line("API CPU, µs", lambda r: r[cpu]["api"])
    line("PostgreSQL CPU, µs (this database's backends)", lambda r: r[cpu]["postgres"])
    line("worker CPU, µs", lambda r: r[cpu].get("worker"))
    line("driver CPU, µs", lambda r: r[cpu]["driver"])
    line(
        "PostgreSQL background CPU, µs (WAL writer, checkpointer...; shared)",
        lambda r: r[cpu]["postgres_shared"],
    )
    line(
        "all of it, µs (budget at 1,700/s: 1,176)",
        lambda r: sum(
            r[cpu].get(k) or 0 for k in ("api", "postgres", "worker", "driver", "postgres_shared")
        ),
    )
    line(
        "every postgres process of the server, µs (other databases' too)",
        lambda r: r[cpu]["postgres_server_all"],
    )
    line(
        "time inside stepcoin_apply_sync, ms (track_functions)",
        lambda r: r["apply_sync"]["mean_total_ms"],
        2,
    )
    line("WAL bytes (server-wide LSN delta)", lambda r: r[db]["wal_bytes"])
    line("WAL records (server-wide)", lambda r: r[db]["wal_records"], 1)
    line("WAL full-page images (server-wide)", lambda r: r[db]["wal_fpi"], 2)
    line("commits", lambda r: r[db]["commits"], 2)
    line("rows inserted", lambda r: r[db]["rows_inserted"], 1)
    line("rows updated", lambda r: r[db]["rows_updated"], 1)
    line("rows deleted", lambda r: r[db]["rows_deleted"], 1)
    has_statements = any(r.get(db, {}).get("statements") is not None for _, r in runs)
    if has_statements:
        line("statements (pg_stat_statements)", lambda r: r[db]["statements"], 1)
    out.append(
        "| p50 / p99 latency, ms | "
        + " | ".join(
            f"{num(r['latency_ms']['p50'], 2)} / {num(r['latency_ms']['p99'], 2)}" for _, r in runs
        )
        + " |"
    )
    out.append(
        "| PostgreSQL backends by wait (sampled) | " + " | ".join(waits(r) for _, r in runs) + " |"
    )
    notes = []
    if not has_statements:
        notes.append(
            "Statements per sync: not measured — pg_stat_statements is not in the server's "
            "shared_preload_libraries (run.sh creates the extension when it can; the server "
            "setting needs a restart, which a benchmark must not do)."
        )
    cost = load(folder, "sync_cost")
    if cost and cost.get("calls"):
        med, rows = cost["median"], cost["rows_per_call"]
        notes += [
            "",
            f"**The sync's database work alone, exact** (`bench/sync_cost.py`: {cost['calls']} "
            "serial calls of the `sync` ceiling form under EXPLAIN (ANALYZE, WAL): "
            "PostgreSQL's own per-statement WAL accounting, other databases' writes excluded; "
            "rows from pg_stat_xact_user_tables): median "
            f"{med['ms']:.2f} ms, **{num(med['wal_bytes'])} WAL bytes, "
            f"{num(med['wal_records'])} WAL records, {num(med['wal_fpi'])} full-page images** "
            f"(mean {num(cost['mean']['wal_bytes'])} bytes; full-page images depend on the time "
            "since the last checkpoint), commit record excluded. " + again_text(cost) + "\n",
            "| table | inserted | updated (HOT) | deleted |",
            "|---|---|---|---|",
        ]
        total = 0.0
        for table, c in rows.items():
            total += c["inserted"] + c["updated"] + c["deleted"]
            notes.append(
                f"| {table} | {c['inserted']:g} | {c['updated']:g} ({c['hot_updated']:g}) | "
                f"{c['deleted']:g} |"
            )
        notes += [f"| **rows written per sync** | | | **{total:g}** |", ""]
        paid = rows.get("coin_transactions", {}).get("inserted", 0)
        if paid < 7:
            notes.append(
                f"**Check the form**: it wrote {paid:g} ledger rows per call, not 7 — the "
                "function's payload contract may have changed (bench/sql_ceiling.sh builds it)."
            )
    serial = ceiling.get("sync_serial")
    if isinstance(serial, dict) and "tps" in serial:
        notes.append(
            f"The sync's database work alone, one client (pgbench, {serial['seconds']} s, "
            f"stepcoin_apply_sync with a 7-day paying payload and its snapshot read): "
            f"{serial['latency_avg_ms']} ms per call, commit included "
            f"(~{num(serial['wal_bytes_per_tx'])} WAL bytes per call server-wide, other "
            "databases' writes included); at "
            f"c={ceiling.get('clients')}: "
            f"{num(ceiling_of(ceiling, 'sync'))} calls/s."
        )
    jobs = [r.get("jobs_waiting_after") for _, r in runs]
    if any(j for j in jobs if j):
        notes.append(
            "Jobs waiting in the queue after each run: "
            + ", ".join(f"{n} {r.get('jobs_waiting_after')}" for n, r in runs)
            + " (the worker fell behind)."
        )
    return [*out, "", *notes]


def again_text(cost: Result) -> str:
    first, again = cost.get("median_first_call"), cost.get("median_same_walker_again")
    if not first or not again:
        return ""
    return (
        f"First call for a walker: {num(first['wal_bytes'])} bytes, {num(first['wal_fpi'])} "
        f"full-page images; the same walker right again (its pages already changed since the "
        f"checkpoint): {num(again['wal_bytes'])} bytes, {num(again['wal_records'])} records, "
        f"{num(again['wal_fpi'])} full-page images, {again['ms']:.2f} ms."
    )


def how(r: Result) -> str:
    if r["mode"] == "open":
        return f"open {r['target_rate']:.0f}/s"
    return f"c={r['concurrency']}"


def waits(r: Result) -> str:
    w = r.get("pg_active_backends_by_wait") or {}
    share = w.get("share") or {}
    top = ", ".join(f"{k} {v:.0%}" for k, v in list(share.items())[:3])
    return f"{w.get('mean_active', '-')} active: {top}" if top else "-"


ORDER = [
    "max_profile",
    "max_wallet",
    "max_ledger",
    "max_achievements",
    "max_leaderboard",
    "max_sync",
    "max_order",
    "bulk",
    "recheck_profile",
    "half_profile",
    "recheck_wallet",
    "half_wallet",
    "half_ledger",
    "recheck_leaderboard",
    "half_leaderboard",
    "recheck_sync",
    "half_sync",
    "recheck_order",
    "half_order",
    "half_approve",
]


def _checkpoints(run: dict[str, Any]) -> str:
    """Checkpoints begun in a run's window and the fsync time of those that ended in it."""
    cp = run.get("checkpoints") or {}
    if cp.get("begun") is None:
        return "-"
    return f"{num(cp['begun'])} ({num(cp.get('sync_ms'))})"


def _host(run: Result) -> str:
    """The machine's idle and stolen CPU over the run's window (load.py's host_cpu_share: a
    share of all cores; stolen is the hypervisor's, not this machine's processes')."""
    host = run.get("host_cpu_share") or {}
    if "steal" not in host:
        return "-"
    return f"{host['idle']:.0%} / {host['steal']:.1%}"


def _serving(run: Result) -> str:
    """The CPU of each process that answered requests, busiest first (load.py's
    api_serving_cores): `0.97 / 0.00` is a run whose connections all landed on one process."""
    cores = run.get("api_serving_cores")
    if not cores:
        return "-"
    return " / ".join(f"{c:.2f}" for c in cores)


def scenarios_table(folder: Path) -> list[str]:
    out = [
        "## Every run\n",
        "| run | mode | n | errors | ok/s | p50 | p95 | p99 | max (ms) | CPU µs/req "
        "driver / API / PG / worker | WAL B/req | rows ins+upd/req | checkpoints (fsync ms) | "
        "autovacuum | machine idle / stolen | API processes (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = ORDER + sorted(
        p.stem
        for p in folder.glob("*.json")
        if p.stem not in ORDER and p.stem not in ("env", "ceiling")
    )
    for name in names:
        r = load(folder, name)
        if not r or "latency_ms" not in r:
            continue
        lat = r["latency_ms"]
        cpu = r["cpu_us_per_request"]
        ok_s = num(r["ok_rate"])
        if r.get("records_per_s"):
            ok_s += f" ({num(r['records_per_s'])} rec/s)"
        db = r.get("db_per_request") or {}
        rows = None
        if db:
            rows = (db.get("rows_inserted") or 0) + (db.get("rows_updated") or 0)
        ran = (r.get("autovacuum") or {}).get("ran_during") or {}
        errors = str(r["errors"])
        if r["errors"]:
            errors += " " + json.dumps(r["statuses"])
        out.append(
            f"| {name} | {how(r)} | {r['count']} | {errors} | {ok_s} | {num(lat['p50'], 2)} | "
            f"{num(lat['p95'], 2)} | {num(lat['p99'], 2)} | {num(lat['max'], 1)} | "
            f"{num(cpu['driver'])} / {num(cpu['api'])} / {num(cpu['postgres'])} / "
            f"{num(cpu.get('worker'))} | {num(db.get('wal_bytes'))} | {num(rows, 1)} | "
            f"{_checkpoints(r)} | {', '.join(ran) if ran else 'none'} | {_host(r)} | "
            f"{_serving(r)} |"
        )
    samples = []
    for name in names:
        r = load(folder, name)
        if r and r.get("error_samples"):
            samples.append(f"- {name}: {r['error_samples'][0][:200]}")
    if samples:
        out += ["", "First error of each run with errors:", *samples]
    return out


def ceiling_lines(ceiling: Result) -> list[str]:
    if not ceiling:
        return ["", "SQL ceilings: not run."]
    out = [
        "",
        f"## Same-run SQL ceilings (pgbench -M prepared, c={ceiling.get('clients')}, "
        f"{ceiling.get('seconds')} s each)\n",
        "| form | tx/s | latency avg (ms) | WAL bytes/tx (server-wide) | failed |",
        "|---|---|---|---|---|",
    ]
    labels = {
        "sync": "sync: snapshot read + stepcoin_apply_sync (7 days, paid)",
        "sync_serial": "the same, 1 client",
        "order": "order: stepcoin_place_order (2 lines, stock, debit, outbox)",
        "tx": "coin transaction, 4 round trips",
        "cte": "coin transaction, one statement",
        "read": "the profile's query",
    }
    for form, label in labels.items():
        c = ceiling.get(form)
        if not isinstance(c, dict):
            continue
        if "error" in c:
            out.append(f"| {label} | did not run: {c['error'][:120]} | | | |")
            continue
        out.append(
            f"| {label} | {num(c['tps'])} | {c['latency_avg_ms']} | "
            f"{num(c.get('wal_bytes_per_tx'))} | {c.get('failed', '-')} |"
        )
    return out


# The host's speed as two figures of the same code on every run, so that runs on other hosts
# (or another phase of a shared one) compare: what the load driver spends per profile read and
# the profile query's own same-run ceiling. Earlier hosts: run 27b (fast AMD EPYC) 24.2 µs and
# 31,365 reads/s; run 28 (slow Intel Xeon) 44.1 µs and 26,641 reads/s.
def host_speed(folder: Path, ceiling: Result) -> str | None:
    profile = load(folder, "max_profile")
    driver = (profile or {}).get("cpu_us_per_request", {}).get("driver")
    read = ceiling_of(ceiling, "read")
    if driver is None and read is None:
        return None
    return (
        f"How fast this host was: the load driver's CPU per profile read {num(driver, 1)} µs, "
        f"the profile query's own ceiling {num(read)} reads/s (run 27b, a fast host: 24.2 µs and "
        "31,365/s; run 28, a slow one: 44.1 µs and 26,641/s). Compare runs on other hosts in "
        "proportion to these.\n"
    )


def main() -> None:
    folder = Path(sys.argv[1])
    print(f"# Benchmark results {folder.name}\n")
    env = json.loads((folder / "env.json").read_text()) if (folder / "env.json").exists() else {}
    if env:
        pg = env["postgres"]
        load_avg = env.get("load_before") or []
        print(
            f"Machine: {env['nproc']} cores ({env['cpu']}), {env['memory_gb']} GB, Python "
            f"{env['python']}, PostgreSQL {pg['server_version']} (shared_buffers "
            f"{pg['shared_buffers']}, autovacuum {pg['autovacuum']}, fsync {pg['fsync']}, "
            f"synchronous_commit {pg['synchronous_commit']}); load average before the run "
            f"{', '.join(f'{x:.1f}' for x in load_avg)}. API, PostgreSQL, the job worker and "
            "the load driver share these cores.\n"
        )
    ceiling_path = folder / "ceiling.json"
    ceiling: Result = json.loads(ceiling_path.read_text()) if ceiling_path.exists() else {}
    speed = host_speed(folder, ceiling)
    if speed:
        print(speed)
    for block in (
        goals_table(folder, ceiling),
        [""],
        breakdown_table(folder, ceiling),
        ceiling_lines(ceiling),
        [""],
        scenarios_table(folder),
    ):
        for text in block:
            print(text)
    stalls = sorted(folder.glob("half_*.stalls.txt"))
    if stalls:
        print("\nWhat the slow requests at half load overlapped (bench/stalls.py):\n")
        for path in stalls:
            print(f"- {path.name.removesuffix('.stalls.txt')}:")
            print("\n".join(f"      {line}" for line in path.read_text().strip().splitlines()))
    check = folder / "check_ledger.txt"
    if check.exists() and check.read_text().strip():
        print(f"\nLedger check after the run: {check.read_text().strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()

"""Summarise one bench/run.sh results folder as Markdown: python bench/report.py RESULTS_DIR."""

from __future__ import annotations

import json
import sys
from pathlib import Path

# (file, what, goal text, check(result) -> bool | None)
GOALS = {
    "half_sync": ("p99 < 10 ms at ~1,100 req/s", lambda r: r["latency_ms"]["p99"] < 10),
    "half_profile": ("p99 < 5 ms at ~2,500 req/s", lambda r: r["latency_ms"]["p99"] < 5),
    "half_wallet": ("p99 < 5 ms (profile-class read)", lambda r: r["latency_ms"]["p99"] < 5),
    "half_ledger": ("p99 < 5 ms (profile-class read)", lambda r: r["latency_ms"]["p99"] < 5),
    "half_approve": ("coin transaction p99 < 10 ms", lambda r: r["latency_ms"]["p99"] < 10),
    "max_sync": (
        ">= 2,200 req/s with p99 < 15 ms",
        lambda r: r["ok_rate"] >= 2200 and r["latency_ms"]["p99"] < 15,
    ),
    "max_profile": (">= 5,000 req/s", lambda r: r["ok_rate"] >= 5000),
    "bulk": (">= 20,000 records/s", lambda r: (r["records_per_s"] or 0) >= 20000),
}


def main() -> None:
    folder = Path(sys.argv[1])
    rows = []
    rss: dict[str, float] = {}
    vacuum = []
    print(f"# Benchmark results {folder.name}\n")
    env = json.loads((folder / "env.json").read_text()) if (folder / "env.json").exists() else {}
    if env:
        pg = env["postgres"]
        print(
            f"Machine: {env['nproc']} cores ({env['cpu']}), {env['memory_gb']} GB, Python "
            f"{env['python']}, PostgreSQL {pg['server_version']} (shared_buffers "
            f"{pg['shared_buffers']}, autovacuum {pg['autovacuum']}, fsync {pg['fsync']}, "
            f"synchronous_commit {pg['synchronous_commit']}).\n"
        )
    print(
        "| scenario | mode | n | errors | rate (ok/s) | p50 | p95 | p99 | max (ms) | "
        "CPU µs/req driver / API / PG | goal | met |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in GOALS:
        path = folder / f"{name}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        goal, check = GOALS[name]
        lat = r["latency_ms"]
        mode = (
            f"open {r['target_rate']:.0f}/s"
            if r["mode"] == "open"
            else f"closed c={r['concurrency']}"
        )
        rate = f"{r['ok_rate']:.0f}"
        if r.get("records_per_s"):
            rate += f" ({r['records_per_s']:.0f} rec/s)"
        cpu = r["cpu_us_per_request"]
        met = "yes" if check(r) else "**no**"
        print(
            f"| {name} | {mode} | {r['count']} | {r['errors']} | {rate} | {lat['p50']:.2f} | "
            f"{lat['p95']:.2f} | {lat['p99']:.2f} | {lat['max']:.1f} | "
            f"{cpu['driver']:.0f} / {cpu['api']:.0f} / {cpu['postgres']:.0f} | {goal} | {met} |"
        )
        for pid, mb in r["api_rss_max_mb"].items():
            rss[pid] = max(rss.get(pid, 0.0), mb)
        ran = r["autovacuum"]["ran_during"]
        vacuum.append(f"{name}: {'ran on ' + ', '.join(ran) if ran else 'none'}")
        rows.append(r)
    ceiling_path = folder / "ceiling.json"
    if ceiling_path.exists():
        c = json.loads(ceiling_path.read_text())
        print(
            f"\nSQL ceiling (pgbench -M prepared -c {c['clients']}, {c['seconds']} s): "
            f"4-round-trip transaction {c['tx']['tps']:.0f} tx/s ({c['tx']['latency_avg_ms']} ms "
            f"avg); one-statement CTE {c['cte']['tps']:.0f} tx/s ({c['cte']['latency_avg_ms']} ms)."
        )
        max_sync = next(
            (r for r in rows if r["scenario"] == "sync" and r["mode"] == "closed"), None
        )
        if max_sync:
            print(
                f"API sync at c=16 / ceiling: {max_sync['ok_rate'] / c['tx']['tps']:.2f} of the "
                f"transaction form, {max_sync['ok_rate'] / c['cte']['tps']:.2f} of the CTE form."
            )
    print(
        f"\nAPI processes, max RSS (MB): {', '.join(f'{v:.0f}' for v in sorted(rss.values()))} "
        f"(goal < 250 per process)."
    )
    print("\nAutovacuum during scenarios: " + "; ".join(vacuum))
    check = folder / "check_ledger.txt"
    if check.exists() and check.read_text().strip():
        print(f"\nLedger check after the run: {check.read_text().strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()

"""Where the slow requests of an open-loop run came from (issue 13's half-load stalls).

Reads a --timeline CSV of bench/load.py (each measured request: unix time it was due, latency,
status) and lines each slow request up with what else was running while it waited:

- the job worker's jobs (procrastinate_events: started .. succeeded/failed) when --database-url
  is given;
- garbage collections of the API processes and the worker, from logs written with
  bench/gc_probe on PYTHONPATH (`GC pid=.. t=.. gen=.. ms=..` lines; --gc-log, repeatable);
- the machine's stolen CPU: the ~100 ms intervals of load.py's `<timeline>.host.csv` (read when
  it lies beside the timeline, or --host) in which the hypervisor ran someone else for at
  least --steal-min of the machine's CPU time, and those in which every core was busy (idle
  share at most --idle-max).

    python bench/stalls.py --timeline half_sync.csv --database-url $DB --gc-log server.log

Prints the latency percentiles, then the share of slow requests (>= --slow ms) that overlapped a
collection of >= --gc-min ms, a job (by task name), stolen CPU, a machine with no idle core,
several of them or neither.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import os
import re
from collections import Counter
from dataclasses import dataclass

GC_LINE = re.compile(r"GC pid=(\d+) t=([\d.]+) gen=(\d) ms=([\d.]+)(?: cpu_ms=([\d.]+))?")


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    what: str
    cpu_ms: float | None = None  # a collection's CPU time (the span is its wall time)


def read_timeline(path: str) -> list[tuple[float, float]]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [(float(r["due_unix"]), float(r["latency_ms"])) for r in rows]


def read_gc(paths: list[str], min_ms: float) -> list[Span]:
    spans = []
    for path in paths:
        with open(path, errors="replace") as f:
            for line in f:
                m = GC_LINE.search(line)
                if m and float(m[4]) >= min_ms:
                    t, ms = float(m[2]), float(m[4])
                    cpu = float(m[5]) if m[5] else None
                    spans.append(Span(t, t + ms / 1000, f"gc gen{m[3]} pid {m[1]}", cpu))
    return sorted(spans, key=lambda s: s.start)


def read_jobs(url: str, t_from: float, t_to: float) -> list[Span]:
    import psycopg

    sql = """
        SELECT j.task_name, extract(epoch FROM s.at), extract(epoch FROM min(e.at))
        FROM procrastinate_events s
        JOIN procrastinate_jobs j ON j.id = s.job_id
        LEFT JOIN procrastinate_events e ON e.job_id = s.job_id AND e.at >= s.at
             AND e.type IN ('succeeded', 'failed', 'deferred_for_retry', 'cancelled', 'aborted')
        WHERE s.type = 'started' AND s.at <= to_timestamp(%s) + interval '5 seconds'
          AND s.at >= to_timestamp(%s) - interval '10 minutes'
        GROUP BY s.id, j.task_name, s.at
    """
    with psycopg.connect(url) as conn:
        rows = conn.execute(sql, (t_to, t_from)).fetchall()
    spans = [Span(float(a), float(b) if b is not None else t_to, name) for name, a, b in rows]
    return sorted((s for s in spans if s.end >= t_from), key=lambda s: s.start)


def host_path(timeline: str) -> str:
    """load.py's host_timeline_path: `<timeline>.host.csv` beside the timeline."""
    root, ext = os.path.splitext(timeline)
    return f"{root}.host{ext or '.csv'}"


GROUPS = ("driver", "api", "postgres", "worker")  # load.py's HostSampler.GROUPS


@dataclass(frozen=True)
class Interval:
    start: float
    end: float
    idle: float  # share of the machine's CPU time
    steal: float
    cores: dict[str, float]  # the cores each group of processes used (when recorded)


def read_host(path: str, t_from: float, t_to: float) -> list[Interval]:
    """load.py's `<timeline>.host.csv` over the run's window."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    out = [
        Interval(
            float(r["from_unix"]),
            float(r["to_unix"]),
            float(r["idle_share"]),
            float(r["steal_share"]),
            {g: float(r[g]) for g in GROUPS if r.get(g) not in (None, "")},
        )
        for r in rows
    ]
    return [i for i in out if i.end >= t_from and i.start <= t_to]


def cores_line(intervals: list[Interval]) -> str:
    """The mean cores of each group over the intervals ("" when not recorded)."""
    if not intervals or not intervals[0].cores:
        return ""
    means = {g: sum(i.cores.get(g, 0.0) for i in intervals) / len(intervals) for g in GROUPS}
    return ", ".join(f"{g} {v:.2f}" for g, v in means.items())


def overlapping(spans: list[Span], starts: list[float], t0: float, t1: float) -> list[Span]:
    """The spans that intersect [t0, t1] (spans sorted by start; none lasts > 10 minutes)."""
    hi = bisect.bisect_right(starts, t1)
    lo = bisect.bisect_left(starts, t0 - 600)
    return [s for s in spans[lo:hi] if s.end >= t0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timeline", required=True)
    ap.add_argument("--database-url")
    ap.add_argument("--gc-log", action="append", default=[])
    ap.add_argument("--slow", type=float, default=0.0, help="ms; default: the run's p99")
    ap.add_argument("--gc-min", type=float, default=10.0, help="ms: shorter collections ignored")
    ap.add_argument("--host", help="load.py's <timeline>.host.csv (default: beside --timeline)")
    ap.add_argument(
        "--steal-min",
        type=float,
        default=0.2,
        help="share of the machine's CPU stolen in an interval that counts (default 0.2)",
    )
    ap.add_argument(
        "--idle-max",
        type=float,
        default=0.1,
        help="an interval with at most this share of the machine idle had no core free "
        "(default 0.1: the ticks are 10 ms, an interval ~100 ms)",
    )
    args = ap.parse_args()

    timeline = read_timeline(args.timeline)
    lat = sorted(ms for _, ms in timeline)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))]

    print(
        f"{len(lat)} requests: p50 {pct(0.5):.1f} p90 {pct(0.9):.1f} p99 {pct(0.99):.1f} "
        f"max {lat[-1]:.1f} ms"
    )
    slow_ms = args.slow or pct(0.99)
    t_from, t_to = timeline[0][0], max(t + ms / 1000 for t, ms in timeline)
    gcs = read_gc(args.gc_log, args.gc_min)
    gcs = [g for g in gcs if t_from - 1 <= g.start <= t_to]
    jobs = read_jobs(args.database_url, t_from, t_to) if args.database_url else []
    gc_starts, job_starts = [g.start for g in gcs], [j.start for j in jobs]
    print(f"collections >= {args.gc_min} ms in the window: {len(gcs)}", end="")
    if gcs:
        cpus = [g.cpu_ms for g in gcs if g.cpu_ms is not None]
        print(
            f" (longest {max(g.end - g.start for g in gcs) * 1000:.0f} ms, "
            f"{sum(g.end - g.start for g in gcs):.2f} s in all"
            + (f"; CPU time: longest {max(cpus):.0f} ms" if cpus else "")
            + ")"
        )
    else:
        print()
    print(f"jobs running in the window: {len(jobs)} {dict(Counter(j.what for j in jobs))}")
    host = args.host or host_path(args.timeline)
    intervals = read_host(host, t_from, t_to) if os.path.exists(host) else []
    stolen = [Span(i.start, i.end, "stolen") for i in intervals if i.steal >= args.steal_min]
    busy = [Span(i.start, i.end, "no idle core") for i in intervals if i.idle <= args.idle_max]
    if intervals:
        span = sum(i.end - i.start for i in intervals)
        share = sum((i.end - i.start) * i.steal for i in intervals) / span
        print(
            f"CPU stolen by the hypervisor: {share:.1%} of the machine's over the run, at most "
            f"{max(i.steal for i in intervals):.0%} in ~100 ms; intervals >= "
            f"{args.steal_min:.0%} stolen: {len(stolen)}; with every core busy (idle <= "
            f"{args.idle_max:.0%}): {len(busy)}"
        )
        full = [i for i in intervals if i.idle <= args.idle_max]
        if cores_line(intervals):
            print(f"cores used, mean over the run: {cores_line(intervals)}")
            if full:
                print(f"cores used, mean with every core busy: {cores_line(full)}")
    stolen_starts = [s.start for s in stolen]
    busy_starts = [s.start for s in busy]

    slow = [(t, ms) for t, ms in timeline if ms >= slow_ms]
    kinds: Counter[str] = Counter()
    by_task: Counter[str] = Counter()
    for t, ms in slow:
        g = overlapping(gcs, gc_starts, t, t + ms / 1000)
        j = overlapping(jobs, job_starts, t, t + ms / 1000)
        st = overlapping(stolen, stolen_starts, t, t + ms / 1000)
        saturated = overlapping(busy, busy_starts, t, t + ms / 1000)
        causes = [
            name
            for name, hit in (
                ("gc", g),
                ("job", j),
                ("stolen CPU", st),
                ("no idle core", saturated),
            )
            if hit
        ]
        kinds[" and ".join(causes) or "neither"] += 1
        for task in {s.what for s in j}:
            by_task[task] += 1
    print(f"slow requests (>= {slow_ms:.1f} ms): {len(slow)}")
    if intervals and slow:
        # how idle the machine was around the slow requests, against the whole run
        ends = [i.end for i in intervals]

        def idle_at(t: float) -> float:
            return intervals[min(bisect.bisect_left(ends, t), len(intervals) - 1)].idle

        around = sum(idle_at(t + ms / 2000) for t, ms in slow) / len(slow)
        overall = sum(i.idle for i in intervals) / len(intervals)
        print(f"  machine idle around them: {around:.0%} (over the run: {overall:.0%})")
    for kind, n in kinds.most_common():
        print(f"  overlapped {kind}: {n} ({100 * n / max(1, len(slow)):.0f} %)")
    for task, n in by_task.most_common(8):
        print(f"    with job {task}: {n}")


if __name__ == "__main__":
    main()

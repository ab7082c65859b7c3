"""Benchmark-only: every Python process started with this folder on PYTHONPATH logs its
garbage collections to stderr (a full collection always, a younger one when it took >= 2 ms),
as `GC pid=.. t=<unix start> gen=.. ms=.. cpu_ms=.. collected=..` (ms: wall time, which
includes any time the process waited for a core; cpu_ms: the process's CPU time meanwhile).
bench/stalls.py lines them up with the slow requests of a --timeline. A full collection's line
also gives `survivors=` (the objects the next full collection walks again) and `frozen=`
(stepcoin.heap's frozen start-up heap). BENCH_GC_NOFREEZE=1 also turns gc.freeze() into a
no-op, for the A/B of stepcoin.heap.freeze_startup_heap; BENCH_GC_THRESHOLD=700,10,10 sets
gc.set_threshold for an A/B of the collector's thresholds.
Never used by the product.
"""

import gc
import os
import sys
import time

_started: list[float] = [0.0, 0.0, 0.0]


def _log(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _started[0], _started[1] = time.perf_counter(), time.time()
        _started[2] = time.process_time()
        return
    ms = (time.perf_counter() - _started[0]) * 1000
    cpu_ms = (time.process_time() - _started[2]) * 1000
    if info["generation"] == 2 or ms >= 2:
        # a full collection's survivors (what the next one walks again) and the frozen heap
        heap = (
            f" survivors={len(gc.get_objects(generation=2))} frozen={gc.get_freeze_count()}"
            if info["generation"] == 2
            else ""
        )
        sys.stderr.write(
            f"GC pid={os.getpid()} t={_started[1]:.4f} gen={info['generation']} ms={ms:.1f} "
            f"cpu_ms={cpu_ms:.1f} "
            f"collected={info['collected']}{heap}\n"
        )


gc.callbacks.append(_log)
if os.environ.get("BENCH_GC_NOFREEZE") == "1":
    gc.freeze = lambda: None
if os.environ.get("BENCH_GC_THRESHOLD"):
    gc.set_threshold(*(int(x) for x in os.environ["BENCH_GC_THRESHOLD"].split(",")))

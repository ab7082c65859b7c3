"""The garbage collector of a long-running process: start-up's objects are frozen.

CPython's full collection (generation 2) walks every tracked object of the process, and while it
runs the process answers nothing. An API process holds 160,000-280,000 tracked objects, nearly
all built at start-up (the routes, the schemas, SQLAlchemy's and pydantic's machinery) and alive
until it exits; a full collection of that heap took 100-240 ms here, and every request the
process held waited that long: the half-load p99 stalls of issue 13 (BENCHMARKS.md, "Where the
half-load stalls came from"). `gc.freeze()` moves what exists at that moment to a permanent
generation that no collection walks, so a later full collection walks only what was made
since. Cycles among frozen objects are never collected; start-up builds none that it drops.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect once, then freeze every surviving object; returns how many are frozen.

    Call it when start-up is complete and before the process serves: the one collection here
    costs nobody a wait.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def thaw_heap() -> None:
    """Give the frozen objects back to the collector (at shutdown).

    A process that starts and stops the app more than once (the tests) would otherwise keep
    every dropped app's cycles forever.
    """
    gc.unfreeze()

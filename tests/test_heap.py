"""The API and the worker freeze their start-up heap, so a full collection stays short.

Measured in bench/stalls.py runs (BENCHMARKS.md, "Where the half-load stalls came from"): a full
collection of an API process's unfrozen heap took 100-460 ms and stalled every request it held.
"""

from __future__ import annotations

import gc
from typing import Any

from stepcoin.config import Settings
from stepcoin.heap import freeze_startup_heap, thaw_heap
from stepcoin.main import create_app


async def test_the_app_freezes_its_start_up_heap_while_it_serves(settings: Settings) -> None:
    thaw_heap()
    assert gc.get_freeze_count() == 0
    application = create_app(settings, run_worker=False)
    async with application.router.lifespan_context(application):
        frozen = gc.get_freeze_count()
        # the routes, schemas and SQLAlchemy's machinery: tens of thousands of objects
        assert frozen > 20_000
        # what a full collection walks now: what was made after start-up only
        assert len(gc.get_objects()) < frozen / 4
    assert gc.get_freeze_count() == 0  # given back at shutdown


def test_freezing_collects_first_so_no_garbage_is_frozen() -> None:
    thaw_heap()
    gc.disable()  # no automatic collection between the lines below

    class Cycle:
        ref: Any = None

    a, b = Cycle(), Cycle()
    a.ref, b.ref = b, a
    del a, b  # unreachable, but a cycle: only the collector frees it
    before = sum(type(o) is Cycle for o in gc.get_objects())
    assert before == 2
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 0
        thaw_heap()
        assert not any(type(o) is Cycle for o in gc.get_objects())
    finally:
        thaw_heap()
        gc.enable()

"""The pushes-per-second limit of one process, per push service (platform).

FCM HTTP v1 allows 600,000 messages a minute per Firebase project by default (10,000/s);
APNs publishes no number but asks for few, reused connections. Each send waits for its slot:
the slots of one platform are `1 / rate` seconds apart (a virtual schedule, GCRA-like, so a
quiet moment does not store up a burst beyond `BURST_SECONDS` of sends)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

BURST_SECONDS: Final = 0.05


class Throttle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._next: dict[str, float] = {}

    def delay(self, platform: str, per_second: float) -> float:
        """Take the next slot of this platform; the seconds to wait for it."""
        now = self._clock()
        slot = max(self._next.get(platform, now - BURST_SECONDS), now - BURST_SECONDS)
        self._next[platform] = slot + 1.0 / per_second
        return max(slot - now, 0.0)

    async def wait(self, platform: str, per_second: float) -> None:
        pause = self.delay(platform, per_second)
        if pause > 0:
            await asyncio.sleep(pause)


throttle = Throttle()  # the process's, shared by every send job of the worker

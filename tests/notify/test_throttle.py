"""The pushes-per-second limit: the slots of one platform are 1/rate apart, platforms apart
from each other, and a quiet moment stores up no more than BURST_SECONDS of sends."""

from __future__ import annotations

import pytest

from stepcoin.notify.throttle import BURST_SECONDS, Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_slots_are_one_over_the_rate_apart_per_platform():
    clock = Clock()
    throttle = Throttle(clock)
    waits = [throttle.delay("android", 100) for _ in range(5)]
    assert waits == [0.0] * 5  # the burst allowance: 50 ms of sends at once
    many = [throttle.delay("android", 100) for _ in range(100)]
    assert many[-1] == pytest.approx(many[-2] + 0.01)
    assert many[-1] == pytest.approx(1.05 - BURST_SECONDS, abs=0.02)
    assert throttle.delay("ios", 100) == 0.0  # another platform, another schedule


def test_a_quiet_moment_stores_up_only_a_short_burst():
    clock = Clock()
    throttle = Throttle(clock)
    throttle.delay("ios", 10)
    clock.now += 3600  # an hour of nothing
    free = 0
    while throttle.delay("ios", 10) == 0.0:
        free += 1
    assert free <= 1 + BURST_SECONDS * 10


def test_the_sends_of_a_second_keep_to_the_rate():
    clock = Clock()
    throttle = Throttle(clock)
    waits = [throttle.delay("android", 500) for _ in range(1000)]
    # 1,000 sends at 500/s take two seconds, less the burst allowance
    assert max(waits) == pytest.approx(2.0 - 1 / 500 - BURST_SECONDS, abs=1e-6)

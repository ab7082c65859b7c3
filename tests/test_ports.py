"""The tests' free ports come from below the kernel's ephemeral range (tests/fixtures/ports.py)."""

from __future__ import annotations

import socket

from tests.fixtures.ports import LOWEST, _ephemeral_low, free_port


def test_a_free_port_is_below_the_ephemeral_range_and_bindable() -> None:
    ports = {free_port() for _ in range(20)}
    assert all(LOWEST <= port < _ephemeral_low() for port in ports)
    assert len(ports) > 1  # drawn, not one fixed port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))


def test_a_port_in_use_is_never_given() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port()))
        taken.listen()
        busy = taken.getsockname()[1]
        assert all(free_port() != busy for _ in range(200))

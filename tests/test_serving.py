"""stepcoin.serving: the API processes' loop accepts one connection at a time from a shared
listening socket, and a process that holds connections gives its siblings time to take the next
(the spread itself, over real `stepcoin serve --workers 2` processes: tests/test_cli.py)."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Awaitable, Callable
from types import SimpleNamespace

import pytest

from stepcoin import serving


class Upper(asyncio.Protocol):
    """A connection's protocol: answers every chunk upper-cased; carries a server state the
    way uvicorn's protocols do (`server_state`: the open connections, the requests answered)."""

    server_state = SimpleNamespace(connections=set(), total_requests=0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.server_state.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data.upper())  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    Upper.server_state = SimpleNamespace(connections=set(), total_requests=0)
    with asyncio.Runner(loop_factory=serving.new_event_loop) as runner:
        runner.run(scenario())


def bound() -> socket.socket:
    """A bound socket, not listening yet, as uvicorn's config.bind_socket() hands it over."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


async def until(check: Callable[[], bool]) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached in 5 s")


def test_one_connection_per_turn_then_a_pause_by_what_the_process_holds():
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        sock = bound()
        port = sock.getsockname()[1]
        server = await loop.create_server(Upper, sock=sock, backlog=64)
        assert isinstance(server, serving.OneAtATimeServer) and server.sockets == (sock,)
        server._stop_reading()  # three connections wait in the queue
        clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]

        server._accept_one()  # what the loop runs when readable
        assert server.accepted == 1  # one, though three were waiting
        # the one it took is starting: a pause of one connection's share, not reading
        assert server.last_pause == pytest.approx(serving.PAUSE_PER_CONNECTION_S)
        assert not server.is_serving()
        await until(lambda: server.accepted == 3)  # then back: the other two, one a turn
        assert server.is_serving()
        await until(lambda: len(Upper.server_state.connections) == 3)
        for reader, writer in clients:  # every accepted connection is served
            writer.write(b"ping")
            assert await asyncio.wait_for(reader.readexactly(4), 5) == b"PING"
        # holding three, the next accept pauses three shares; a hundred more: the ceiling
        fourth = await asyncio.open_connection("127.0.0.1", port)
        await until(lambda: server.accepted == 4)
        assert server.last_pause == pytest.approx(4 * serving.PAUSE_PER_CONNECTION_S)
        Upper.server_state.connections.update(object() for _ in range(100))
        fifth = await asyncio.open_connection("127.0.0.1", port)
        await until(lambda: server.accepted == 5)
        assert server.last_pause == serving.MAX_PAUSE_S
        for _, writer in [*clients, fourth, fifth]:
            writer.close()
        server.close()
        await server.wait_closed()
        assert not server.is_serving() and server.sockets == ()
        sock.close()

    run(scenario)


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_connections_accepted_and_closed_leave_no_descriptor_behind():
    """uvloop adopts the accepted socket's descriptor (connect_accepted_socket): closing
    either side must not leak it or close another connection's (200 connections, each
    answered, one at a time and 20 at once)."""

    async def scenario() -> None:
        sock = bound()
        port = sock.getsockname()[1]
        server = await asyncio.get_running_loop().create_server(Upper, sock=sock)

        async def exchange(word: bytes) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(word)
            assert await asyncio.wait_for(reader.readexactly(len(word)), 5) == word.upper()
            writer.close()
            await writer.wait_closed()

        await exchange(b"first")  # the loop's own descriptors (a resolver's) are made by now
        await until(lambda: not Upper.server_state.connections)
        before = open_descriptors()
        for n in range(99):
            await exchange(b"one-%d" % n)
        await asyncio.gather(*(exchange(b"many-%d" % n) for n in range(100)))
        await until(lambda: not Upper.server_state.connections and server.accepted == 200)
        await until(lambda: open_descriptors() == before)
        server.close()
        await server.wait_closed()
        sock.close()

    run(scenario)


def test_connections_that_come_and_go_fast_are_taken_without_pauses(monkeypatch):
    """A connection per request (a proxy without upstream keep-alive): after a window of
    CHURN_WINDOW accepts within CHURN_SECONDS, each answering fewer than two requests, the
    process stops pausing (a pause a connection would cap its accepts); when the churn stops,
    the pauses come back. Connections that answer many requests each never stop them."""
    monkeypatch.setattr(serving, "CHURN_WINDOW", 8)
    monkeypatch.setattr(serving, "CHURN_SECONDS", 0.5)

    async def scenario() -> None:
        sock = bound()
        port = sock.getsockname()[1]
        server = await asyncio.get_running_loop().create_server(Upper, sock=sock)
        assert isinstance(server, serving.OneAtATimeServer)

        async def connection(requests: int) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"x")
            await asyncio.wait_for(reader.readexactly(1), 5)
            Upper.server_state.total_requests += requests
            writer.close()
            await writer.wait_closed()

        pauses = []
        for _ in range(8):  # a connection per request: the first window
            await connection(1)
            pauses.append(server.last_pause)
        assert any(p > 0 for p in pauses[:7]) and server.churning
        await connection(1)
        assert server.last_pause == 0.0  # taken without a pause
        await asyncio.sleep(0.6)  # the churn stopped
        assert not server.churning
        Upper.server_state.connections.update(object() for _ in range(3))  # held by the process
        await connection(1)
        assert server.last_pause > 0
        for _ in range(16):  # many requests a connection: windows that never turn pauses off
            await connection(10)
            assert server.last_pause > 0 and not server.churning
        server.close()
        await server.wait_closed()
        sock.close()

    run(scenario)


def test_one_process_on_a_host_and_port_keeps_the_stock_server():
    async def scenario() -> None:
        server = await asyncio.get_running_loop().create_server(Upper, "127.0.0.1", 0)
        assert not isinstance(server, serving.OneAtATimeServer)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        writer.write(b"ok")
        assert await asyncio.wait_for(reader.readexactly(2), 5) == b"OK"
        writer.close()
        server.close()
        await server.wait_closed()

    run(scenario)


class FailingAccept(socket.socket):
    """A listening socket whose accept() fails with `error` (an errno)."""

    error = errno.EINVAL

    def accept(self):  # type: ignore[no-untyped-def]
        raise OSError(self.error, os.strerror(self.error))


@pytest.mark.parametrize(
    ("error", "traceback"),
    [
        (errno.EMFILE, False),  # out of file descriptors: a moment, as asyncio's accept loop
        (errno.EINVAL, True),  # errors nobody expects (raised before: the loop's handler,
        (errno.EBADF, True),  # again on every turn while the socket stays readable)
    ],
)
def test_an_accept_error_that_may_stay_pauses_accepting_for_a_moment(
    monkeypatch, caplog, error, traceback
):
    monkeypatch.setattr(serving, "RETRY_AFTER_S", 0.05)
    monkeypatch.setattr(FailingAccept, "error", error)

    async def scenario() -> None:
        sock = FailingAccept(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        server = await asyncio.get_running_loop().create_server(Upper, sock=sock)
        server._accept_one()
        assert not server.is_serving()  # not spinning on a socket that stays readable
        await asyncio.sleep(0.2)
        assert server.is_serving()  # back after RETRY_AFTER_S
        server.close()
        await server.wait_closed()
        sock.close()

    run(scenario)
    paused = [r for r in caplog.records if getattr(r, "event", None) == "accept_paused"]
    assert paused and bool(paused[0].exc_info) == traceback  # the traceback when unexpected


def test_a_network_error_pending_on_the_new_connection_is_a_connection_gone(monkeypatch):
    monkeypatch.setattr(FailingAccept, "error", errno.ENETUNREACH)

    async def scenario() -> None:
        sock = FailingAccept(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        server = await asyncio.get_running_loop().create_server(Upper, sock=sock)
        server._accept_one()
        assert server.is_serving()  # accept(2): such errors are to be taken as EAGAIN
        server.close()
        await server.wait_closed()
        sock.close()

    run(scenario)

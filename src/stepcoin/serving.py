"""The API processes' event loop: connections spread over the processes by how busy they are.

`stepcoin serve --workers N` runs N processes that share one listening socket (uvicorn's
multiprocess mode). The stock loops accept every pending connection at once when the socket
turns readable, so whichever process wakes first takes a whole burst: a client that opens its
keep-alive pool at once (a load balancer, a proxy, the benchmark's 16 connections) ended up on
one process in a third of the benchmark's runs, which then capped the throughput at one core
while 17-18 % of the machine idled (BENCHMARKS.md, run 25: 10-27 % fewer answers).

This loop accepts one connection each time the shared socket is reported readable and goes
back to its other work before it takes the next (nginx's `multi_accept off`), and then stops
accepting for a moment that grows with the connections the process already holds
(PAUSE_PER_CONNECTION_S each, at most MAX_PAUSE_S). Every process waits on the socket, so the
one holding fewer connections is back first and takes the next: a burst spreads over the
processes (on two cores, one accept per turn alone still let the first process take a burst
before its sibling was scheduled). Where connections come and go fast (a proxy without upstream
keep-alive opens one per request) every process takes connections all the time and the
pauses would only cost (a timer and two epoll changes each, and a cap on a process's accepts):
they are off while that lasts (CHURN_*). What remains is a connection accepted in Python,
about 25 µs more CPU per new connection than uvloop's own accept. Only a server
created on an existing socket (uvicorn's multiprocess path) accepts this way;
`create_server(host, port)` (one process) is the stock loop's.

uvicorn loads it by its custom loop setting: `loop="stepcoin.serving:new_event_loop"`.

`OneWriteHttpToolsProtocol` (uvicorn's `http` setting) is uvicorn's httptools protocol whose
answers leave in one write: uvicorn writes a response's status line and headers, then its body,
each with its own `transport.write`, and uvloop sends each at once: two `write()` calls, two
TCP segments and, at the client, two wake-ups for one answer. The head is held until the next
write of the connection (the body, usually in the same step of the request's task) and goes out
with it; a head nothing follows (an answer without a body, `100 Continue`) goes out on the
loop's next turn.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger(__name__)

# accept() errors that say the process is out of a resource: stop accepting for a moment (as
# asyncio's own accept loop does) instead of spinning on a socket that stays readable
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# errors that concern one connection only (it went away before it was accepted; accept(2) on
# Linux: the network errors already pending on the new connection are to be taken as EAGAIN)
_CONNECTION_ERRORS = frozenset(
    {
        errno.ECONNABORTED,
        errno.EPROTO,
        errno.EPERM,
        errno.ENETDOWN,
        errno.ENOPROTOOPT,
        errno.EHOSTDOWN,
        errno.ENONET,
        errno.EHOSTUNREACH,
        errno.EOPNOTSUPP,
        errno.ENETUNREACH,
    }
)
RETRY_AFTER_S = 1.0
# after an accept, a process holding n connections stops accepting for n x PAUSE_PER_CONNECTION_S
# (at most MAX_PAUSE_S): a sibling that holds fewer is back sooner and takes the next one
PAUSE_PER_CONNECTION_S = 0.0001
MAX_PAUSE_S = 0.002
# ... unless connections come and go fast (a proxy without upstream keep-alive: a connection
# per request). There every process takes connections all the time, so the spread comes by
# itself, and a pause would cost each connection its timer and two epoll changes (~50 µs of CPU)
# and cap how many a process can take. A window of CHURN_WINDOW accepts that took less than
# CHURN_SECONDS with fewer than CHURN_REQUESTS_PER_CONNECTION requests answered per connection
# (uvicorn's count) turns the pauses off for CHURN_SECONDS; they come back when that stops
CHURN_WINDOW = 64
CHURN_SECONDS = 1.0
CHURN_REQUESTS_PER_CONNECTION = 2.0


class OneAtATimeServer:
    """What uvicorn needs of an asyncio.Server (close, wait_closed, sockets) for a listening
    socket that this process accepts from one connection per readiness."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        ssl: Any = None,
        backlog: int = 100,
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._factory = protocol_factory
        self._ssl = ssl
        self._pending: set[asyncio.Task[Any]] = set()
        self._closed = asyncio.Event()
        self._reading = False
        self._state: Any = None  # uvicorn's ServerState: open connections, requests answered
        self._window_requests = 0  # total_requests when the current window of accepts began
        self._window_began = loop.time()
        self._churn_until = 0.0  # loop time until which connections count as short-lived
        self.accepted = 0
        self.last_pause = 0.0  # seconds: the pause after the last accept (0: none)
        sock.setblocking(False)
        sock.listen(backlog)  # as asyncio's create_server(sock=...) does
        self._start_reading()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return () if self._closed.is_set() else (self._sock,)

    def is_serving(self) -> bool:
        return self._reading

    @property
    def churning(self) -> bool:
        """Connections come and go fast: accepting without pauses."""
        return self._loop.time() < self._churn_until

    def _start_reading(self) -> None:
        if not self._closed.is_set() and not self._reading:
            self._loop.add_reader(self._sock.fileno(), self._accept_one)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._sock.fileno())
            self._reading = False

    def _accept_one(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError):
            return  # another process took it
        except OSError as exc:
            if exc.errno in _CONNECTION_ERRORS:
                return
            # out of a resource, or an error nobody expects (the listening socket itself):
            # either may stay while the socket stays readable, so stop accepting for a moment
            # instead of failing (and logging) on every turn of the loop
            logger.error(
                "accept failed (%s); not accepting for %.0f s",
                exc,
                RETRY_AFTER_S,
                exc_info=exc.errno not in _RESOURCE_ERRORS,
                extra={"event": "accept_paused"},
            )
            self._stop_reading()
            self._loop.call_later(RETRY_AFTER_S, self._start_reading)
            return
        self.accepted += 1
        conn.setblocking(False)
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = self._loop.create_task(self._connect(conn))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        now = self._loop.time()
        if self.accepted % CHURN_WINDOW == 0 and self._state is not None:
            answered = self._state.total_requests - self._window_requests
            if (
                now - self._window_began < CHURN_SECONDS
                and answered < CHURN_WINDOW * CHURN_REQUESTS_PER_CONNECTION
            ):
                self._churn_until = now + CHURN_SECONDS
            self._window_requests, self._window_began = self._state.total_requests, now
        if now < self._churn_until:
            self.last_pause = 0.0
            return
        held = len(self._pending) + (len(self._state.connections) if self._state else 0)
        pause = self.last_pause = min(held * PAUSE_PER_CONNECTION_S, MAX_PAUSE_S)
        if pause > 0:
            self._stop_reading()
            self._loop.call_later(pause, self._start_reading)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            _, protocol = await self._loop.connect_accepted_socket(
                self._factory, conn, ssl=self._ssl
            )
        except Exception:  # the connection is lost, not the server
            logger.warning("an accepted connection failed to start", exc_info=True)
            conn.close()
            return
        if self._state is None:  # uvicorn's protocols carry it; another protocol: no pauses
            state: Any = getattr(protocol, "server_state", None)
            answered = getattr(state, "total_requests", None)
            if isinstance(answered, int) and isinstance(getattr(state, "connections", None), set):
                self._state, self._window_requests = state, answered

    def close(self) -> None:
        """Stop accepting (the socket itself is its owner's: uvicorn closes it)."""
        self._stop_reading()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


class _AcceptOneAtATime:
    """Mixed into an event loop class: create_server(sock=...) accepts one at a time."""

    async def create_server(  # type: ignore[no-untyped-def]
        self, protocol_factory, host=None, port=None, *, sock=None, ssl=None, backlog=100, **kwargs
    ):
        if sock is None or host is not None or port is not None:
            return await super().create_server(  # type: ignore[misc]
                protocol_factory, host, port, sock=sock, ssl=ssl, backlog=backlog, **kwargs
            )
        return OneAtATimeServer(self, sock, protocol_factory, ssl, backlog)  # type: ignore[arg-type]


def _loop_class() -> type[asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop on Linux
        base: type[asyncio.AbstractEventLoop] = asyncio.SelectorEventLoop
    else:
        base = uvloop.Loop
    return type("OneAtATimeLoop", (_AcceptOneAtATime, base), {})


OneAtATimeLoop = _loop_class()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvicorn's custom loop setting (`loop="stepcoin.serving:new_event_loop"`, uvicorn >= 0.36):
    a new event loop of this module's kind."""
    return OneAtATimeLoop()


class _HeadWithBody:
    """A connection's transport for uvicorn's protocol: a response head (a write that starts a
    status line and ends the header block) is held until the connection's next write, which
    takes it along, or until the loop's next turn. Everything else is the transport's."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + bytes(data))
        elif isinstance(data, bytes) and data.startswith(b"HTTP/") and data.endswith(b"\r\n\r\n"):
            self._held = data
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def _flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose answers leave in one write (see the module's
    docstring): `uvicorn.run(http="stepcoin.serving:OneWriteHttpToolsProtocol")`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_HeadWithBody(transport, self.loop))  # type: ignore[arg-type]

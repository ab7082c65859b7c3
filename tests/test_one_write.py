"""stepcoin.serving.OneWriteHttpToolsProtocol: an answer's head leaves with its body in one
write (uvicorn writes them apart: two write() calls and two TCP segments per answer), and
nothing is lost, reordered or held back: answers without a body, streamed bodies, 100 Continue
and closing connections, over a real uvicorn server and real sockets."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import httpx
import pytest
import uvicorn

from stepcoin import serving
from tests.fixtures.ports import free_port


class Recording:
    """A transport that records what is written to it (and forwards it when it wraps one)."""

    def __init__(self, inner: Any = None) -> None:
        self.inner = inner
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        if self.inner is not None:
            self.inner.write(data)

    def is_closing(self) -> bool:
        return self.inner.is_closing() if self.inner is not None else self.closing

    def close(self) -> None:
        self.closing = True
        if self.inner is not None:
            self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


def on_a_loop(scenario: Any) -> None:
    with asyncio.Runner(loop_factory=serving.new_event_loop) as runner:
        runner.run(scenario())


def test_a_head_leaves_with_the_body_written_after_it():
    async def scenario() -> None:
        inner = Recording()
        transport = serving._HeadWithBody(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(HEAD)
        assert inner.writes == []  # held for the body
        transport.write(b"{}")
        assert inner.writes == [HEAD + b"{}"]
        await asyncio.sleep(0)  # the loop's turn finds nothing held
        assert inner.writes == [HEAD + b"{}"]

    on_a_loop(scenario)


def test_a_head_nothing_follows_leaves_on_the_next_turn_and_other_writes_go_at_once():
    async def scenario() -> None:
        inner = Recording()
        transport = serving._HeadWithBody(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await asyncio.sleep(0)
        assert inner.writes == [b"HTTP/1.1 204 No Content\r\n\r\n"]
        transport.write(b"5\r\nhello\r\n")  # a chunk of a streamed body: not a head
        assert inner.writes[-1] == b"5\r\nhello\r\n"
        transport.writelines([b"HTTP/1.1 200 OK\r\n", b"x: y\r\n\r\n"])  # one head, held
        assert len(inner.writes) == 2
        transport.close()  # closing sends what is held first
        assert inner.writes[-1] == b"HTTP/1.1 200 OK\r\nx: y\r\n\r\n" and inner.closing

    on_a_loop(scenario)


def test_a_head_held_when_the_peer_went_away_is_dropped():
    async def scenario() -> None:
        inner = Recording()
        transport = serving._HeadWithBody(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(HEAD)
        inner.closing = True  # the connection was lost before the loop's next turn
        await asyncio.sleep(0)
        assert inner.writes == []
        assert transport.is_closing()  # the rest is the transport's

    on_a_loop(scenario)


class RecordedProtocol(serving.OneWriteHttpToolsProtocol):
    """The protocol `stepcoin serve` runs, with the writes that reach the socket recorded."""

    connections: list[Recording] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        recording = Recording(transport)
        RecordedProtocol.connections.append(recording)
        super().connection_made(recording)  # type: ignore[arg-type]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A JSON answer, an answer without a body, a body streamed with a pause, an echo."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    if path == "/json":
        body = b'{"ok":true}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first,", "more_body": True})
        await asyncio.sleep(1.0)
        await send({"type": "http.response.body", "body": b"second", "more_body": False})
    else:  # /echo
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        length = str(len(body)).encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def served():
    RecordedProtocol.connections = []
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=RecordedProtocol,
        loop="stepcoin.serving:new_event_loop",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", port
    server.should_exit = True
    thread.join(timeout=10)


def test_a_real_server_writes_each_answer_once_and_every_answer_arrives_whole(served):
    url, _ = served
    with httpx.Client(base_url=url) as client:  # one keep-alive connection
        for _ in range(3):
            answer = client.get("/json")
            assert answer.status_code == 200 and answer.json() == {"ok": True}
        assert client.get("/empty").status_code == 204
        assert client.get("/json").json() == {"ok": True}  # after an answer without a body
        with client.stream("GET", "/stream") as streamed:
            assert streamed.status_code == 200
            # the head came with the first chunk, not held for the second (written after 1 s)
            (connection,) = RecordedProtocol.connections
            assert not any(b"second" in w for w in connection.writes)
            assert b"".join(streamed.iter_bytes()) == b"first,second"
        assert client.post("/echo", content=b"x" * 100_000).content == b"x" * 100_000
    (connection,) = RecordedProtocol.connections
    jsons = [w for w in connection.writes if w.endswith(b'{"ok":true}')]
    assert len(jsons) == 4
    assert all(w.startswith(b"HTTP/1.1 200 OK\r\n") for w in jsons)  # head and body: one write
    assert not any(w == b'{"ok":true}' for w in connection.writes)
    assert any(w.startswith(b"HTTP/1.1 204") for w in connection.writes)


def test_expect_100_continue_is_answered_before_the_body_is_sent(served):
    _, port = served
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n"
        )
        interim = sock.recv(1024)  # nothing else would come: the body is not sent yet
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        answer = b""
        while not answer.endswith(b"hello"):
            chunk = sock.recv(1024)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")

"""The logs: one JSON object per line, and the access line written without a LogRecord only
when nobody but configure_logging's handler would see it."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from stepcoin import observability
from stepcoin.observability import (
    RequestContextMiddleware,
    RequestIdFilter,
    access_logger,
    configure_logging,
    json_formatter,
    request_id_var,
)


@pytest.fixture
def stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """configure_logging's JSON logs into a string; the process's logging restored after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, access_logger.level, access_logger.handlers[:])
    saved_direct = observability._access_lines.handler
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    configure_logging("INFO", "json")
    yield out
    root.handlers[:], level, access_level, access_logger.handlers[:] = saved
    root.setLevel(level)
    access_logger.setLevel(access_level)
    observability._access_lines.handler = saved_direct


@contextlib.contextmanager
def alone() -> Iterator[None]:
    """Only configure_logging's handler on the root logger, as in `stepcoin serve` (pytest adds
    its capture handlers to it for each test's call)."""
    root = logging.getLogger()
    during = root.handlers[:]
    root.handlers[:] = [observability._access_lines.handler]
    try:
        yield
    finally:
        root.handlers[:] = during


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _request(path: str = "/v1/me", request_id: str = "req-1") -> None:
    app = RequestContextMiddleware(_ok, max_body_bytes=1024)
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "headers": [(b"x-request-id", request_id.encode())],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    await app(scope, receive, send)


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_direct_access_line_is_the_formatters_line() -> None:
    """Byte for byte what the JSON handler's formatter makes of the same record."""
    created = time.time()
    record = logging.makeLogRecord(
        {
            "name": "stepcoin.access",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "request",
            "created": created,
            "method": "POST",
            "path": "/v1/steps",
            "status": 201,
            "duration_ms": 12.345,
        }
    )
    token = request_id_var.set("abc-123")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    expected = json_formatter().format(record)
    line = observability._AccessLines().line(created, "abc-123", "POST", "/v1/steps", 201, 12.345)
    assert line == expected
    assert list(json.loads(line)) == [
        "time",
        "level",
        "logger",
        "message",
        "request_id",
        "method",
        "path",
        "status",
        "duration_ms",
    ]


async def test_a_request_writes_one_access_line_directly(stream: io.StringIO) -> None:
    with alone():
        assert observability._access_lines.direct() is not None
        await _request("/v1/wallet", "rid-42")
    (line,) = _lines(stream)
    assert line["logger"] == "stepcoin.access" and line["level"] == "INFO"
    assert (line["request_id"], line["method"], line["path"], line["status"]) == (
        "rid-42",
        "GET",
        "/v1/wallet",
        204,
    )
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


async def test_another_handler_gets_the_access_line_through_logging(
    stream: io.StringIO,
) -> None:
    """A test's caplog or an operator's handler sees every access line: no direct write then."""
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    with alone():
        for place in (logging.getLogger(), access_logger, logging.getLogger("stepcoin")):
            extra = Collect()
            place.addHandler(extra)
            try:
                assert observability._access_lines.direct() is None
                await _request(request_id=f"via-{place.name}")
            finally:
                place.removeHandler(extra)
            assert seen[-1].getMessage() == "request"
            assert getattr(seen[-1], "request_id", None) == f"via-{place.name}"
        assert observability._access_lines.direct() is not None
    # the JSON handler wrote the lines as well, through its formatter (one per request)
    assert [line["request_id"] for line in _lines(stream)] == [
        "via-root",
        "via-stepcoin.access",
        "via-stepcoin",
    ]


async def test_another_formatter_on_the_handler_formats_the_access_line(
    stream: io.StringIO,
) -> None:
    handler = observability._access_lines.handler
    assert handler is not None
    installed = handler.formatter
    with alone():
        handler.setFormatter(logging.Formatter("%(name)s|%(message)s|%(request_id)s"))
        try:
            assert observability._access_lines.direct() is None
            await _request(request_id="formatted-1")
        finally:
            handler.setFormatter(installed)
    assert stream.getvalue() == "stepcoin.access|request|formatted-1\n"


async def test_a_quieter_access_logger_writes_nothing(stream: io.StringIO) -> None:
    with alone():
        access_logger.setLevel(logging.WARNING)
        assert observability._access_lines.direct() is None
        await _request()
        assert stream.getvalue() == ""
        access_logger.setLevel(logging.NOTSET)
        assert observability._access_lines.direct() is not None
        await _request()
    assert len(_lines(stream)) == 1


async def test_text_logs_go_through_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, observability._access_lines.handler)
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    try:
        configure_logging("INFO", "text")
        assert observability._access_lines.direct() is None
        await _request("/v1/achievements", "text-1")
    finally:
        root.handlers[:], level, observability._access_lines.handler = saved
        root.setLevel(level)
    assert "stepcoin.access: request" in out.getvalue()
    assert "request_id=text-1" in out.getvalue() and "path=/v1/achievements" in out.getvalue()


async def test_a_broken_log_stream_does_not_fail_the_request(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = observability._access_lines.handler
    assert handler is not None
    errors: list[str] = []
    monkeypatch.setattr(handler, "handleError", lambda record: errors.append(record.msg))
    with alone():
        assert observability._access_lines.direct() is handler
        stream.close()  # writing raises ValueError: I/O operation on closed file
        await _request(request_id="lost-1")
    assert len(errors) == 1 and '"request_id":"lost-1"' in errors[0]


def test_new_request_ids_are_random_hex_and_do_not_repeat() -> None:
    ids = [observability.new_request_id() for _ in range(3 * observability._RequestIds.SIZE)]
    assert len(set(ids)) == len(ids)  # across several refills of the buffer
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    other = observability._RequestIds()  # another process's buffer: other ids
    assert not {other.next() for _ in range(1000)} & set(ids)


async def test_a_request_without_an_id_gets_a_new_one(stream: io.StringIO) -> None:
    seen: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen.extend(v for k, v in message["headers"] if k == b"x-request-id")

    app = RequestContextMiddleware(_ok, max_body_bytes=1024)
    for _ in range(2):
        scope = {"type": "http", "method": "GET", "path": "/healthz", "headers": []}
        await app(scope, lambda: None, send)  # type: ignore[arg-type]
    assert len(seen) == 2 and seen[0] != seen[1] and all(len(v) == 32 for v in seen)


def test_a_forked_child_makes_ids_of_its_own() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out without running anything else
        os.write(write, observability.new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32 and child != observability.new_request_id()

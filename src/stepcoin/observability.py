"""Logs (JSON, or text on a terminal) that carry the request id, and the one cheap ASGI
middleware every request passes."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from contextvars import ContextVar
from typing import Any

import orjson
from fastapi import HTTPException
from pythonjsonlogger.orjson import OrjsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepcoin.errors import problem_response
from stepcoin.metrics import observe_request

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
access_logger = logging.getLogger("stepcoin.access")
_JSON_FIELDS = "{asctime}{levelname}{name}{message}{request_id}"
_JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}
_JSON_TIME = "%Y-%m-%dT%H:%M:%S%z"
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdFilter(logging.Filter):
    """Adds the current request id (or null outside a request) to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


# The attributes every LogRecord has; anything else was passed in `extra=` and is shown.
# (uvicorn's color_message repeats the message with terminal escapes.)
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


class TextFormatter(logging.Formatter):
    """One readable line for a person at a terminal: time, level, logger, message, then the
    `extra=` fields as key=value (the JSON form carries the same fields)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _RECORD_FIELDS and value is not None
        ]
        if extras:
            first, newline, rest = line.partition("\n")  # a traceback stays below the line
            line = f"{first}  {' '.join(extras)}{newline}{rest}"
        return line


def wants_text_logs(log_format: str, stream: object = None) -> bool:
    """`text`, `json`, or `auto`: text when the stream is a terminal (a person reads it)."""
    if log_format != "auto":
        return log_format == "text"
    isatty = getattr(stream if stream is not None else sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def json_formatter() -> logging.Formatter:
    """One compact JSON object per line: time, level, logger, message, request_id, then the
    `extra=` fields (python-json-logger's orjson formatter)."""
    return OrjsonFormatter(_JSON_FIELDS, style="{", rename_fields=_JSON_RENAMES, datefmt=_JSON_TIME)


class _AccessLines:
    """The access log's line per request, written without a LogRecord when that changes nothing.

    Through `logging` a line cost about 17 µs (a LogRecord, the filter, python-json-logger's
    generic formatting); in a hot read's API CPU it was 15-20 % (BENCHMARKS.md, run 16). When
    the access logger's records would reach only the JSON handler configure_logging installed
    (no handler, filter or level of anyone else's on the way: a test's caplog, an operator's
    handler), the line is built here, with the same fields in the same order as that handler's
    formatter writes (tests/test_logging.py compares them), and written under the handler's
    lock. Otherwise it goes through `logging` as any line does."""

    def __init__(self) -> None:
        self.handler: logging.StreamHandler[Any] | None = None
        self.formatter: logging.Formatter | None = None  # the handler's, as installed
        self._second = -1
        self._stamp = ""

    def direct(self) -> logging.StreamHandler[Any] | None:
        """The handler to write to directly, or None (log through `logging`)."""
        handler = self.handler
        logger: logging.Logger | None = access_logger
        if handler is None or access_logger.filters or access_logger.disabled:
            return None
        if not access_logger.isEnabledFor(logging.INFO):
            return None
        while logger is not None:  # the handlers Logger.callHandlers would call
            if logger.handlers and logger.handlers != [handler]:
                return None
            if logger.handlers or not logger.propagate:
                break
            logger = logger.parent
        if logger is None or not logger.handlers:
            return None
        if handler.level > logging.INFO or len(handler.filters) != 1:
            return None
        if handler.formatter is not self.formatter:  # someone formats the lines otherwise
            return None
        if not isinstance(handler.filters[0], RequestIdFilter):
            return None
        return handler

    def stamp(self, created: float) -> str:
        """The formatter's `time` (datefmt in local time), made once a second."""
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime(_JSON_TIME, time.localtime(second))
            self._second = second
        return self._stamp

    def line(
        self, created: float, request_id: str, method: str, path: str, status: int, ms: float
    ) -> str:
        return orjson.dumps(
            {
                "time": self.stamp(created),
                "level": "INFO",
                "logger": access_logger.name,
                "message": "request",
                "request_id": request_id,
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": ms,
            }
        ).decode()

    def write(self, request_id: str, method: str, path: str, status: int, ms: float) -> None:
        handler = self.direct()
        if handler is None:
            access_logger.info(
                "request",
                extra={"method": method, "path": path, "status": status, "duration_ms": ms},
            )
            return
        text = self.line(time.time(), request_id, method, path, status, ms) + handler.terminator
        handler.acquire()
        try:
            handler.stream.write(text)
            handler.flush()
        except Exception:  # as StreamHandler.emit: a broken log stream does not fail a request
            handler.handleError(logging.makeLogRecord({"msg": text}))
        finally:
            handler.release()


_access_lines = _AccessLines()


def configure_logging(level: str = "INFO", log_format: str = "auto") -> None:
    """Logs on stderr for the app, uvicorn and the job worker alike: one JSON object per line
    for collectors (the default off a terminal), readable lines for a person at a terminal."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    text = wants_text_logs(log_format, sys.stderr)
    # A person at a terminal is not shown the job worker's line per job (every few seconds):
    # its warnings and errors still come, and STEPCOIN_LOG_LEVEL=DEBUG shows everything.
    quiet_jobs = text and logging.getLevelName(level.upper()) == logging.INFO
    logging.getLogger("procrastinate").setLevel(logging.WARNING if quiet_jobs else logging.NOTSET)
    if text:
        handler.setFormatter(TextFormatter())
    else:
        handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    _access_lines.handler = None if text else handler
    _access_lines.formatter = handler.formatter
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "procrastinate"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access log carries the request id


class _RequestIds:
    """New request ids: 32 random hex digits, as uuid4().hex was, cut from 4 KiB of the
    operating system's randomness at a time (uuid4 made a system call and an object per request:
    3 % of a hot read's API CPU). A forked child starts a buffer of its own."""

    SIZE = 4096

    def __init__(self) -> None:
        self._refill()
        os.register_at_fork(after_in_child=self._refill)

    def _refill(self) -> None:
        self._random = os.urandom(self.SIZE)
        self._at = 0

    def next(self) -> str:
        at = self._at
        if at >= self.SIZE:
            self._refill()
            at = 0
        self._at = at + 16
        return self._random[at : at + 16].hex()


new_request_id = _RequestIds().next


class RequestContextMiddleware:
    """Request id in and out, a body-size limit, and one access-log line per request.

    Pure ASGI rather than BaseHTTPMiddleware: it adds no task or stream copy on hot routes.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, access_log: bool = True) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        declared_length = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
            elif name == b"content-length":
                try:
                    declared_length = int(value)
                except ValueError:
                    declared_length = -1
        request_id = incoming if incoming and _REQUEST_ID_OK.match(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = [500]
        header_value = request_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", header_value))
                message = {**message, "headers": headers}
            await send(message)

        try:
            if declared_length is not None and (
                declared_length < 0 or declared_length > self.max_body_bytes
            ):
                await self._too_large(scope, receive, send_with_id)
                return
            await self.app(scope, self._limited(receive), send_with_id)
        finally:
            observe_request(scope, status_holder[0], time.perf_counter() - started)
            if self.access_log:
                _access_lines.write(
                    request_id,
                    scope["method"],
                    scope["path"],
                    status_holder[0],
                    round((time.perf_counter() - started) * 1000, 3),
                )
            request_id_var.reset(token)

    def _limited(self, receive: Receive) -> Receive:
        """Counts streamed bodies too (chunked requests have no Content-Length)."""
        received = 0
        limit = self.max_body_bytes

        async def wrapped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        return wrapped

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            "payload_too_large",
            "Request body too large",
            f"The request body exceeds {self.max_body_bytes} bytes.",
            instance=scope["path"],
        )
        await response(scope, receive, send)


class _BodyTooLarge(HTTPException):
    """Raised from the receive wrapper; an HTTPException so FastAPI passes it through as a 413."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="The request body is too large.")


BodyTooLarge = _BodyTooLarge

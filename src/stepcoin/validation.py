"""Input no column can hold, refused at the door with 422 (issue 12, hole 11).

PostgreSQL stores no NUL in text, no lone UTF-16 surrogate (not UTF-8 at all) and no integer
beyond 64 bits; Python's dates end at year 1 and 9999. Such values used to reach the database
or date arithmetic and answer 500. Two central defences, both changing nothing:

- `InputGuard`, an ASGI middleware in front of every route (API, console forms, webhooks,
  and routes yet to be written): a NUL or text that is not UTF-8 in the path or the query
  string, a NUL or lone surrogate in any string of a JSON body (keys too), an integer beyond
  64 bits anywhere in a JSON body, or a NUL or non-UTF-8 text in a form post: 422 problem+json
  (`code: validation_error`, `errors: [{loc, message, type}]`) before any handler runs.
  The common case costs one regular-expression scan of the body; only a suspect body is parsed.
- Shared constrained types for the schemas: `Int64` for integer parameters and fields that
  reach a bigint column (FastAPI's int path and query parameters are unbounded), and
  `CalendarDay` for dates (1970-01-01, where the all-time board starts, to 2100-12-31: no
  day outside it means anything here).

`errors.install_error_handlers` maps what still slips through (a driver DataError, an
OverflowError from date arithmetic) to the same 422 as a last line of defence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from annotated_types import Ge, Le
from pydantic import AfterValidator
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepcoin.errors import http_exception_response, problem_response

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2100, 12, 31)

Int64 = Annotated[int, Ge(INT64_MIN), Le(INT64_MAX)]
"""An integer a PostgreSQL bigint holds (a plain `int` parameter is unbounded)."""


def check_calendar_day(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"must be a day from {FIRST_DAY} to {LAST_DAY}")
    return value


CalendarDay = Annotated[date, AfterValidator(check_calendar_day)]
"""A day that can mean something here; refuses year 1 and 9999 before any date arithmetic."""


# A JSON escape of NUL or of a surrogate half, or a run of 19+ digits (a number that may not
# fit 64 bits): only a body with one is parsed and walked. Both tests run at C speed (a
# literal-prefix search; digits mapped to one byte, then a substring search), ~0.1 ms for a
# 500-record step sync, where one regular expression with both alternatives took 1.6 ms.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_NINETEEN_DIGITS = b"0" * 19
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Refused(Exception):
    def __init__(self, loc: list[str], message: str, kind: str) -> None:
        super().__init__(message)
        self.error = {"loc": loc, "message": message, "type": kind}


def text_fault(value: str) -> tuple[str, str] | None:
    """(message, type) when `value` cannot be stored as text, else None."""
    if "\x00" in value:
        return "must not contain a NUL character", "string_nul"
    if _SURROGATE.search(value):
        return "must not contain a lone UTF-16 surrogate", "string_surrogate"
    return None


def _check_text(loc: list[str], value: str) -> None:
    fault = text_fault(value)
    if fault:
        raise _Refused(loc, *fault)


def _decoded(loc: list[str], raw: bytes) -> str:
    try:
        value = raw.decode("utf-8")  # strict: also refuses surrogates encoded as 3 bytes
    except UnicodeDecodeError:
        raise _Refused(loc, "must be UTF-8 text", "string_unicode") from None
    _check_text(loc, value)
    return value


def _check_urlencoded(where: str, raw: bytes) -> None:
    for pair in raw.split(b"&"):
        name, _, value = pair.partition(b"=")
        field = _decoded([where], unquote_to_bytes(name.replace(b"+", b" ")))
        _decoded([where, field], unquote_to_bytes(value.replace(b"+", b" ")))


def _check_json_value(document: Any) -> None:
    """Walk a parsed JSON document without recursion: strings, keys and integers."""
    stack: list[tuple[list[str], Any]] = [(["body"], document)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str):
            _check_text(loc, value)
        elif isinstance(value, bool) or value is None or isinstance(value, float):
            continue
        elif isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                raise _Refused(loc, "must fit in 64 bits", "int64_range")
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text([*loc, key], key)
                stack.append(([*loc, key], item))
        elif isinstance(value, list):
            stack.extend(([*loc, str(i)], item) for i, item in enumerate(value))


def _suspect(body: bytes) -> bool:
    if _SUSPECT_ESCAPE.search(body) is not None:
        return True
    return _NINETEEN_DIGITS in body.translate(_DIGITS_AS_ZERO)


def check_json_body(body: bytes) -> None:
    if not _suspect(body):
        return
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return  # not JSON, or nested too deeply: the route's own parsing refuses it
    _check_json_value(document)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "" or media == "application/json" or media.endswith("+json")


class InputGuard:
    """Refuses text PostgreSQL cannot store and integers beyond 64 bits, for every route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            raw_path = scope.get("raw_path")
            if raw_path is None:  # a server that passes only the decoded path
                _check_text(["path"], scope["path"])
            else:
                _decoded(["path"], unquote_to_bytes(raw_path.split(b"?", 1)[0]))
            if scope.get("query_string"):
                _check_urlencoded("query", scope["query_string"])
        except _Refused as refused:
            await self._refuse(scope, receive, send, refused)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE") and not _declares_body(scope):
            await self.app(scope, receive, send)
            return
        content_type = _header(scope, b"content-type")
        form = content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"
        if not (form or _is_json(content_type)):
            await self.app(scope, receive, send)  # multipart and others: left to the route
            return
        try:
            body, messages = await read_body(receive)
        except HTTPException as exc:  # the body-size limit of the middleware around this one
            await http_exception_response(exc, instance=scope["path"])(scope, receive, send)
            return
        try:
            if form:
                _check_urlencoded("form", body)
            else:
                check_json_body(body)
        except _Refused as refused:
            await self._refuse(scope, receive, send, refused)
            return
        await self.app(scope, replay(messages, receive), send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, refused: _Refused) -> None:
        error = refused.error
        # The location is safe to echo: every part passed or is the one that failed, which
        # is named by index, never by its text.
        loc = [part if text_fault(part) is None else "?" for part in error["loc"]]
        response = problem_response(
            422,
            "validation_error",
            "Invalid input",
            f"{'.'.join(loc)}: {error['message']}",
            instance=scope["path"] if text_fault(scope["path"]) is None else None,
            extra={"errors": [{**error, "loc": loc}]},
        )
        await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def _declares_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    return bool(_header(scope, b"transfer-encoding")) or (length not in ("", "0"))


async def read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The whole body (already capped by RequestContextMiddleware), and its messages."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), messages


@dataclass(frozen=True, slots=True)
class RouteLabel:
    """What a fast path puts in scope["route"] for the metrics label: the FastAPI route's own
    path template (stepcoin.metrics reads its `path`)."""

    path: str


async def send_json(
    send: Send, body: bytes, *, status: int = 200, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A fast path's JSON answer, as the route's Response would send it."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-length", str(len(body)).encode("latin-1")),
                (b"content-type", b"application/json"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` that hands out the messages already read first."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def omit_null(*fields: str) -> Any:
    """A model's `json_schema_extra`: these optional fields may be left out but are refused
    as null (their validators say so), so the OpenAPI document offers no null for them."""

    def strip(schema: dict[str, Any], cls: Any = None) -> None:
        for name in fields:
            prop = schema.get("properties", {}).get(name, {})
            branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
            if len(branches) == 1:
                prop.update(branches[0])
            elif branches:
                prop["anyOf"] = branches

    return strip


# What a model's `str_strip_whitespace` with min_length=1 (or 3) means, for the OpenAPI
# document: a character pydantic's strip keeps, i.e. not Unicode White_Space (spelled out:
# ECMA's \s also holds U+FEFF, Python's str.isspace also \x1c-\x1f; neither is stripped).
_KEPT = r"[^\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
NOT_BLANK: Any = {"pattern": _KEPT}
THREE_KEPT: Any = {"pattern": _KEPT + r"[\s\S]+" + _KEPT}

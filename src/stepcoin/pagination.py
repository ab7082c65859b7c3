"""Keyset pagination: opaque, url-safe cursors over (created_at, id), newest first."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query

from stepcoin.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_LENGTH = 200

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (1 to 200).")]
CursorQuery = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        description="The `next_cursor` of the previous page; omit for the first page.",
    ),
]


def bigint_id(text: str) -> int:
    """A cursor's id part for a BIGINT key; out of range is malformed, not a database error."""
    value = int(text)
    if not 0 < value < 2**63:
        raise ValueError("id out of range")
    return value


def invalid_cursor() -> InvalidInput:
    return InvalidInput("The cursor is malformed; start again without it.", code="invalid_cursor")


def encode_cursor(created_at: datetime, row_id: object) -> str:
    """The position after a row; base64url without padding, so it needs no URL escaping."""
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, parse_id: Callable[[str], T]) -> tuple[datetime, T]:
    """The (created_at, id) a cursor points after; anything else is a 422 `invalid_cursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        created_text, id_text = raw.split("|")
        created_at = datetime.fromisoformat(created_text)
        row_id = parse_id(id_text)
    except (ValueError, UnicodeError, binascii.Error, TypeError) as exc:
        raise invalid_cursor() from exc
    if created_at.tzinfo is None:
        raise invalid_cursor()
    return created_at, row_id


def page(rows: Sequence[dict[str, Any]], limit: int) -> dict[str, Any]:
    """`rows` was fetched with limit + 1: the extra row only says that another page exists."""
    items = list(rows[:limit])
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(last["created_at"], last["id"])
    return {"items": items, "next_cursor": next_cursor}

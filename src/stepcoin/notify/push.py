"""What a sender is given and what it answers, and the payload size limits both services set."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

import orjson

# Both FCM (HTTP v1: the whole message) and APNs (a regular alert's JSON) take 4 KB at most.
MAX_PAYLOAD_BYTES = 4096
MAX_RETRY_AFTER_SECONDS = 3600.0

Status = Literal["sent", "invalid", "retry", "failed", "moved"]


@dataclass(frozen=True, slots=True)
class Message:
    token: str
    environment: str  # production or sandbox (APNs); FCM has one
    title: str
    body: str
    data: dict[str, Any] = field(default_factory=dict)
    collapse_key: str | None = None
    expires_at: datetime | None = None
    priority_high: bool = True


@dataclass(frozen=True, slots=True)
class Outcome:
    """sent; invalid (a dead token: drop the device); retry (429/5xx, after `retry_after`
    seconds when the service said so); failed (refused for good); moved (APNs accepted it in
    the other environment: the device's environment is corrected)."""

    status: Status
    error: str | None = None
    retry_after: float | None = None
    environment: str | None = None


class Sender(Protocol):
    async def send(self, message: Message) -> Outcome: ...

    async def aclose(self) -> None: ...


def retry_after_seconds(value: str | None) -> float | None:
    """The Retry-After header: seconds, or an HTTP date (RFC 9110); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def fit(build: Any, message: Message) -> bytes:
    """The encoded payload under MAX_PAYLOAD_BYTES: the body is shortened first (with an
    ellipsis), then the data is left out; `build(title, body, data)` makes the JSON object."""
    title, body, data = message.title, message.body, dict(message.data)
    encoded = orjson.dumps(build(title, body, data))
    while len(encoded) > MAX_PAYLOAD_BYTES and len(body) > 8:
        body = body[: len(body) // 2].rstrip() + "…"
        encoded = orjson.dumps(build(title, body, data))
    if len(encoded) > MAX_PAYLOAD_BYTES:
        encoded = orjson.dumps(build(title[:100], body, {}))
    return encoded

"""Failed-login throttling per account and per client address, kept in PostgreSQL.

In the database rather than in process memory so that every API process sees the same
counters; fixed windows: N failures within the window block the key for one window.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.errors import TooManyRequests
from stepcoin.runtime_settings.service import runtime_settings


def account_key(email: str) -> str:
    return f"account:{email}"


def address_key(address: str | None) -> str:
    return f"address:{address or 'unknown'}"


async def ensure_not_blocked(session: AsyncSession, keys: list[str]) -> None:
    row = (
        await session.execute(
            text(
                "SELECT max(blocked_until) FROM login_throttle "
                "WHERE key = ANY(:keys) AND blocked_until > now()"
            ),
            {"keys": keys},
        )
    ).scalar_one()
    if row is not None:
        retry_after = int((row - datetime.now(UTC)).total_seconds()) + 1
        raise TooManyRequests(
            "Too many failed sign-in attempts; try again later.",
            code="login_throttled",
            retry_after=retry_after,
        )


_RECORD_FAILURE = text(
    """
    INSERT INTO login_throttle AS t (key, failures, window_started_at, blocked_until)
    VALUES (:key, 1, now(), CASE WHEN 1 >= :max THEN now() + make_interval(secs => :window) END)
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN t.window_started_at < now() - make_interval(secs => :window)
                        THEN 1 ELSE t.failures + 1 END,
        window_started_at = CASE WHEN t.window_started_at < now() - make_interval(secs => :window)
                                 THEN now() ELSE t.window_started_at END,
        blocked_until = CASE
            WHEN (CASE WHEN t.window_started_at < now() - make_interval(secs => :window)
                       THEN 1 ELSE t.failures + 1 END) >= :max
            THEN now() + make_interval(secs => :window) END
    """
)


async def record_failure(session: AsyncSession, email: str, address: str | None) -> None:
    settings = await runtime_settings.all(session)
    window = settings["auth.login_failure_window_seconds"]
    for key, limit in (
        (account_key(email), settings["auth.login_max_failures_per_account"]),
        (address_key(address), settings["auth.login_max_failures_per_ip"]),
    ):
        await session.execute(_RECORD_FAILURE, {"key": key, "max": limit, "window": window})


async def record_success(session: AsyncSession, email: str) -> None:
    await session.execute(
        text("DELETE FROM login_throttle WHERE key = :key"), {"key": account_key(email)}
    )

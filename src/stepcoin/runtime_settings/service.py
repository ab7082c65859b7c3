"""Read runtime settings through a short per-process cache; changes show within a few seconds."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from stepcoin.runtime_settings.registry import SPECS, defaults

CACHE_TTL_SECONDS = 5.0


class RuntimeSettingsCache:
    """All settings in one dict, reloaded with one query when older than the TTL."""

    def __init__(self, ttl_seconds: float = CACHE_TTL_SECONDS) -> None:
        self.ttl_seconds = ttl_seconds
        self._values: dict[str, Any] = {}
        self._loaded_at = float("-inf")

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    def cached(self) -> dict[str, Any] | None:
        """The settings if the cache is fresh, else None (the caller reloads them)."""
        return self._values if self._fresh() else None

    def _fresh(self) -> bool:
        return time.monotonic() - self._loaded_at <= self.ttl_seconds

    def _load(self, rows: Iterable[tuple[str, Any]]) -> dict[str, Any]:
        values = defaults()
        for key, value in rows:
            spec = SPECS.get(key)
            if spec is None:
                values[key] = value
                continue
            try:
                values[key] = spec.validate(value)
            except ValueError:
                values[key] = spec.default  # a bad stored value never breaks a request
        self._values = values
        self._loaded_at = time.monotonic()
        return values

    async def all(self, session: AsyncSession) -> dict[str, Any]:
        if self._fresh():
            return self._values
        rows = (await session.execute(text("SELECT key, value FROM settings"))).all()
        return self._load((key, value) for key, value in rows)

    async def all_raw(self, driver: Any) -> dict[str, Any]:
        """The same, over a bare asyncpg connection (hot paths that bypass the ORM session)."""
        if self._fresh():
            return self._values
        rows = await driver.fetch("SELECT key, value::text FROM settings")
        return self._load((row[0], orjson.loads(row[1])) for row in rows)

    async def get(self, session: AsyncSession, key: str) -> Any:
        return (await self.all(session))[key]


runtime_settings = RuntimeSettingsCache()

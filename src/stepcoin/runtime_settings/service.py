"""Read runtime settings through a short per-process cache; changes show within a few seconds."""

from __future__ import annotations

import time
from typing import Any

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

    async def all(self, session: AsyncSession) -> dict[str, Any]:
        if time.monotonic() - self._loaded_at > self.ttl_seconds:
            rows = (await session.execute(text("SELECT key, value FROM settings"))).all()
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
        return self._values

    async def get(self, session: AsyncSession, key: str) -> Any:
        return (await self.all(session))[key]


runtime_settings = RuntimeSettingsCache()

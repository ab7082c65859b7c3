"""App version gating (API.md): a client older than the lowest supported version gets 426.

The app sends `X-App-Version` (digits and dots, e.g. `2.4.1`) and `X-App-Platform` (`ios` or
`android`). The runtime settings `app.min_version_ios` and `app.min_version_android` (default
`0`: every version) hold the lowest supported version; a request from an older app is answered
426 `app_update_required` with a problem body the app can show, before any route runs. A request
without both headers, from another platform, or with a version that is not digits and dots is
not judged (the console, scripts, curl). Versions compare numerically part by part (`1.10` >
`1.9`; `2` = `2.0.0`).

Low level: reads the runtime settings through their per-process cache (refreshed on the fast
pool at most every few seconds); if they cannot be read, nothing is refused.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from stepcoin.errors import problem_response
from stepcoin.runtime_settings.service import runtime_settings

logger = logging.getLogger("stepcoin.app_versions")

PLATFORMS = ("ios", "android")
VERSION_PATTERN = r"^\d{1,9}(\.\d{1,9}){0,3}$"
_VERSION = re.compile(VERSION_PATTERN)


def setting_key(platform: str) -> str:
    return f"app.min_version_{platform}"


def parse_version(text: str) -> tuple[int, ...] | None:
    """`2.4.1` → (2, 4, 1), trailing zeros dropped so that `2` = `2.0`; None if not a version."""
    text = text.strip()
    if not _VERSION.match(text):
        return None
    parts = [int(p) for p in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


class AppVersionGate:
    """ASGI middleware: 426 for an app older than its platform's lowest supported version."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            version = platform = None
            for name, value in scope["headers"]:
                if name == b"x-app-version" and version is None:
                    version = value.decode("latin-1")
                elif name == b"x-app-platform" and platform is None:
                    platform = value.decode("latin-1").strip().lower()
            if version is not None and platform in PLATFORMS:
                assert platform is not None
                refused = await self._refusal(scope, platform, version)
                if refused is not None:
                    await refused(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _refusal(self, scope: Scope, platform: str, version: str) -> Any:
        sent = parse_version(version)
        if sent is None:
            return None
        settings = await _settings(scope)
        if settings is None:
            return None
        minimum_text = str(settings.get(setting_key(platform), "0"))
        minimum = parse_version(minimum_text)
        if minimum is None or sent >= minimum:
            return None
        return problem_response(
            426,
            "app_update_required",
            "Update required",
            f"This version of the app ({version.strip()}) is no longer supported on {platform}: "
            f"please update to {minimum_text} or later.",
            instance=scope["path"],
            extra={"platform": platform, "minimum_version": minimum_text},
        )


async def _settings(scope: Scope) -> dict[str, Any] | None:
    cached = runtime_settings.cached()
    if cached is not None:
        return cached
    try:
        pool = await scope["app"].state.database.fast_pool()
        async with pool.acquire() as driver:
            return await runtime_settings.all_raw(driver)
    except Exception:  # no settings, no refusal: the route answers as usual
        logger.debug("app version gate: settings not readable", exc_info=True)
        return None

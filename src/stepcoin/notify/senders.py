"""The process's push senders, built once from the settings: FCM for Android, APNs for iOS.

A platform without its settings has no sender: its pushes are skipped (the inbox still has
them) and a warning says so once. Tests and the demo point the senders at the stand-ins
(src/push_standin) through the settings' URLs, or replace them with `override`."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from stepcoin.config import Settings
from stepcoin.notify import standin
from stepcoin.notify.apns import ApnsSender
from stepcoin.notify.fcm import GOOGLE_TOKEN_URI, FcmSender
from stepcoin.notify.push import Sender

logger = logging.getLogger("stepcoin.notify")


# Pushes in flight at once per platform and process: under APNs' concurrent streams on one
# HTTP/2 connection (the server announces its limit; 100 is common) and under httpx's pool of
# 100 connections for FCM, so that a broadcast waits here instead of failing there.
MAX_IN_FLIGHT = 64


@dataclass
class Senders:
    android: Sender | None = None
    ios: Sender | None = None
    _gates: dict[tuple[str, int], asyncio.Semaphore] = field(default_factory=dict, repr=False)

    def for_platform(self, platform: str) -> Sender | None:
        return self.ios if platform == "ios" else self.android

    def in_flight(self, platform: str) -> asyncio.Semaphore:
        """The gate of one platform's pushes in flight (one per event loop)."""
        key = (platform, id(asyncio.get_running_loop()))
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = asyncio.Semaphore(MAX_IN_FLIGHT)
        return gate

    async def aclose(self) -> None:
        for sender in (self.android, self.ios):
            if sender is not None:
                await sender.aclose()


_current: Senders | None = None
_override: Senders | None = None


def build(settings: Settings) -> Senders:
    if settings.uses_push_standin:  # development with nothing configured
        settings = standin.start(settings) or settings
    senders = Senders()
    if settings.push_fcm_credentials_file:
        account = json.loads(Path(settings.push_fcm_credentials_file).read_text())
        if settings.env == "production" and account.get("token_uri", GOOGLE_TOKEN_URI) != (
            GOOGLE_TOKEN_URI
        ):
            raise ValueError("the FCM service-account key must use Google's token endpoint")
        senders.android = FcmSender(
            account,
            project_id=settings.push_fcm_project_id,
            api_url=settings.push_fcm_api_url,
            timeout=settings.push_timeout_seconds,
        )
    else:
        logger.warning("no FCM key configured: Android devices get no pushes")
    apns = (
        settings.push_apns_key_file,
        settings.push_apns_key_id,
        settings.push_apns_team_id,
        settings.push_apns_topic,
    )
    if all(apns):
        senders.ios = ApnsSender(
            key_pem=Path(str(settings.push_apns_key_file)).read_text(),
            key_id=str(settings.push_apns_key_id),
            team_id=str(settings.push_apns_team_id),
            topic=str(settings.push_apns_topic),
            production_url=settings.push_apns_url,
            sandbox_url=settings.push_apns_sandbox_url,
            ca_file=settings.push_apns_ca_file,
            timeout=settings.push_timeout_seconds,
        )
    else:
        logger.warning("APNs not configured (key file, key id, team id, topic): no iOS pushes")
    return senders


def current(settings: Settings) -> Senders:
    """The override (tests), or the process's senders built on first use."""
    global _current
    if _override is not None:
        return _override
    if _current is None:
        _current = build(settings)
    return _current


def override(senders: Senders | None) -> None:
    global _override
    _override = senders


async def close() -> None:
    global _current
    if _current is not None:
        await _current.aclose()
        _current = None
    standin.stop()

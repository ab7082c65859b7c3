"""Development without a push service: the push stand-ins (src/push_standin) in this process.

Like the Shopify stand-in (shop.runtime), they are a development tool of the `standin` extra,
loaded by name and never in production or tests (`Settings.uses_push_standin`): with nothing
configured, `stepcoin serve` / `stepcoin worker` start the FCM and APNs stand-ins on 127.0.0.1
(threads of this process) and point the senders at them, so that the demo's walkers (each has
a push device) get their pushes and a broadcast shows real figures."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from stepcoin.config import Settings

logger = logging.getLogger("stepcoin.notify")

_running: list[Any] = []


def start(settings: Settings) -> Settings | None:
    """Start both stand-ins (once per process) and answer the settings that point at them;
    None when the stand-ins are not installed (then no pushes, as before)."""
    try:
        fcm = importlib.import_module("push_standin.fcm")
        apns = importlib.import_module("push_standin.apns")
    except ImportError:
        logger.warning("no push service configured and the push stand-ins are not installed")
        return None
    if not _running:
        fcm_server = fcm.FcmServer(fcm.FcmStandIn())
        apns_servers = apns.ApnsServers(apns.ApnsStandIn())
        fcm_server.__enter__()
        apns_servers.__enter__()
        _running.extend([fcm_server, apns_servers])
    fcm_server, apns_servers = _running
    logger.warning(
        "no push service configured: pushes go to the local stand-ins",
        extra={"fcm": fcm_server.url, "apns": apns_servers.production.url},
    )
    return settings.model_copy(
        update={
            "push_fcm_credentials_file": fcm_server.credentials_file,
            "push_fcm_api_url": fcm_server.url,
            "push_apns_key_file": apns_servers.key_file,
            "push_apns_key_id": apns_servers.standin.key_id,
            "push_apns_team_id": apns_servers.standin.team_id,
            "push_apns_topic": apns_servers.standin.topic,
            "push_apns_url": apns_servers.production.url,
            "push_apns_sandbox_url": apns_servers.sandbox.url,
            "push_apns_ca_file": apns_servers.ca_file,
        }
    )


def stop() -> None:
    while _running:
        _running.pop().__exit__(None, None, None)

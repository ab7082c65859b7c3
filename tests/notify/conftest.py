"""The push stand-ins (src/push_standin) on 127.0.0.1 for the whole run, and senders that
speak to them; each test starts with no faults, no dead tokens and nothing sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from push_standin.apns import ApnsServers, ApnsStandIn
from push_standin.fcm import FcmServer, FcmStandIn
from stepcoin.config import Settings
from stepcoin.notify import senders as notify_senders
from stepcoin.notify.senders import Senders


@pytest.fixture(scope="session")
def fcm_server() -> Iterator[FcmServer]:
    with FcmServer(FcmStandIn()) as server:
        yield server


@pytest.fixture(scope="session")
def apns_servers() -> Iterator[ApnsServers]:
    with ApnsServers(ApnsStandIn()) as servers:
        yield servers


def reset(fcm: FcmStandIn, apns: ApnsStandIn) -> None:
    fcm.reset()
    apns.reset()


def push_settings(base: Settings, fcm: FcmServer, apns: ApnsServers) -> Settings:
    return base.model_copy(
        update={
            "push_fcm_credentials_file": fcm.credentials_file,
            "push_fcm_api_url": fcm.url,
            "push_apns_key_file": apns.key_file,
            "push_apns_key_id": apns.standin.key_id,
            "push_apns_team_id": apns.standin.team_id,
            "push_apns_topic": apns.standin.topic,
            "push_apns_url": apns.production.url,
            "push_apns_sandbox_url": apns.sandbox.url,
            "push_apns_ca_file": apns.ca_file,
        }
    )


@pytest.fixture
def fcm(fcm_server: FcmServer, apns_servers: ApnsServers) -> FcmStandIn:
    reset(fcm_server.standin, apns_servers.standin)
    return fcm_server.standin


@pytest.fixture
def apns(fcm_server: FcmServer, apns_servers: ApnsServers) -> ApnsStandIn:
    reset(fcm_server.standin, apns_servers.standin)
    return apns_servers.standin


@pytest.fixture
async def push(
    settings: Settings, fcm_server: FcmServer, apns_servers: ApnsServers
) -> AsyncIterator[Senders]:
    """Senders built from the settings, as the process builds them, pointed at the stand-ins
    and used by every notification job of the test."""
    reset(fcm_server.standin, apns_servers.standin)
    built = notify_senders.build(push_settings(settings, fcm_server, apns_servers))
    notify_senders.override(built)
    try:
        yield built
    finally:
        notify_senders.override(None)
        await built.aclose()


def ios_token(n: int = 1) -> str:
    return f"{n:02x}" * 32


def android_token(n: int = 1) -> str:
    return f"fcm-token-{n}:" + "A" * 140

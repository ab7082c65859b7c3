"""`python -m push_standin`: both push stand-ins on 127.0.0.1 until Ctrl-C, and the settings
that point a development StepCoin at them (never production: Settings refuse them there)."""

from __future__ import annotations

import contextlib
import signal
import threading

from push_standin.apns import ApnsServers, ApnsStandIn
from push_standin.fcm import FcmServer, FcmStandIn


def main() -> None:
    fcm, apns = FcmStandIn(), ApnsStandIn()
    with FcmServer(fcm) as fcm_server, ApnsServers(apns) as apns_servers:
        print("# push stand-ins are running; point StepCoin at them with:")
        for key, value in (
            ("STEPCOIN_PUSH_FCM_CREDENTIALS_FILE", fcm_server.credentials_file),
            ("STEPCOIN_PUSH_FCM_API_URL", fcm_server.url),
            ("STEPCOIN_PUSH_APNS_KEY_FILE", apns_servers.key_file),
            ("STEPCOIN_PUSH_APNS_KEY_ID", apns.key_id),
            ("STEPCOIN_PUSH_APNS_TEAM_ID", apns.team_id),
            ("STEPCOIN_PUSH_APNS_TOPIC", apns.topic),
            ("STEPCOIN_PUSH_APNS_URL", apns_servers.production.url),
            ("STEPCOIN_PUSH_APNS_SANDBOX_URL", apns_servers.sandbox.url),
            ("STEPCOIN_PUSH_APNS_CA_FILE", apns_servers.ca_file),
        ):
            print(f"export {key}={value}")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()

"""Development without a push service (the demo): the process starts the push stand-ins and
its senders push to them; in tests and production it never does."""

from __future__ import annotations

from stepcoin.notify import senders, standin
from stepcoin.notify.push import Message
from tests.notify.conftest import android_token, ios_token


async def test_development_without_a_push_service_pushes_to_the_local_stand_ins(settings):
    assert not settings.uses_push_standin  # tests: never
    development = settings.model_copy(
        update={"env": "development", "push_fcm_credentials_file": None, "push_apns_key_file": None}
    )
    assert development.uses_push_standin
    built = senders.build(development)
    try:
        assert built.android is not None and built.ios is not None
        for sender, token in ((built.android, android_token(5)), (built.ios, ios_token(5))):
            outcome = await sender.send(
                Message(token=token, environment="production", title="Hi", body="A demo push")
            )
            assert outcome.status == "sent", outcome.error
        again = standin.start(development)  # once per process: the same servers
        assert again is not None and again.push_fcm_api_url == built.android.url.split("/v1/")[0]
    finally:
        await built.aclose()
        standin.stop()

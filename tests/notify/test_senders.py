"""Issue 18 item 2: the FCM and APNs senders against stand-ins that speak the documented
protocols (OAuth2 JWT grant + messages:send; HTTP/2 over TLS with an ES256 provider token):
success, a dead token, the wrong environment, 429 with Retry-After, 5xx."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta

import httpx

from stepcoin.notify.push import MAX_PAYLOAD_BYTES, Message
from tests.notify.conftest import android_token, ios_token


def message(token: str, environment: str = "production", **extra) -> Message:
    return Message(
        token=token,
        environment=environment,
        title="Day approved",
        body="Your 12,000 steps of Monday earned 12 coins.",
        data={"day": "2026-12-01", "coins": 12},
        collapse_key="review:2026-12-01",
        **extra,
    )


# --- FCM ---------------------------------------------------------------------------------


async def test_fcm_sends_with_a_cached_oauth2_token(push, fcm):
    first = await push.android.send(message(android_token(1)))
    second = await push.android.send(message(android_token(2)))
    assert (first.status, second.status) == ("sent", "sent")
    assert push.android.tokens_fetched == 1  # the access token is reused until it expires
    sent = fcm.sent[0]
    assert sent["token"] == android_token(1)
    assert sent["notification"] == {
        "title": "Day approved",
        "body": "Your 12,000 steps of Monday earned 12 coins.",
    }
    assert sent["data"] == {"day": "2026-12-01", "coins": "12"}  # FCM data is strings
    assert sent["android"]["collapse_key"] == "review:2026-12-01"


async def test_fcm_refreshes_a_refused_access_token(push, fcm):
    assert (await push.android.send(message(android_token()))).status == "sent"
    fcm.expire_access_tokens()
    assert (await push.android.send(message(android_token()))).status == "sent"
    assert fcm.answers == [200, 401, 200]
    assert push.android.tokens_fetched == 2


async def test_fcm_dead_token_is_invalid(push, fcm):
    fcm.dead.add(android_token(3))
    outcome = await push.android.send(message(android_token(3)))
    assert outcome.status == "invalid"
    assert "UNREGISTERED" in outcome.error


async def test_fcm_token_of_another_project_is_invalid(push, fcm):
    """FCM has no environments; its wrong environment is a token another Firebase project
    issued (a debug build): 403 SENDER_ID_MISMATCH, never deliverable from this project."""
    fcm.foreign.add(android_token(5))
    outcome = await push.android.send(message(android_token(5)))
    assert (outcome.status, outcome.error) == ("invalid", "403 SENDER_ID_MISMATCH")


async def test_fcm_429_retries_after_the_time_asked(push, fcm):
    fcm.fail_next(429, retry_after="17")
    outcome = await push.android.send(message(android_token()))
    assert (outcome.status, outcome.retry_after) == ("retry", 17.0)
    assert "QUOTA_EXCEEDED" in outcome.error
    assert (await push.android.send(message(android_token()))).status == "sent"


async def test_fcm_5xx_is_retried(push, fcm):
    for status in (500, 503):
        fcm.fail_next(status)
        outcome = await push.android.send(message(android_token()))
        assert (outcome.status, outcome.retry_after) == ("retry", None)


async def test_fcm_payload_is_fitted_under_the_limit(push, fcm):
    big = Message(token=android_token(), environment="production", title="t", body="x" * 20_000)
    assert len(push.android.payload(big)) <= MAX_PAYLOAD_BYTES
    assert (await push.android.send(big)).status == "sent"
    assert fcm.sent[0]["notification"]["body"].endswith("…")


# --- APNs --------------------------------------------------------------------------------


async def test_apns_sends_over_http2_with_one_provider_token(push, apns):
    expires = datetime.now(UTC) + timedelta(hours=2)
    first = await push.ios.send(message(ios_token(1), expires_at=expires))
    second = await push.ios.send(message(ios_token(2)))
    assert (first.status, second.status) == ("sent", "sent")
    assert push.ios.tokens_made == 1  # reused for its allowed lifetime
    sent = apns.sent[0]
    assert sent["environment"] == "production"
    assert sent["payload"]["aps"]["alert"] == {
        "title": "Day approved",
        "body": "Your 12,000 steps of Monday earned 12 coins.",
    }
    assert sent["payload"]["day"] == "2026-12-01"
    assert sent["headers"]["apns-collapse-id"] == "review:2026-12-01"
    assert sent["headers"]["apns-push-type"] == "alert"
    assert sent["headers"]["apns-expiration"] == str(int(expires.timestamp()))
    assert apns.sent[1]["headers"]["apns-expiration"] == "0"


async def test_apns_dead_token_is_invalid(push, apns):
    apns.unregister(ios_token(4))
    outcome = await push.ios.send(message(ios_token(4)))
    assert outcome.status == "invalid"
    assert outcome.error == "410 Unregistered"


async def test_apns_wrong_environment_is_tried_in_the_other_one(push, apns):
    apns.register(ios_token(5), "sandbox")  # a development build said "production"
    outcome = await push.ios.send(message(ios_token(5), "production"))
    assert (outcome.status, outcome.environment) == ("moved", "sandbox")
    assert [(e, s) for e, s, _ in apns.answers] == [("production", 400), ("sandbox", 200)]
    assert apns.answers[0][2] == "BadDeviceToken"


async def test_apns_bad_device_token_in_both_environments_is_invalid(push, apns):
    apns.register(ios_token(6), "sandbox")
    apns.fail_next(400, reason="BadDeviceToken", token=ios_token(6))
    apns.fail_next(400, reason="BadDeviceToken", token=ios_token(6))
    outcome = await push.ios.send(message(ios_token(6), "sandbox"))
    assert outcome.status == "invalid"
    assert [(e, s) for e, s, _ in apns.answers] == [("sandbox", 400), ("production", 400)]


async def test_apns_429_retries_after_the_time_asked(push, apns):
    apns.fail_next(429, retry_after="30")
    outcome = await push.ios.send(message(ios_token()))
    assert (outcome.status, outcome.retry_after) == ("retry", 30.0)
    assert outcome.error == "429 TooManyRequests"


async def test_apns_5xx_is_retried(push, apns):
    for status in (500, 503):
        apns.fail_next(status)
        outcome = await push.ios.send(message(ios_token()))
        assert (outcome.status, outcome.retry_after) == ("retry", None)


async def test_apns_expired_provider_token_is_renewed(push, apns):
    apns.fail_next(403, reason="ExpiredProviderToken")
    assert (await push.ios.send(message(ios_token()))).status == "sent"
    assert push.ios.tokens_made == 2


async def test_apns_refuses_http1(apns_servers):
    context = ssl.create_default_context(cafile=apns_servers.ca_file)
    async with httpx.AsyncClient(verify=context) as client:
        try:
            response = await client.post(f"{apns_servers.production.url}/3/device/{ios_token()}")
        except httpx.HTTPError:
            return  # ALPN offers h2 only: an HTTP/1.1 client cannot even connect
    assert response.status_code == 400

"""Apple Push Notification service over HTTP/2 with token-based authentication
(https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns).

Each request is `POST /3/device/{token}` on the environment's host (api.push.apple.com or
api.sandbox.push.apple.com) with an ES256 provider token (header kid = key id, claims iss =
team id and iat), which is reused for 50 minutes (Apple: refresh no more than once every 20
minutes, never older than an hour). Answers, as documented:
- 200: sent;
- 410 Unregistered: the token is dead;
- 400 BadDeviceToken: often a token of the other environment: the other host is tried once;
  accepted there, the device's environment is corrected, refused there too, the token is dead;
- 403 ExpiredProviderToken / InvalidProviderToken: a new provider token, and one more try;
- 429 TooManyRequests, 500 InternalServerError, 503 ServiceUnavailable/Shutdown: retried
  later, honouring Retry-After when it is given.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any, Final

import httpx
import jwt

from stepcoin.notify.push import Message, Outcome, fit, retry_after_seconds

PRODUCTION_URL: Final = "https://api.push.apple.com"
SANDBOX_URL: Final = "https://api.sandbox.push.apple.com"
PROVIDER_TOKEN_SECONDS: Final = 50 * 60
MAX_COLLAPSE_ID_BYTES: Final = 64


class ApnsSender:
    def __init__(
        self,
        *,
        key_pem: str,
        key_id: str,
        team_id: str,
        topic: str,
        production_url: str = PRODUCTION_URL,
        sandbox_url: str = SANDBOX_URL,
        ca_file: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.key_id, self.team_id, self.topic = key_id, team_id, topic
        self._key = key_pem
        self.urls = {"production": production_url.rstrip("/"), "sandbox": sandbox_url.rstrip("/")}
        verify: ssl.SSLContext | bool = True
        if ca_file:  # a development stand-in's own authority (Settings refuse it in production)
            verify = ssl.create_default_context(cafile=ca_file)
        self._client = httpx.AsyncClient(http2=True, verify=verify, timeout=timeout)
        self._token: tuple[str, float] | None = None
        self._lock = asyncio.Lock()
        self.tokens_made = 0

    async def aclose(self) -> None:
        await self._client.aclose()

    async def provider_token(self, *, renew: bool = False) -> str:
        async with self._lock:
            if not renew and self._token and self._token[1] > time.monotonic():
                return self._token[0]
            token = jwt.encode(
                {"iss": self.team_id, "iat": int(time.time())},
                self._key,
                algorithm="ES256",
                headers={"kid": self.key_id},
            )
            self._token = (token, time.monotonic() + PROVIDER_TOKEN_SECONDS)
            self.tokens_made += 1
            return token

    def payload(self, message: Message) -> bytes:
        def build(title: str, body: str, data: dict[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {k: v for k, v in data.items() if k != "aps"}
            out["aps"] = {"alert": {"title": title, "body": body}, "sound": "default"}
            return out

        return fit(build, message)

    def headers(self, message: Message, token: str) -> dict[str, str]:
        headers = {
            "authorization": f"bearer {token}",
            "apns-topic": self.topic,
            "apns-push-type": "alert",
            "apns-priority": "10" if message.priority_high else "5",
            # 0: deliver once or drop; else the UNIX time until which APNs keeps trying
            "apns-expiration": str(int(message.expires_at.timestamp()))
            if message.expires_at
            else "0",
        }
        if message.collapse_key:
            collapse = message.collapse_key.encode()[:MAX_COLLAPSE_ID_BYTES]
            headers["apns-collapse-id"] = collapse.decode("utf-8", "ignore")
        return headers

    async def _post(self, environment: str, message: Message, body: bytes) -> httpx.Response:
        response: httpx.Response | None = None
        for attempt in (1, 2):
            token = await self.provider_token(renew=attempt == 2)
            response = await self._client.post(
                f"{self.urls[environment]}/3/device/{message.token}",
                content=body,
                headers=self.headers(message, token),
            )
            if response.status_code != 403 or _reason(response) not in (
                "ExpiredProviderToken",
                "InvalidProviderToken",
            ):
                break
        assert response is not None
        return response

    async def send(self, message: Message) -> Outcome:
        body = self.payload(message)
        environment = message.environment if message.environment in self.urls else "production"
        try:
            response = await self._post(environment, message, body)
            outcome = classify(response)
            if outcome.status == "invalid" and _reason(response) == "BadDeviceToken":
                other = "sandbox" if environment == "production" else "production"
                second = classify(await self._post(other, message, body))
                if second.status == "sent":
                    return Outcome("moved", outcome.error, environment=other)
                if second.status != "invalid":
                    return second
        except httpx.TransportError as exc:
            return Outcome("retry", f"{type(exc).__name__}: {exc}")
        return outcome


def _reason(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason", ""))
    except ValueError:
        return ""


def classify(response: httpx.Response) -> Outcome:
    status = response.status_code
    if status == 200:
        return Outcome("sent")
    reason = _reason(response)
    error = f"{status} {reason}".strip()
    if status == 410 or reason in ("Unregistered", "BadDeviceToken", "DeviceTokenNotForTopic"):
        return Outcome("invalid", error)
    if status == 429 or status >= 500:
        return Outcome("retry", error, retry_after_seconds(response.headers.get("retry-after")))
    return Outcome("failed", error)

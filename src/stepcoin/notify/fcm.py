"""Firebase Cloud Messaging, HTTP v1 (https://firebase.google.com/docs/cloud-messaging/send/v1-api).

Authentication is Google's OAuth2 service-account flow: a JWT signed with the account's RS256
key (RFC 7523 grant, scope firebase.messaging) is exchanged at the key's `token_uri` for an
access token, which is cached until a minute before it expires. A message is
`POST {api}/v1/projects/{project}/messages:send`. Answers, as documented:
- 200: sent;
- 404 NOT_FOUND / errorCode UNREGISTERED: the token is dead (the app was uninstalled);
- 400 INVALID_ARGUMENT naming the token: a malformed token (dead too); other 400s fail;
- 403 SENDER_ID_MISMATCH: a token of another Firebase project (a build registered with another
  project: FCM's "wrong environment"); this project can never reach it, so it is dropped;
- 401 UNAUTHENTICATED: the access token is refreshed and the send tried once more;
- 429 QUOTA_EXCEEDED, 500 INTERNAL, 503 UNAVAILABLE: retried later, honouring Retry-After.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

import httpx
import jwt
import orjson

from stepcoin.notify.push import Message, Outcome, fit, retry_after_seconds

SCOPE: Final = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_API_URL: Final = "https://fcm.googleapis.com"
GOOGLE_TOKEN_URI: Final = "https://oauth2.googleapis.com/token"
TOKEN_MARGIN_SECONDS: Final = 60.0
ASSERTION_LIFETIME: Final = 3600


class FcmConfigError(RuntimeError):
    """The service-account key is unusable."""


class FcmSender:
    def __init__(
        self,
        service_account: dict[str, Any],
        *,
        project_id: str | None = None,
        api_url: str = FCM_API_URL,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        for key in ("client_email", "private_key"):
            if not service_account.get(key):
                raise FcmConfigError(f"the FCM service-account key has no {key}")
        self._account = service_account
        self.project_id = project_id or service_account.get("project_id") or ""
        if not self.project_id:
            raise FcmConfigError("no FCM project id (STEPCOIN_PUSH_FCM_PROJECT_ID)")
        self.token_uri = str(service_account.get("token_uri") or GOOGLE_TOKEN_URI)
        self.url = f"{api_url.rstrip('/')}/v1/projects/{self.project_id}/messages:send"
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._token: tuple[str, float] | None = None
        self._lock = asyncio.Lock()
        self.tokens_fetched = 0

    async def aclose(self) -> None:
        await self._client.aclose()

    def _assertion(self) -> str:
        now = int(time.time())
        headers = (
            {"kid": self._account["private_key_id"]} if "private_key_id" in self._account else None
        )
        return jwt.encode(
            {
                "iss": self._account["client_email"],
                "scope": SCOPE,
                "aud": self.token_uri,
                "iat": now,
                "exp": now + ASSERTION_LIFETIME,
            },
            self._account["private_key"],
            algorithm="RS256",
            headers=headers,
        )

    async def access_token(self, *, renew: bool = False) -> str:
        """The cached OAuth2 access token, fetched again a minute before it expires."""
        async with self._lock:
            if not renew and self._token and self._token[1] > time.monotonic():
                return self._token[0]
            response = await self._client.post(
                self.token_uri, data={"grant_type": GRANT_TYPE, "assertion": self._assertion()}
            )
            if response.status_code != 200:
                raise httpx.HTTPStatusError(
                    f"OAuth2 token endpoint answered {response.status_code}: {response.text[:200]}",
                    request=response.request,
                    response=response,
                )
            body = response.json()
            lifetime = float(body.get("expires_in", 3600))
            self._token = (
                str(body["access_token"]),
                time.monotonic() + max(lifetime - TOKEN_MARGIN_SECONDS, 1.0),
            )
            self.tokens_fetched += 1
            return self._token[0]

    def payload(self, message: Message) -> bytes:
        def build(title: str, body: str, data: dict[str, Any]) -> dict[str, Any]:
            android: dict[str, Any] = {"priority": "high" if message.priority_high else "normal"}
            if message.collapse_key:
                android["collapse_key"] = message.collapse_key
            if message.expires_at is not None:
                ttl = max(0, int(message.expires_at.timestamp() - time.time()))
                android["ttl"] = f"{ttl}s"
            out: dict[str, Any] = {
                "token": message.token,
                "notification": {"title": title, "body": body},
                "android": android,
            }
            if data:  # FCM data values are strings
                out["data"] = {
                    str(k): v if isinstance(v, str) else orjson.dumps(v).decode()
                    for k, v in data.items()
                }
            return {"message": out}

        return fit(build, message)

    async def send(self, message: Message) -> Outcome:
        body = self.payload(message)
        try:
            for attempt in (1, 2):
                token = await self.access_token(renew=attempt == 2)
                response = await self._client.post(
                    self.url,
                    content=body,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json; charset=UTF-8",
                    },
                )
                if response.status_code != 401:
                    break
        except httpx.HTTPStatusError as exc:  # the token endpoint refused or failed
            status = exc.response.status_code
            if status == 429 or status >= 500:
                return Outcome(
                    "retry",
                    f"oauth2 {status}",
                    retry_after_seconds(exc.response.headers.get("retry-after")),
                )
            return Outcome("failed", f"oauth2 {status}")
        except httpx.TransportError as exc:
            return Outcome("retry", f"{type(exc).__name__}: {exc}")
        return classify(response)


def _error(response: httpx.Response) -> tuple[str, str]:
    """(status, errorCode) of a google.rpc.Status answer; empty strings when absent."""
    try:
        error = response.json().get("error", {})
    except ValueError:
        return "", ""
    code = ""
    for detail in error.get("details", []) or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            code = str(detail["errorCode"])
    return str(error.get("status", "")), code


def classify(response: httpx.Response) -> Outcome:
    status = response.status_code
    if status == 200:
        return Outcome("sent")
    rpc_status, code = _error(response)
    error = f"{status} {code or rpc_status}".strip()
    if status == 404 or code in ("UNREGISTERED", "SENDER_ID_MISMATCH"):
        return Outcome("invalid", error)
    if status == 400 and code == "INVALID_ARGUMENT" and "token" in response.text.lower():
        return Outcome("invalid", error)
    if status == 429 or status >= 500:
        return Outcome("retry", error, retry_after_seconds(response.headers.get("retry-after")))
    return Outcome("failed", error)

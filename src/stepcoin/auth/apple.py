"""Revoking a walker's Sign in with Apple tokens when the account is deleted (App Store rule).

Apple's documented flow (Sign in with Apple REST API): POST /auth/token exchanges the
authorization code the app just received for a refresh token, then POST /auth/revoke revokes
that token. Both calls authenticate with a client_secret: a short-lived ES256 JWT signed with
the team's key (iss = team id, sub = client id, aud = https://appleid.apple.com, kid = key id).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from stepcoin.config import APPLE_AUTH_URL, Settings

CLIENT_SECRET_LIFETIME = 300  # seconds; Apple allows up to six months, we need minutes


class AppleUnavailable(Exception):
    """Apple did not answer, or answered 5xx/429: try again later."""


class AppleRefused(Exception):
    """Apple refused the request (an expired or spent code, a wrong client): retrying cannot
    help."""


@dataclass(frozen=True, slots=True)
class AppleTokens:
    refresh_token: str | None
    access_token: str | None


def client_secret(settings: Settings, client_id: str, *, now: int | None = None) -> str:
    if not settings.apple_revocation_configured:
        raise AppleRefused("Apple token revocation is not configured")
    assert settings.apple_private_key is not None
    issued = int(time.time()) if now is None else now
    return jwt.encode(
        {
            "iss": settings.apple_team_id,
            "iat": issued,
            "exp": issued + CLIENT_SECRET_LIFETIME,
            "aud": APPLE_AUTH_URL,  # always Apple's issuer, also when a stand-in answers
            "sub": client_id,
        },
        settings.apple_private_key.get_secret_value(),
        algorithm="ES256",
        headers={"kid": settings.apple_key_id},
    )


class AppleClient:
    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None):
        self._settings = settings
        self._base = settings.apple_auth_url.rstrip("/")
        self._http = httpx.AsyncClient(timeout=10.0, transport=transport)

    async def __aenter__(self) -> AppleClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        try:
            response = await self._http.post(
                self._base + path,
                data=form,
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise AppleUnavailable(f"{path}: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise AppleUnavailable(f"{path}: HTTP {response.status_code}")
        if response.status_code != 200:
            try:
                error = response.json().get("error", "")
            except ValueError:
                error = ""
            raise AppleRefused(f"{path}: HTTP {response.status_code} {error}".strip())
        if not response.content:
            return {}
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    async def exchange_code(self, client_id: str, code: str) -> AppleTokens:
        body = await self._post(
            "/auth/token",
            {
                "client_id": client_id,
                "client_secret": client_secret(self._settings, client_id),
                "code": code,
                "grant_type": "authorization_code",
            },
        )
        return AppleTokens(body.get("refresh_token"), body.get("access_token"))

    async def revoke(self, client_id: str, token: str, token_type_hint: str) -> None:
        await self._post(
            "/auth/revoke",
            {
                "client_id": client_id,
                "client_secret": client_secret(self._settings, client_id),
                "token": token,
                "token_type_hint": token_type_hint,
            },
        )

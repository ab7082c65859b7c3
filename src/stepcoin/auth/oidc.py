"""Google and Apple sign-in: verify an ID token against the provider's JSON Web Key Set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWKClient
from starlette.concurrency import run_in_threadpool

from stepcoin.config import Settings

# Both providers sign ID tokens with RS256 (Apple also documents ES256 support in JWKS).
ID_TOKEN_ALGORITHMS = ["RS256", "ES256"]


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    audience: str | None = None
    """The client id the token was issued to (one of the configured ones)."""
    issued_at: int | None = None


class IdTokenError(Exception):
    """The ID token failed verification (signature, issuer, audience, expiry or shape)."""


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    jwks_url: str
    issuers: tuple[str, ...]
    audiences: tuple[str, ...]


def provider_config(settings: Settings, provider: str) -> ProviderConfig:
    if provider == "google":
        return ProviderConfig(
            "google",
            settings.google_jwks_url,
            tuple(settings.google_issuers),
            tuple(settings.google_client_ids),
        )
    if provider == "apple":
        return ProviderConfig(
            "apple",
            settings.apple_jwks_url,
            (settings.apple_issuer,),
            tuple(settings.apple_client_ids),
        )
    raise ValueError(provider)


class IdTokenVerifier:
    """Caches one JWKS client per key-set URL (keys are refetched when an unknown kid appears)."""

    def __init__(self) -> None:
        self._clients: dict[str, PyJWKClient] = {}

    def _client(self, url: str) -> PyJWKClient:
        client = self._clients.get(url)
        if client is None:
            client = PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=5)
            self._clients[url] = client
        return client

    def _verify_sync(self, config: ProviderConfig, token: str, nonce: str | None) -> dict[str, Any]:
        if not config.audiences:
            raise IdTokenError(f"{config.name} sign-in is not configured (no client ids)")
        try:
            signing_key = self._client(config.jwks_url).get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                signing_key.key,
                algorithms=ID_TOKEN_ALGORITHMS,
                audience=list(config.audiences),
                issuer=list(config.issuers),
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
                leeway=30,
            )
        except jwt.PyJWTError as exc:
            raise IdTokenError(str(exc)) from exc
        if nonce is not None and claims.get("nonce") != nonce:
            raise IdTokenError("nonce mismatch")
        return claims

    async def verify(
        self, settings: Settings, provider: str, token: str, nonce: str | None = None
    ) -> VerifiedIdentity:
        config = provider_config(settings, provider)
        claims = await run_in_threadpool(self._verify_sync, config, token, nonce)
        verified = claims.get("email_verified")
        email = claims.get("email")
        return VerifiedIdentity(
            provider=provider,
            subject=str(claims["sub"]),
            email=email.strip().lower() if isinstance(email, str) else None,
            email_verified=verified is True or verified == "true",
            name=claims.get("name") if isinstance(claims.get("name"), str) else None,
            audience=_audience(claims.get("aud"), config.audiences),
            issued_at=claims["iat"] if isinstance(claims.get("iat"), int) else None,
        )


def _audience(aud: Any, configured: tuple[str, ...]) -> str | None:
    values = [aud] if isinstance(aud, str) else list(aud or [])
    return next((value for value in values if value in configured), None)


id_token_verifier = IdTokenVerifier()

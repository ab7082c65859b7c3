"""Access tokens (short-lived JWTs) and opaque refresh tokens (stored only as hashes)."""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from fastapi.security.utils import get_authorization_scheme_param
from jwt.algorithms import HMACAlgorithm

from stepcoin.config import Settings

ACCESS_ALGORITHM = "HS256"
ALLOWED_ALGORITHMS = [ACCESS_ALGORITHM]  # the allow-list: 'none' and RS/HS confusion refused
ACCESS_TOKEN_TYPE = "access"
LEEWAY_SECONDS = 5
"""Clock skew allowed on exp, nbf and iat (PyJWT's `leeway`; the cache applies the same)."""
TOKEN_CACHE_SIZE = 16_384
"""Verified access tokens kept per process (LRU). ~0.6 KB each: ~10 MB at most."""
MAX_CACHED_TOKEN_LENGTH = 2_048
"""Longer strings are verified every time and never stored: the cache's memory stays bounded."""


@functools.lru_cache(maxsize=8)
def _prepared_hmac_key(key: str | bytes) -> bytes:
    return HMACAlgorithm(HMACAlgorithm.SHA256).prepare_key(key)


class _PreparedHS256(HMACAlgorithm):
    """PyJWT's HS256, with its key prepared once per key instead of on every encode and decode.

    PyJWT checks an HMAC key on each use: that it is not a PEM, SSH or DER key nor a JWK in
    JSON (it tries to load it as a DER public key and an X.509 certificate, and parses it as
    JSON). For our one signing secret that is the same answer every time, and it was about a
    fifth of verifying a token seen for the first time (45 -> 34 µs a decode; such tokens are
    most of a sync's: BENCHMARKS.md, run 20). The checks still run, once for each key; a key
    they refuse is refused on every use (an exception is not cached); anything but text or
    bytes goes to PyJWT's own method. Signing and verifying are PyJWT's, unchanged."""

    def prepare_key(self, key: str | bytes) -> bytes:
        if isinstance(key, (str, bytes)):
            return _prepared_hmac_key(key)
        return super().prepare_key(key)


def _install_prepared_hs256() -> None:
    """Register _PreparedHS256 as PyJWT's HS256 (its public algorithm registry; once)."""
    if isinstance(jwt.get_algorithm_by_name(ACCESS_ALGORITHM), _PreparedHS256):
        return
    jwt.unregister_algorithm(ACCESS_ALGORITHM)
    jwt.register_algorithm(ACCESS_ALGORITHM, _PreparedHS256(HMACAlgorithm.SHA256))


_install_prepared_hs256()


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    role: str
    session_id: uuid.UUID | None = None
    """The refresh-token family this token was issued with (claim `sid`): the signed-in device."""


class InvalidToken(Exception):
    """The token is malformed, expired, of the wrong type or signed with another key."""


def create_access_token(
    settings: Settings, user_id: uuid.UUID, role: str, session_id: uuid.UUID | None = None
) -> str:
    now = datetime.now(UTC)
    payload: dict[str, object] = {
        "sub": str(user_id),
        "role": role,
        "typ": ACCESS_TOKEN_TYPE,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=settings.access_token_ttl_seconds),
        "jti": secrets.token_hex(8),
    }
    if session_id is not None:
        payload["sid"] = str(session_id)
    return jwt.encode(payload, settings.signing_secret(), algorithm=ACCESS_ALGORITHM)


_Entry = tuple[str, str, str | None, float, float]
"""A verified token's user id, role, session id (text) and the window PyJWT accepts it in."""


class _VerifiedTokens:
    """A bounded LRU of access tokens whose signature and claims were verified, keyed by the
    exact token string, each with the window in which PyJWT would accept it again.

    Why it weakens nothing (issue 13): a hit needs the byte-identical string that passed a full
    verification (signature, algorithm, issuer, audience, type, subject) under the same signing
    secret, issuer and audience, so a forged or altered token is a miss and is verified in full;
    the window is PyJWT's own test (`nbf`/`iat` - leeway <= now < `exp` + leeway) on the same
    clock, so a token expires from the cache at the very second a fresh decode refuses it;
    the claims are those the fresh decode built. Invalid tokens are never stored.
    A change of secret, issuer or audience (a rotation) empties the cache. Whether the account
    is still active is never cached: that stays the routes' own query.

    An entry holds only strings and numbers (the claims' ids as text): a tuple of those is
    not tracked by the cyclic garbage collector, while the claims object and its UUIDs were
    three tracked objects per token, most of what a full collection of a serving process
    walked (16,000 tokens: 48,000 objects, ~15 ms a collection under load; BENCHMARKS.md,
    run 16). A hit builds the claims again (~2 µs).
    """

    __slots__ = ("context", "entries", "max_entries")

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.context: tuple[str, str, str] | None = None
        self.entries: OrderedDict[str, _Entry] = OrderedDict()

    def clear(self) -> None:
        self.entries.clear()
        self.context = None

    def get(self, context: tuple[str, str, str], token: str, now: float) -> AccessClaims | None:
        if context != self.context:
            self.entries.clear()
            self.context = context
            return None
        entry = self.entries.get(token)
        if entry is None:
            return None
        user_id, role, session_id, valid_from, valid_until = entry
        if not valid_from <= now < valid_until:
            del self.entries[token]  # expired (or a clock step back): verify it afresh
            return None
        self.entries.move_to_end(token)
        return AccessClaims(
            user_id=uuid.UUID(user_id),
            role=role,
            session_id=None if session_id is None else uuid.UUID(session_id),
        )

    def put(
        self,
        context: tuple[str, str, str],
        token: str,
        claims: AccessClaims,
        valid_from: float,
        valid_until: float,
    ) -> None:
        if context != self.context or len(token) > MAX_CACHED_TOKEN_LENGTH:
            return
        session_id = None if claims.session_id is None else str(claims.session_id)
        self.entries[token] = (
            str(claims.user_id),
            claims.role,
            session_id,
            valid_from,
            valid_until,
        )
        if len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)


_verified = _VerifiedTokens(TOKEN_CACHE_SIZE)


def clear_token_cache() -> None:
    """Forget every verified token (tests; an operator's rotation is detected by itself)."""
    _verified.clear()


def token_cache_size() -> int:
    return len(_verified.entries)


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    """The claims of a valid access token; InvalidToken otherwise.

    A token seen before under the same key is answered from `_VerifiedTokens` until the second
    PyJWT would call it expired; anything else is verified in full.
    """
    context = (settings.signing_secret(), settings.jwt_issuer, settings.jwt_audience)
    now = time.time()
    cached = _verified.get(context, token, now)
    if cached is not None:
        return cached
    claims, payload = _verify(settings, context[0], token)
    # The window PyJWT itself applies (api_jwt._validate_exp/_nbf/_iat with the same leeway).
    valid_until = int(payload["exp"]) + LEEWAY_SECONDS
    valid_from = max(int(payload["iat"]), int(payload.get("nbf", payload["iat"]))) - LEEWAY_SECONDS
    _verified.put(context, token, claims, valid_from, valid_until)
    return claims


def _verify(settings: Settings, secret: str, token: str) -> tuple[AccessClaims, dict[str, Any]]:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=ALLOWED_ALGORITHMS,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "typ"]},
            leeway=LEEWAY_SECONDS,
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if payload.get("typ") != ACCESS_TOKEN_TYPE:
        raise InvalidToken("not an access token")
    try:
        sid = payload.get("sid")
        claims = AccessClaims(
            user_id=uuid.UUID(payload["sub"]),
            role=str(payload.get("role", "")),
            session_id=uuid.UUID(sid) if sid is not None else None,
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidToken("bad subject") from exc
    return claims, payload


def new_refresh_token() -> str:
    """256 bits from the operating system's CSPRNG, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> bytes:
    """SHA-256 is enough here: the token is random, not a password, so no slow hash is needed."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def first_headers(scope: Mapping[str, Any], *names: bytes) -> dict[bytes, str]:
    """The first value of each named header of an ASGI request (as Starlette's Headers.get)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in names and name not in found:
            found[name] = value.decode("latin-1")
    return found


def bearer_claims(settings: Settings, authorization: str | None) -> AccessClaims | None:
    """The verified claims of an `Authorization: Bearer` value (cached as decode_access_token
    caches them), else None: for the fast paths, which leave every refusal to the route."""
    scheme, token = get_authorization_scheme_param(authorization)
    if not token or scheme.lower() != "bearer":
        return None
    try:
        return decode_access_token(settings, token)
    except InvalidToken:
        return None


def is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/json"

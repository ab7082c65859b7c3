"""Access tokens (short-lived JWTs) and opaque refresh tokens (stored only as hashes)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from stepcoin.config import Settings

ACCESS_ALGORITHM = "HS256"
ALLOWED_ALGORITHMS = [ACCESS_ALGORITHM]  # the allow-list: 'none' and RS/HS confusion refused
ACCESS_TOKEN_TYPE = "access"


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


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    try:
        payload = jwt.decode(
            token,
            settings.signing_secret(),
            algorithms=ALLOWED_ALGORITHMS,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "typ"]},
            leeway=5,
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if payload.get("typ") != ACCESS_TOKEN_TYPE:
        raise InvalidToken("not an access token")
    try:
        sid = payload.get("sid")
        return AccessClaims(
            user_id=uuid.UUID(payload["sub"]),
            role=str(payload.get("role", "")),
            session_id=uuid.UUID(sid) if sid is not None else None,
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidToken("bad subject") from exc


def new_refresh_token() -> str:
    """256 bits from the operating system's CSPRNG, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> bytes:
    """SHA-256 is enough here: the token is random, not a password, so no slow hash is needed."""
    return hashlib.sha256(token.encode("utf-8")).digest()
